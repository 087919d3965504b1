"""The `redial` dataset: ReDial's 6,924 movies as a catalog, and its real dialogues as splits.

Catalog. Items are ReDial's movies (`redial/movies.csv`, id = ReDial's movieId, title "Name
(Year)"). Attributes are genres, decades, directors and leading cast. They come from two links,
both made here because neither source shares an id with ReDial:

- **MovieLens** (`movielens-small/movies.csv`): by title key (`crs.language.titles.title_keys`:
  case, punctuation, a trailing ", The" and roman numerals folded) and year: the same year first,
  then one year apart (release dates differ by country); a ReDial name without a year links only
  to a title that one MovieLens film has. Then, for what is left, a careful fuzzy match: same
  year, similarity of the keys >= `FUZZY_LINK` ("Spider-Man: Homecoming" / "Spider-Man
  Homecoming"). A remake never links to the original: the years differ. MovieLens gives genres
  and, for the retriever and the collaborative prior, its ratings.
- **Descriptions** (`redial/movie_text.jsonl`): by `crs.data.film_details.link_details` (title key,
  namesakes told apart by the year a line's place in the file implies, then shared genres). They
  give directors, cast, genres and a plot.

Genres from both are folded to one spelling ("Science Fiction" = "Sci-Fi", "Family" = "Children").

Splits. `train_data.jsonl` holds 1,401 dialogues. `valid` is a seeded carve-out of `VALID_SIZE`
dialogues drawn only from the half of ReDial that the chat's language rules were never tuned on
(`crs.data.redial.part_of(...) == "heldout"`), so that the rules have not seen the valid split;
`train` is the rest. `test` is read from `test_data.jsonl` where it exists and is refused where it
does not (ReDial's test split is withheld here). A split's interactions are, per dialogue, the
catalog movies it mentions (so `Dataset.popularity` counts train dialogues mentioning a movie).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from crs.data.dataset import Dataset
from crs.data.errors import DataError, DataNotFoundError
from crs.data.redial import MENTION, Dialogue, load_dialogues, movie_name, part_of
from crs.types import Attribute, Catalog, Interactions, Item, User, UserId

NAME = "redial"
VALID_SIZE = 300
FUZZY_LINK = 0.92  # key similarity (0-1) for a same-year fuzzy link to MovieLens
MAX_CAST = 3
_GENRE_NAMES = {"sci-fi": "Sci-Fi", "film-noir": "Film-Noir", "children": "Children", "imax": "IMAX"}


@dataclass(frozen=True, slots=True)
class RedialMovie:
    movie_id: int
    title: str  # without the year
    year: int | None


@dataclass(frozen=True)
class DialogueDataset(Dataset):
    """A dataset whose evaluation data are real dialogues (ReDial), not simulated users."""

    dialogues: Mapping[str, tuple[Dialogue, ...]] = field(default_factory=dict)
    # Catalog item -> MovieLens item index, for the linked movies; and MovieLens itself.
    movielens_items: Mapping[int, int] = field(default_factory=dict)
    movielens: Dataset | None = None
    coverage: Mapping[str, int] = field(default_factory=dict)

    def dialogues_of(self, split: str) -> tuple[Dialogue, ...]:
        self.split(split)  # the same clear error for an absent or unknown split
        return self.dialogues[split]


def read_movies(path: Path) -> list[RedialMovie]:
    """ReDial's `movies.csv` (movieId, movieName), in file order."""
    if not path.is_file():
        raise DataNotFoundError(f"ReDial movies not found: looked for {path}")
    movies: list[RedialMovie] = []
    seen: set[int] = set()
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        header = next(rows, None)
        if header is None or [h.strip() for h in header[:2]] != ["movieId", "movieName"]:
            raise DataError("line 1: expected the header movieId,movieName", path)
        for line, row in enumerate(rows, 2):
            if not row:
                continue
            if len(row) < 2:
                raise DataError(f"line {line}: expected movieId,movieName", path)
            try:
                movie_id = int(row[0])
            except ValueError:
                raise DataError(f"line {line}: movieId must be an integer, found {row[0]!r}", path) from None
            if movie_id in seen:
                raise DataError(f"line {line}: movieId {movie_id} is listed twice", path)
            title, year = movie_name(row[1])
            # One release row is nameless (" (2015)"): it stays a rankable movie, named by its id.
            title = title or f"Movie {movie_id}"
            seen.add(movie_id)
            movies.append(RedialMovie(movie_id, title, year))
    return movies


