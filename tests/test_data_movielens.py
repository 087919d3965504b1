"""The MovieLens ml-latest-small loader on the real files and on broken copies."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from crs.data import DataError, Dataset, load_dataset
from crs.data.location import resolve_data_dir
from crs.data.movielens import MAX_TAGS, MIN_TAG_MOVIES, STOP_TAGS, load_movielens, normalise_tag, split_likes

LIKES = 48580  # ratings of 4.0 or more in ratings.csv


@pytest.fixture(scope="module")
def folder() -> Path:
    return resolve_data_dir() / "movielens-small"


@pytest.fixture(scope="module")
def movielens(folder: Path) -> Dataset:
    return load_movielens(folder)


def _attribute_ids(dataset: Dataset, index: int) -> set[str]:
    return {str(dataset.catalog.attributes[a].id) for a in dataset.catalog.items[index].attributes}


def test_counts(movielens: Dataset) -> None:
    catalog = movielens.catalog
    assert movielens.name == "movielens"
    assert catalog.n_items == 9742
    groups = Counter(attribute.group for attribute in catalog.attributes)
    assert groups == {"genre": 19, "decade": 12, "tag": MAX_TAGS}
    assert len(movielens.users) == 610
    assert all(user.friends == () for user in movielens.users.values())


def test_attribute_order_genres_then_decades_then_tags(movielens: Dataset) -> None:
    groups = [attribute.group for attribute in movielens.catalog.attributes]
    assert groups == sorted(groups, key=["genre", "decade", "tag"].index)
    genres = [a.name for a in movielens.catalog.attributes if a.group == "genre"]
    decades = [a.name for a in movielens.catalog.attributes if a.group == "decade"]
    assert genres == sorted(genres) and "(no genres listed)" not in genres and "Film-Noir" in genres
    assert decades == sorted(decades) and decades[0] == "1900s" and decades[-1] == "2010s"
    assert all(
        attribute.id == f"{attribute.group}:{attribute.name}" for attribute in movielens.catalog.attributes
    )
    assert all(item.attributes == tuple(sorted(item.attributes)) for item in movielens.catalog.items)


def test_toy_story(movielens: Dataset) -> None:
    item = movielens.catalog.items[movielens.catalog.item_index(1)]
    assert item.index == 0 and item.title == "Toy Story (1995)"
    assert dict(item.facts) == {
        "year": "1995",
        "genres": "Adventure, Animation, Children, Comedy, Fantasy",
        "imdb": "https://www.imdb.com/title/tt0114709/",
    }
    assert _attribute_ids(movielens, 0) == {
        "genre:Adventure",
        "genre:Animation",
        "genre:Children",
        "genre:Comedy",
        "genre:Fantasy",
        "decade:1990s",
        "tag:fun",
    }


def test_movies_without_year_or_genres(movielens: Dataset) -> None:
    by_title = {item.title: item for item in movielens.catalog.items}
    babylon = by_title["Babylon 5"]
    assert "year" not in dict(babylon.facts)
    assert not any(movielens.catalog.attributes[a].group == "decade" for a in babylon.attributes)
    no_genres = [item for item in movielens.catalog.items if "genres" not in dict(item.facts)]
    assert len(no_genres) == 34
    assert all(
        not any(movielens.catalog.attributes[a].group == "genre" for a in item.attributes)
        for item in no_genres
    )


def test_tags(movielens: Dataset, folder: Path) -> None:
    tags = [a for a in movielens.catalog.attributes if a.group == "tag"]
    names = [tag.name for tag in tags]
    assert not STOP_TAGS & set(names)
    assert all(name == normalise_tag(name) for name in names)
    counts = [sum(1 for item in movielens.catalog.items if tag.index in item.attributes) for tag in tags]
    assert min(counts) >= MIN_TAG_MOVIES
    assert [(-c, n) for c, n in zip(counts, names, strict=True)] == sorted(
        (-c, n) for c, n in zip(counts, names, strict=True)
    )
    assert names[0] == "atmospheric"  # "in netflix queue" (131 movies) would be first without the stop list
    assert "dark comedy" in names
    assert "tag:dark comedy" in _attribute_ids(movielens, movielens.catalog.item_index(2959))  # Fight Club


def test_normalise_tag() -> None:
    assert normalise_tag('  "Dark   Comedy." ') == "dark comedy"
    assert normalise_tag("Oscar (Best Actress)") == "oscar (best actress)"
    assert normalise_tag("!!!") == ""


def test_split_is_a_partition_of_the_likes(movielens: Dataset) -> None:
    train, valid, test = (movielens.split(name) for name in ("train", "valid", "test"))
    assert sum(len(s.pairs()) for s in (train, valid, test)) == LIKES
    assert len(train.by_user) == 609  # one user rated nothing 4.0 or more
    for user_id, items in train.by_user.items():
        parts = [set(items), set(valid.items_of(user_id)), set(test.items_of(user_id))]
        n = sum(len(p) for p in parts)
        assert len(set().union(*parts)) == n  # disjoint
        # Each user's likes are split by split_likes (its sizes checked by hand below) with seed 0.
        assert [sorted(p) for p in parts] == list(split_likes(sorted(set().union(*parts)), 0, user_id))
    assert set(valid.by_user) <= set(train.by_user) and set(test.by_user) <= set(train.by_user)


def test_split_is_deterministic_per_seed(folder: Path, movielens: Dataset) -> None:
    again = load_movielens(folder, split_seed=0)
    other = load_movielens(folder, split_seed=1)
    for name in ("train", "valid", "test"):
        assert again.split(name).by_user == movielens.split(name).by_user
    assert other.split("test").by_user != movielens.split("test").by_user
    assert len(other.split("train").pairs()) == len(movielens.split("train").pairs())


def test_split_likes_small_counts() -> None:
    assert split_likes([], 0, 1) == ([], [], [])
    assert split_likes([5], 0, 1) == ([5], [], [])
    assert [len(part) for part in split_likes([1, 2], 0, 1)] == [1, 0, 1]
    assert [len(part) for part in split_likes(list(range(20)), 0, 1)] == [14, 3, 3]
    # train floor(0.7 n) (at least 1), valid 0.15 n rounded half up, test the rest:
    # n = 3: 2.1 -> 2, 0.45 -> 0; n = 7: 4.9 -> 4, 1.05 -> 1; n = 10: 7, 1.5 -> 2 (half up).
    assert [len(part) for part in split_likes(list(range(3)), 0, 1)] == [2, 0, 1]
    assert [len(part) for part in split_likes(list(range(7)), 0, 1)] == [4, 1, 2]
    assert [len(part) for part in split_likes(list(range(10)), 0, 1)] == [7, 2, 1]
    assert split_likes([3, 1, 2, 4], 7, 9) == split_likes([4, 3, 2, 1], 7, 9)  # input order is irrelevant


def test_registered_name_loads(folder: Path) -> None:
    dataset = load_dataset("movielens", folder.parent, split_seed=3)
    assert dataset.catalog.n_items == 9742
    assert dataset.split("valid").by_user == load_movielens(folder, split_seed=3).split("valid").by_user


# --- broken copies ------------------------------------------------------------------------------


def _copy(folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "movielens-small"
    shutil.copytree(folder, copy)
    for path in copy.iterdir():
        path.chmod(0o644)
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("file", ["movies.csv", "ratings.csv", "tags.csv", "links.csv"])
def test_missing_file_is_named(folder: Path, tmp_path: Path, file: str) -> None:
    copy = _copy(folder, tmp_path)
    (copy / file).unlink()
    with pytest.raises(DataError, match=rf"{file}: missing file") as caught:
        load_movielens(copy)
    assert caught.value.path == copy / file


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_movielens(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "movies.csv",
            "movieId,title,genres",
            "id,title,genres",
            r"movies\.csv: line 1: expected the header movieId,title,genres, found id,title,genres",
        ),
        (
            "ratings.csv",
            "userId,movieId,rating,timestamp",
            "userId,movieId,rating",
            r"ratings\.csv: line 1: expected the header userId,movieId,rating,timestamp",
        ),
        ("ratings.csv", "1,3,4.0,964981247", "1,3,4.0", r"ratings\.csv: line 3: expected 4 fields"),
        ("ratings.csv", "1,3,4.0,964981247", "1,3,great,964981247", r"ratings\.csv: line 3: rating must be"),
        ("ratings.csv", "1,3,4.0,964981247", "1,3,9.0,964981247", r"ratings\.csv: line 3: rating 9\.0"),
        ("ratings.csv", "1,3,4.0,964981247", "1,999999,4.0,964981247", r"line 3: movieId 999999 is not in"),
        ("ratings.csv", "1,3,4.0,964981247", "x,3,4.0,964981247", r"line 3: userId must be an integer"),
        (
            "movies.csv",
            "2,Jumanji (1995)",
            "1,Jumanji (1995)",
            r"movies\.csv: line 3: movieId 1 is listed twice",
        ),
        ("tags.csv", "2,60756,funny", "2,424242,funny", r"tags\.csv: line 2: movieId 424242 is not in"),
        ("links.csv", "2,0113497", "2a,0113497", r"links\.csv: line 3: movieId must be an integer"),
    ],
)
def test_broken_files_give_clear_errors(
    folder: Path, tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    copy = _copy(folder, tmp_path)
    _edit(copy / file, old, new)
    with pytest.raises(DataError, match=message):
        load_movielens(copy)
