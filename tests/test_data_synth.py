"""Synthetic catalogs (`crs data synth`, crs/data/synth.py): valid, structured as documented,
deterministic, and evaluated end to end."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from crs.cli import main
from crs.data import Dataset, synth
from crs.data.generic import load_generic, validate_generic
from crs.data.synth import CATALOG_FILES, SynthSpec, SynthSpecError, synthesize


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    folder = tmp_path_factory.mktemp("synth") / "s2k"
    summary = synthesize(folder, SynthSpec(items=2_000, attributes=400, seed=3))
    assert validate_generic(folder) == []
    dataset = load_generic(folder)
    assert summary.users == len(dataset.users) == 200
    assert summary.interactions == {name: len(split.pairs()) for name, split in dataset.splits.items()}
    return dataset


def _attribute_sets(dataset: Dataset) -> list[frozenset[int]]:
    return [frozenset(item.attributes) for item in dataset.catalog.items]


def _jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    return len(a & b) / len(a | b)


def test_items_and_attributes_have_the_documented_shape(synthetic: Dataset) -> None:
    catalog = synthetic.catalog
    assert catalog.n_items == 2_000 and catalog.n_attributes == 400  # every attribute is used
    assert len({item.title for item in catalog.items}) == catalog.n_items
    assert [item.id for item in catalog.items] == list(range(catalog.n_items))
    groups = {attribute.index: attribute.group for attribute in catalog.attributes}
    assert set(groups.values()) == {"genre", "decade", "mood", "tag"}
    for item in catalog.items:
        per_group = Counter(groups[a] for a in item.attributes)
        assert per_group["decade"] == 1 and 1 <= per_group["genre"] <= 3 + 1  # + a founder's
        year = dict(item.facts)["year"]
        decade = next(catalog.attributes[a].name for a in item.attributes if groups[a] == "decade")
        assert decade == f"{year[:3]}0s"
    # Zipf-like tags: the most common tag is on far more items than the median one.
    tag_counts = sorted(
        (int(n) for a, n in enumerate(catalog.index.item_frequency()) if groups[a] == "tag"), reverse=True
    )
    assert tag_counts[0] > 10 * tag_counts[len(tag_counts) // 2]


def test_popularity_is_skewed_and_every_target_has_history(synthetic: Dataset) -> None:
    counts = np.sort(synthetic.popularity)[::-1]
    assert counts[: len(counts) // 10].sum() > 0.4 * counts.sum()  # the top 10 % of items
    assert (counts == 0).mean() > 0.3  # a long tail nobody has touched
    train = synthetic.train
    for name in ("valid", "test"):
        split = synthetic.split(name)
        assert len(split.pairs()) > 0
        assert all(train.items_of(user) for user in split.by_user)
    shares = np.array([len(synthetic.split(name).pairs()) for name in ("train", "valid", "test")])
    assert np.allclose(shares / shares.sum(), [0.70, 0.15, 0.15], atol=0.05)


def test_tastes_are_correlated_and_friends_alike(synthetic: Dataset) -> None:
    attributes = _attribute_sets(synthetic)
    rng = np.random.default_rng(0)
    histories = list(synthetic.train.by_user.values())
    within_users = np.mean(
        [
            _jaccard(attributes[a], attributes[b])
            for items in histories
            for a, b in zip(items, items[1:], strict=False)
        ]
    )
    # Against pairs of training items of anyone, so that popular items weigh as much in both.
    shuffled = rng.permutation([item for items in histories for item in items])
    by_chance = np.mean(
        [_jaccard(attributes[a], attributes[b]) for a, b in zip(shuffled[::2], shuffled[1::2], strict=False)]
    )
    # A user's items share attributes: 1.8 times chance on LastFM* and MovieLens, 1.5 here.
    assert within_users > 1.3 * by_chance

    def profile(user: object) -> Counter[int]:
        return Counter(a for item in synthetic.train.items_of(user) for a in attributes[item])

    def cosine(a: object, b: object) -> float:
        left, right = profile(a), profile(b)
        dot = sum(left[k] * right[k] for k in left.keys() & right.keys())
        norms = np.sqrt(sum(v * v for v in left.values()) * sum(v * v for v in right.values()))
        return float(dot / norms) if norms else 0.0

    users = list(synthetic.users.values())
    assert np.mean([len(user.friends) > 0 for user in users]) > 0.9
    for user in users:  # friendships are mutual
        assert all(user.id in synthetic.users[friend].friends for friend in user.friends)
    friends = np.mean([cosine(user.id, friend) for user in users for friend in user.friends])
    pairs = rng.integers(0, len(users), (1_000, 2))
    strangers = np.mean([cosine(users[a].id, users[b].id) for a, b in pairs if a != b])
    # Friends' training histories are alike (cosine of attribute counts): 1.3 times strangers' on
    # LastFM*, 1.2-1.4 here.
    assert friends > 1.15 * strangers


def _digest(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in CATALOG_FILES}


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small chunks, so that several are made and written, as at a million items.
    monkeypatch.setattr(synth, "ITEM_CHUNK", 128)
    monkeypatch.setattr(synth, "USER_CHUNK", 16)
    spec = SynthSpec(items=700, attributes=80, seed=11)
    synthesize(tmp_path / "a", spec)
    synthesize(tmp_path / "b", spec)
    synthesize(tmp_path / "c", SynthSpec(items=700, attributes=80, seed=12))
    first, again, other = (_digest(tmp_path / name) for name in "abc")
    assert first == again
    assert all(other[name] != first[name] for name in CATALOG_FILES if name != "synth.json")
    assert validate_generic(tmp_path / "a") == []


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"items": 9}, "items"),
        ({"attributes": 19}, "attributes"),
        ({"users": 1}, "users"),
        ({"seed": -1}, "seed"),
        ({"interactions_per_user": 4}, "interactions_per_user"),
        ({"items": True}, "items"),
    ],
)
def test_a_spec_out_of_range_names_its_field(values: dict[str, int], field: str) -> None:
    with pytest.raises(SynthSpecError) as caught:
        SynthSpec(**values)
    assert caught.value.field == field


def test_the_command_refuses_bad_flags_and_a_full_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cat"
    assert main(["data", "synth", str(out), "--items", "300", "--attributes", "40", "--quiet"]) == 0
    assert "300 items, 40 attributes, 30 users" in capsys.readouterr().out
    assert validate_generic(out) == []
    before = _digest(out)
    cases = [
        ([str(out), "--items", "300"], f"error: {out} is not empty: pass --force"),
        (
            [str(tmp_path / "x"), "--items", "5"],
            "error: --items must be an integer from 10 to 10,000,000, got 5",
        ),
        ([str(tmp_path / "x"), "--friends-per-user", "101"], "error: --friends-per-user must be an integer"),
        ([str(out / "items.jsonl")], f"error: {out / 'items.jsonl'} exists and is not a folder"),
    ]
    for args, message in cases:
        assert main(["data", "synth", *args, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, err
    assert _digest(out) == before and not (tmp_path / "x").exists()
    assert (
        main(
            [
                "data",
                "synth",
                str(out),
                "--items",
                "300",
                "--attributes",
                "40",
                "--seed",
                "1",
                "--force",
                "--quiet",
            ]
        )
        == 0
    )
    assert _digest(out) != before and validate_generic(out) == []


def test_a_synthetic_catalog_is_evaluated_end_to_end(tmp_path: Path) -> None:
    folder = tmp_path / "synthetic"
    synthesize(folder, SynthSpec(items=500, attributes=60, seed=5))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "crs",
            "evaluate",
            "--dataset",
            str(folder),
            "--split",
            "valid",
            "--limit",
            "20",
            "--out",
            str(tmp_path / "run"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "SR@15" in done.stdout and "| synthetic |" in done.stdout
    assert (tmp_path / "run" / "metrics.json").is_file()
