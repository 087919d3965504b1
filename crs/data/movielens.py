"""MovieLens ml-latest-small (GroupLens, 2018) as a catalog with readable attributes.

Files read from the folder: `movies.csv` (movieId,title,genres), `ratings.csv`
(userId,movieId,rating,timestamp), `tags.csv` (userId,movieId,tag,timestamp) and `links.csv`
(movieId,imdbId,tmdbId). Every file must be present and start with exactly that header.

Items
    Every movie, in the order of `movies.csv` (item index 0..n-1); the item id is the integer movieId
    and the title is the file's title, year included ("Toy Story (1995)"). Facts: `year` when the title
    ends in "(YYYY)", `genres` ("Adventure, Animation") and `imdb` (the IMDb page, from `links.csv`).

Attributes, in this index order
    1. Genres, sorted by name: id "genre:Comedy", name "Comedy", group "genre". The placeholder
       "(no genres listed)" is not a genre.
    2. Decades of the year in the title, sorted: id "decade:1990s", name "1990s", group "decade".
       Movies without a "(YYYY)" at the end of their title (13 of them) have no decade.
    3. User tags: id "tag:dark comedy", name "dark comedy", group "tag". A tag is normalised
       (lower case, runs of whitespace collapsed to one space, surrounding whitespace, quotes and
       `.,;:!?` stripped); a normalised tag is kept when it was applied to at least
       `MIN_TAG_MOVIES` distinct movies and is not in `STOP_TAGS` (bookkeeping such as "in netflix
       queue", which says nothing about the movie). Of those, the `MAX_TAGS` applied to the most
       distinct movies are kept, ties broken by name; they are indexed in that rank order. A movie has
       a tag attribute when any user applied that tag to it.

Users and interactions
    Every user of `ratings.csv` is a user (id: the integer userId, no friends). A rating of 4.0 or
    more is a like, and each like is one interaction. The likes are split per user, reproducibly
    for a given `split_seed`: the user's liked item indices, sorted ascending, are permuted with
    `numpy.random.default_rng([split_seed, user_id]).permutation`; of the n liked items, the first
    max(1, floor(0.70 n)) go to `train`, the next min(n - n_train, round_half_up(0.15 n)) to
    `valid` and the rest to `test`. Within a split each user's items are listed in ascending index
    order. A user without likes has no interactions; a user appears in `valid` or `test` only with
    at least one item there. All three splits are always present.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from crs.data.dataset import Dataset
from crs.data.errors import DataError, DataNotFoundError
from crs.types import Attribute, Catalog, Interactions, Item, User, UserId

NAME = "movielens"
LIKE_THRESHOLD = 4.0
MIN_TAG_MOVIES = 3
MAX_TAGS = 150
NO_GENRES = "(no genres listed)"
# Tags about the tagger's own viewing or storage, not about the film: asking "is it in your
# netflix queue?" would make a meaningless question. Compared after normalisation.
STOP_TAGS = frozenset(
    {
        "in netflix queue",
        "netflix queue",
        "no dvd at netflix",
        "not available from netflix",
        "seen more than once",
        "seen at the cinema",
        "not seen",
        "to see",
        "watched",
        "owned",
        "free to download",
        "dvd",
        "vhs",
        "bd-r",
        "clv",
        "library",
        "tivo",
        "movies",
    }
)

MOVIES_HEADER = ("movieId", "title", "genres")
RATINGS_HEADER = ("userId", "movieId", "rating", "timestamp")
TAGS_HEADER = ("userId", "movieId", "tag", "timestamp")
LINKS_HEADER = ("movieId", "imdbId", "tmdbId")

_YEAR = re.compile(r"\((\d{4})\)\s*$")
_TAG_STRIP = " \t\"'`.,;:!?"


def normalise_tag(tag: str) -> str:
    """The form tags are compared and shown in: "  Dark  Comedy." becomes "dark comedy"."""
    return " ".join(tag.lower().split()).strip(_TAG_STRIP)


def title_year(title: str) -> int | None:
    match = _YEAR.search(title)
    return int(match.group(1)) if match else None


def split_likes(liked: list[int], split_seed: int, user_id: int) -> tuple[list[int], list[int], list[int]]:
    """One user's likes (item indices) as (train, valid, test), by the rule in the module docstring."""
    n = len(liked)
    if n == 0:
        return [], [], []
    order = np.random.default_rng([split_seed, user_id]).permutation(
        np.asarray(sorted(liked), dtype=np.int64)
    )
    # Integer arithmetic so that the boundaries cannot drift with floating-point rounding.
    n_train = max(1, 70 * n // 100)
    n_valid = min(n - n_train, (15 * n + 50) // 100)
    shuffled = [int(i) for i in order]
    return (
        sorted(shuffled[:n_train]),
        sorted(shuffled[n_train : n_train + n_valid]),
        sorted(shuffled[n_train + n_valid :]),
    )


def _rows(path: Path, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each data row, after checking the header and the field count."""
    if not path.is_file():
        raise DataError(f"missing file (expected a CSV file with the columns {','.join(header)})", path)
    try:
        # utf-8-sig: a byte-order mark written by a spreadsheet must not spoil the header check.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            first = next(reader, None)
            if first is None or tuple(first) != header:
                found = "an empty file" if first is None else ",".join(first)
                raise DataError(f"line 1: expected the header {','.join(header)}, found {found}", path)
            for fields in reader:
                if not fields:
                    continue
                if len(fields) != len(header):
                    raise DataError(
                        f"line {reader.line_num}: expected {len(header)} fields "
                        f"({','.join(header)}), found {len(fields)}",
                        path,
                    )
                yield reader.line_num, fields
    except UnicodeDecodeError:
        raise DataError("not UTF-8 text", path) from None
    except csv.Error as error:
        raise DataError(f"not valid CSV: {error}", path) from None


def _int(value: str, path: Path, line: int, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(f"line {line}: {column} must be an integer, found {value!r}", path) from None


def _movie_index(movie_id: int, index_of: dict[int, int], path: Path, line: int) -> int:
    try:
        return index_of[movie_id]
    except KeyError:
        raise DataError(f"line {line}: movieId {movie_id} is not in movies.csv", path) from None


def load_movielens(folder: Path, split_seed: int = 0) -> Dataset:
    if not folder.is_dir():
        raise DataNotFoundError(f"dataset {NAME!r} not found: no folder {folder}")

    movies_path = folder / "movies.csv"
    movie_ids: list[int] = []
    titles: list[str] = []
    genres_of: list[list[str]] = []
    index_of: dict[int, int] = {}
    for line, (raw_id, title, genres) in _rows(movies_path, MOVIES_HEADER):
        movie_id = _int(raw_id, movies_path, line, "movieId")
        if movie_id in index_of:
            raise DataError(f"line {line}: movieId {movie_id} is listed twice", movies_path)
        if not title.strip():
            raise DataError(f"line {line}: movie {movie_id} has an empty title", movies_path)
        index_of[movie_id] = len(movie_ids)
        movie_ids.append(movie_id)
        # Some titles carry a stray trailing space in the release; it is not part of the name.
        titles.append(title.strip())
        genres_of.append([g for g in genres.split("|") if g and g != NO_GENRES])

    imdb_of: dict[int, str] = {}
    links_path = folder / "links.csv"
    for line, (raw_id, imdb, _tmdb) in _rows(links_path, LINKS_HEADER):
        index = _movie_index(_int(raw_id, links_path, line, "movieId"), index_of, links_path, line)
        if imdb:
            imdb_of[index] = f"https://www.imdb.com/title/tt{imdb}/"

    tags_path = folder / "tags.csv"
    movies_of_tag: dict[str, set[int]] = {}
    for line, (_user, raw_id, tag, _time) in _rows(tags_path, TAGS_HEADER):
        index = _movie_index(_int(raw_id, tags_path, line, "movieId"), index_of, tags_path, line)
        name = normalise_tag(tag)
        if name and name not in STOP_TAGS:
            movies_of_tag.setdefault(name, set()).add(index)
    ranked_tags = sorted(
        (name for name, movies in movies_of_tag.items() if len(movies) >= MIN_TAG_MOVIES),
        key=lambda name: (-len(movies_of_tag[name]), name),
    )[:MAX_TAGS]

    years = [title_year(title) for title in titles]
    genre_names = sorted({g for genres in genres_of for g in genres})
    decade_names = sorted({f"{year // 10 * 10}s" for year in years if year is not None})
    attributes: list[Attribute] = []
    for group, names in (("genre", genre_names), ("decade", decade_names), ("tag", ranked_tags)):
        for name in names:
            attributes.append(Attribute(index=len(attributes), id=f"{group}:{name}", name=name, group=group))
    attribute_of = {attribute.id: attribute.index for attribute in attributes}

    attributes_of: list[set[int]] = [{attribute_of[f"genre:{g}"] for g in genres} for genres in genres_of]
    for index, year in enumerate(years):
        if year is not None:
            attributes_of[index].add(attribute_of[f"decade:{year // 10 * 10}s"])
    for name in ranked_tags:
        tag_attribute = attribute_of[f"tag:{name}"]
        for index in movies_of_tag[name]:
            attributes_of[index].add(tag_attribute)

    items = []
    for index, movie_id in enumerate(movie_ids):
        facts: list[tuple[str, str]] = []
        if years[index] is not None:
            facts.append(("year", str(years[index])))
        if genres_of[index]:
            facts.append(("genres", ", ".join(genres_of[index])))
        if index in imdb_of:
            facts.append(("imdb", imdb_of[index]))
        items.append(
            Item(
                index=index,
                id=movie_id,
                title=titles[index],
                attributes=tuple(sorted(attributes_of[index])),
                facts=tuple(facts),
            )
        )
    catalog = Catalog(items=tuple(items), attributes=tuple(attributes))

    ratings_path = folder / "ratings.csv"
    likes: dict[int, set[int]] = {}
    for line, (raw_user, raw_id, raw_rating, _time) in _rows(ratings_path, RATINGS_HEADER):
        user_id = _int(raw_user, ratings_path, line, "userId")
        index = _movie_index(_int(raw_id, ratings_path, line, "movieId"), index_of, ratings_path, line)
        try:
            rating = float(raw_rating)
        except ValueError:
            raise DataError(
                f"line {line}: rating must be a number, found {raw_rating!r}", ratings_path
            ) from None
        if not 0.5 <= rating <= 5.0:
            raise DataError(f"line {line}: rating {rating} is outside 0.5..5.0", ratings_path)
        liked = likes.setdefault(user_id, set())
        if rating >= LIKE_THRESHOLD:
            liked.add(index)

    users: dict[UserId, User] = {user_id: User(id=user_id) for user_id in likes}
    splits: dict[str, dict[UserId, tuple[int, ...]]] = {"train": {}, "valid": {}, "test": {}}
    for user_id, liked in likes.items():
        for name, part in zip(splits, split_likes(list(liked), split_seed, user_id), strict=True):
            if part:
                splits[name][user_id] = tuple(part)
    return Dataset(
        name=NAME,
        catalog=catalog,
        users=users,
        splits={name: Interactions(split=name, by_user=by_user) for name, by_user in splits.items()},
        source=folder,
    )
