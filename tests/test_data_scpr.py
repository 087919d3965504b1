"""The SCPR LastFM loaders on the real files and on broken copies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from crs.data import DataError, DataNotFoundError, Dataset, load_dataset
from crs.data.location import DATA_DIR_ENV, resolve_data_dir


def test_lastfm_star_counts(lastfm_star: Dataset) -> None:
    catalog = lastfm_star.catalog
    assert catalog.n_items == 7432 and catalog.n_attributes == 8438
    assert len(lastfm_star.users) == 1801
    nnz = sum(len(item.attributes) for item in catalog.items)
    assert nnz / catalog.n_items == pytest.approx(12.71, abs=0.01)
    assert len(lastfm_star.split("train").pairs()) == 52910
    assert len(lastfm_star.split("valid").pairs()) == 11891
    assert catalog.items[0].title == "The Honorary Title"
    assert catalog.attributes[0].name == "metal"


def test_lastfm_counts_and_users_without_profile(lastfm: Dataset) -> None:
    assert lastfm.catalog.n_attributes == 33
    nnz = sum(len(item.attributes) for item in lastfm.catalog.items)
    assert nnz / lastfm.catalog.n_items == pytest.approx(4.08, abs=0.01)
    # Users 1310 and 1748 have valid interactions but no entry in lastfm's user_dict.json.
    assert 1310 not in lastfm.users and lastfm.user(1310).friends == ()


def test_the_withheld_test_split_is_refused_clearly(lastfm_star: Dataset) -> None:
    with pytest.raises(DataError, match=r"review_dict_test\.json.*split 'test'.*not available"):
        lastfm_star.split("test")
    with pytest.raises(DataError, match="no split 'nope'"):
        lastfm_star.split("nope")


def test_a_test_split_is_used_when_its_file_is_present(tmp_path: Path, data_dir: Path) -> None:
    folder = tmp_path / "lastfm"
    shutil.copytree(data_dir / "lastfm", folder)
    (folder / "review_dict_test.json").write_text(json.dumps({"0": [1, 2]}))
    dataset = load_dataset("lastfm", tmp_path)
    assert dataset.split("test").pairs() == [(0, 1), (0, 2)]


def _broken_copy(tmp_path: Path, data_dir: Path, file: str, content: str) -> Path:
    shutil.copytree(data_dir / "lastfm", tmp_path / "lastfm")
    path = tmp_path / "lastfm" / file
    path.chmod(0o644)
    path.write_text(content)
    return path


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("item_dict.json", "{not json", "not valid JSON"),
        ("item_dict.json", "[1, 2]", "expected a JSON object"),
        ("item_dict.json", json.dumps({"0": {"feature_index": [999]}}), "ids must be 0..0|not listed"),
        ("tag_reverse_map.json", json.dumps({"0": "rock"}), "real_name"),
        ("review_dict_valid.json", json.dumps({"0": "oops"}), "expected a list of item ids"),
        ("review_dict_valid.json", json.dumps({"0": [99999]}), "outside the catalog"),
        ("user_dict.json", json.dumps({"x": {}}), "expected an integer id"),
    ],
)
def test_broken_files_name_the_file_and_what_was_expected(
    tmp_path: Path, data_dir: Path, file: str, content: str, message: str
) -> None:
    path = _broken_copy(tmp_path, data_dir, file, content)
    with pytest.raises(DataError, match=message) as error:
        load_dataset("lastfm", tmp_path)
    assert str(path) in str(error.value)


def test_a_missing_file_is_named(tmp_path: Path, data_dir: Path) -> None:
    shutil.copytree(data_dir / "lastfm", tmp_path / "lastfm")
    (tmp_path / "lastfm" / "item_dict.json").unlink()
    with pytest.raises(DataError, match=r"item_dict\.json: missing file"):
        load_dataset("lastfm", tmp_path)


def test_data_directory_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_data_dir(tmp_path) == tmp_path
    assert resolve_data_dir(None, {DATA_DIR_ENV: str(tmp_path)}) == tmp_path
    with pytest.raises(DataNotFoundError, match=f"\\${DATA_DIR_ENV} does not exist"):
        resolve_data_dir(None, {DATA_DIR_ENV: str(tmp_path / "absent")})
    with pytest.raises(DataNotFoundError, match="--data-dir does not exist"):
        resolve_data_dir(tmp_path / "absent")
    monkeypatch.setattr("crs.data.location.default_data_dirs", lambda: [tmp_path / "nowhere"])
    with pytest.raises(DataNotFoundError, match="Looked in: .*nowhere"):
        resolve_data_dir(None, {})
    with pytest.raises(DataNotFoundError, match="dataset 'lastfm' not found"):
        load_dataset("lastfm", tmp_path)