def link_movielens(movies: Sequence[RedialMovie], movielens: Catalog) -> dict[int, int]:
    """ReDial movie position -> MovieLens item index, by the rules in the module docstring."""
    from rapidfuzz import fuzz

    from crs.language.titles import title_keys, title_year

    by_key: dict[str, list[tuple[int | None, int]]] = {}
    by_year: dict[int, list[tuple[str, int]]] = {}
    for item in movielens.items:
        year = title_year(item.title)
        keys = title_keys(item.title)
        for key in dict.fromkeys(keys):
            by_key.setdefault(key, []).append((year, item.index))
        if keys and year is not None:
            by_year.setdefault(year, []).append((keys[0], item.index))
    linked: dict[int, int] = {}
    taken: set[int] = set()
    unlinked: list[tuple[int, str, int]] = []
    for position, movie in enumerate(movies):
        keys = title_keys(movie.title)
        if not keys:
            continue
        candidates = [c for key in dict.fromkeys(keys) for c in by_key.get(key, ())]
        choice: int | None = None
        if movie.year is None:
            distinct = {index for _, index in candidates}
            choice = next(iter(distinct)) if len(distinct) == 1 else None
        else:
            for slack in (0, 1):
                close = {
                    index
                    for year, index in candidates
                    if year is not None and abs(year - movie.year) <= slack
                }
                if len(close) == 1:
                    choice = next(iter(close))
                    break
                if close:
                    break  # two films of one title within a year: not guessed
        if choice is not None and choice not in taken:
            linked[position] = choice
            taken.add(choice)
        elif choice is None and movie.year is not None:
            unlinked.append((position, keys[0], movie.year))
    for position, key, year in unlinked:
        scored = [
            (fuzz.ratio(key, other) / 100.0, index)
            for other, index in by_year.get(year, ())
            if index not in taken
        ]
        best = max(scored, default=None)
        if best is not None and best[0] >= FUZZY_LINK:
            ties = [index for score, index in scored if score == best[0]]
            if len(ties) == 1:
                linked[position] = best[1]
                taken.add(best[1])
    return linked


def _genre_name(folded: str) -> str:
    return _GENRE_NAMES.get(folded, folded.title())


def _carve_valid(ids: Sequence[str], seed: int) -> set[str]:
    pool = sorted(i for i in ids if part_of(i) == "heldout")
    # A smaller file (a sample of ReDial, a test fixture) gives up half of that half.
    return set(random.Random(f"redial-valid:{seed}").sample(pool, min(VALID_SIZE, len(pool) // 2)))


def _mentioned(dialogue: Dialogue, index_of: Mapping[int, int]) -> tuple[int, ...]:
    """Catalog items the dialogue's messages mention, in order of first mention."""
    items: dict[int, None] = {}
    for message in dialogue.messages:
        for raw in MENTION.findall(message.text):
            index = index_of.get(int(raw))
            if index is not None:
                items.setdefault(index, None)
    return tuple(items)


def _check_mentions(dialogues: Sequence[Dialogue], known: Mapping[int, int], path: Path) -> None:
    for number, dialogue in enumerate(dialogues, 1):
        if not dialogue.messages:
            raise DataError(f"dialogue {dialogue.conversation_id} (line {number}) has no messages", path)
        for movie_id in dialogue.mentions:
            if not movie_id.isdigit() or int(movie_id) not in known:
                raise DataError(
                    f"dialogue {dialogue.conversation_id} (line {number}) mentions movie {movie_id}, "
                    "which is not in movies.csv",
                    path,
                )


def load_redial(data_dir: Path, split_seed: int = 0) -> DialogueDataset:
    """The `redial` dataset from `<data_dir>/redial/` (and `<data_dir>/movielens-small/`)."""
    from crs.data.film_details import fold_genre, link_details, read_details
    from crs.data.movielens import load_movielens

    folder = data_dir / "redial"
    if not folder.is_dir():
        raise DataNotFoundError(f"dataset {NAME!r} not found: no folder {folder}")
    movies = read_movies(folder / "movies.csv")
    movielens = load_movielens(data_dir / "movielens-small")
    ml_catalog = movielens.catalog
    to_movielens = link_movielens(movies, ml_catalog)

    def ml_genres(position: int) -> list[str]:
        if position not in to_movielens:
            return []
        item = ml_catalog.items[to_movielens[position]]
        return [
            ml_catalog.attributes[a].name
            for a in item.attributes
            if ml_catalog.attributes[a].group == "genre"
        ]

    # A first catalog (titles, MovieLens genres) to link the descriptions against.
    genre_ids: dict[str, int] = {}
    draft_attributes: list[Attribute] = []
    draft_items = []
    for position, movie in enumerate(movies):
        attributes = []
        for name in ml_genres(position):
            key = fold_genre(name)
            if key not in genre_ids:
                genre_ids[key] = len(draft_attributes)
                draft_attributes.append(Attribute(len(draft_attributes), f"genre:{key}", name, "genre"))
            attributes.append(genre_ids[key])
        title = f"{movie.title} ({movie.year})" if movie.year else movie.title
        draft_items.append(Item(position, movie.movie_id, title, tuple(sorted(set(attributes)))))
    draft = Catalog(items=tuple(draft_items), attributes=tuple(draft_attributes))
    description_rows = read_details(folder / "movie_text.jsonl")
    details = link_details(draft, description_rows)

    # The catalog: genres (both sources, folded), decade, directors, leading cast.
    names: dict[str, tuple[str, str]] = {}  # attribute id -> (name, group)
    attribute_ids_of: list[list[str]] = []
    for position, movie in enumerate(movies):
        ids: list[str] = []
        film = details.get(position)
        genres = {fold_genre(g) for g in ml_genres(position)}
        genres |= {fold_genre(g) for g in (film.genres if film else ())}
        for key in sorted(genres):
            names.setdefault(f"genre:{key}", (_genre_name(key), "genre"))
            ids.append(f"genre:{key}")
        if movie.year is not None:
            decade = f"{movie.year // 10 * 10}s"
            names.setdefault(f"decade:{decade}", (decade, "decade"))
            ids.append(f"decade:{decade}")
        for group, people in (
            ("director", film.directors if film else ()),
            ("actor", film.cast[:MAX_CAST] if film else ()),
        ):
            for person in people:
                names.setdefault(f"{group}:{person.lower()}", (person, group))
                ids.append(f"{group}:{person.lower()}")
        attribute_ids_of.append(ids)
    group_order = {"genre": 0, "decade": 1, "director": 2, "actor": 3}
    ordered = sorted(names, key=lambda a: (group_order[names[a][1]], names[a][0].lower(), a))
    catalog_attributes = tuple(Attribute(i, a, names[a][0], names[a][1]) for i, a in enumerate(ordered))
    index_of_attribute = {a.id: a.index for a in catalog_attributes}
    items = []
    for position, movie in enumerate(movies):
        film = details.get(position)
        facts: list[tuple[str, str]] = []
        if movie.year is not None:
            facts.append(("year", str(movie.year)))
        if film is not None and film.plot:
            facts.append(("plot", film.plot))
        title = f"{movie.title} ({movie.year})" if movie.year else movie.title
        attribute_indices = tuple(sorted({index_of_attribute[a] for a in attribute_ids_of[position]}))
        items.append(Item(position, movie.movie_id, title, attribute_indices, tuple(facts)))
    catalog = Catalog(items=tuple(items), attributes=catalog_attributes)

    index_of = {movie.movie_id: position for position, movie in enumerate(movies)}
    train_path = folder / "train_data.jsonl"
    released = load_dialogues(data_dir, "train")
    _check_mentions(released, index_of, train_path)
    valid_ids = _carve_valid([d.conversation_id for d in released], split_seed)
    dialogues: dict[str, tuple[Dialogue, ...]] = {
        "train": tuple(d for d in released if d.conversation_id not in valid_ids),
        "valid": tuple(d for d in released if d.conversation_id in valid_ids),
    }
    missing: dict[str, Path] = {}
    test_path = folder / "test_data.jsonl"
    if test_path.is_file():
        test = load_dialogues(data_dir, "test")
        _check_mentions(test, index_of, test_path)
        dialogues["test"] = tuple(test)
    else:
        missing["test"] = test_path
    splits = {
        name: Interactions(split=name, by_user={d.conversation_id: _mentioned(d, index_of) for d in split})
        for name, split in dialogues.items()
    }
    users: dict[UserId, User] = {
        d.conversation_id: User(id=d.conversation_id) for split in dialogues.values() for d in split
    }
    coverage = {
        "movies": len(movies),
        "with_year": sum(m.year is not None for m in movies),
        "linked_movielens": len(to_movielens),
        "linked_descriptions": len(details),
        "with_genres": sum(any(a.startswith("genre:") for a in ids) for ids in attribute_ids_of),
        "with_people": sum(
            any(a.startswith(("director:", "actor:")) for a in ids) for ids in attribute_ids_of
        ),
        "description_lines": len(description_rows),
    }
    return DialogueDataset(
        name=NAME,
        catalog=catalog,
        users=MappingProxyType(users),
        splits=MappingProxyType(splits),
        source=folder,
        missing_splits=MappingProxyType(missing),
        dialogues=MappingProxyType(dialogues),
        movielens_items=MappingProxyType(to_movielens),
        movielens=movielens,
        coverage=MappingProxyType(coverage),
    )
