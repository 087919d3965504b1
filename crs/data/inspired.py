"""INSPIRED (Hayati et al., EMNLP 2020) dev dialogues: what seekers really typed, with the
annotators' tags for the movies and genres they name. Only the dev split exists here; it is a
test of reading, not training data.

The dialogues are split in two by a hash of their id (`part_of`): "tune", which the word lists
and title rules may be fitted to, and "heldout", which nobody looks at while doing so. The split
does not depend on the order of the file or on anything random.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from crs.data.errors import DataNotFoundError

Part = Literal["tune", "heldout"]
SPLIT_SALT = "inspired-dev-split-v1"
_QUOTE = "QUOTATION_MARK"
_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")


@dataclass(frozen=True, slots=True)
class TaggedTitle:
    title: str  # as the annotators wrote it, without the year
    year: int | None


@dataclass(frozen=True, slots=True)
class SeekerUtterance:
    dialog_id: str
    turn: int
    text: str
    movies: tuple[TaggedTitle, ...]
    genres: tuple[str, ...]  # lower case, as tagged ("sci-fi", "comedy")
    part: Part
    people: tuple[str, ...] = ()  # actors and directors, as tagged ("Tom Hanks")
    utterance_id: int = 0  # `utt_id`: with `dialog_id`, the utterance's key


@dataclass(frozen=True, slots=True)
class NamedMovies:
    """The movies one seeker utterance names, as a second, careful reading found them (see
    `load_named_movies`): catalog titles verbatim, films the catalog lacks, whole series, and the
    catalog films of shared titles whose reading stays unsure."""

    movies: tuple[str, ...] = ()
    outside: tuple[str, ...] = ()
    series_titles: tuple[str, ...] = ()
    unsure: tuple[str, ...] = ()


def part_of(dialog_id: str) -> Part:
    """Which half of the dev dialogues `dialog_id` is in (about half each)."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{dialog_id}".encode()).digest()
    return "tune" if digest[0] % 2 == 0 else "heldout"


def _titles(cell: str) -> tuple[TaggedTitle, ...]:
    found: list[TaggedTitle] = []
    for raw in cell.split(";"):
        raw = raw.strip()
        if not raw:
            continue
        match = _YEAR.match(raw)
        if match:
            found.append(TaggedTitle(match.group("title"), int(match.group("year"))))
        else:
            found.append(TaggedTitle(raw, None))
    return tuple(dict.fromkeys(found))


def load_seeker_utterances(data_dir: Path) -> list[SeekerUtterance]:
    """Every seeker utterance of `data_dir/inspired/dev.tsv`, tagged or not, in file order."""
    path = data_dir / "inspired" / "dev.tsv"
    if not path.is_file():
        raise DataNotFoundError(f"INSPIRED dev dialogues not found: looked for {path}")
    csv.field_size_limit(sys.maxsize)
    rows: list[SeekerUtterance] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row.get("speaker") != "SEEKER":
                continue
            dialog_id = row["dialog_id"]
            rows.append(
                SeekerUtterance(
                    dialog_id=dialog_id,
                    turn=int(row["turn_id"] or 0),
                    utterance_id=int(row["utt_id"] or 0),
                    text=row["text"].replace(_QUOTE, '"'),
                    movies=_titles(row.get("movies") or ""),
                    genres=tuple(
                        dict.fromkeys(
                            g.strip().lower() for g in (row.get("genres") or "").split(";") if g.strip()
                        )
                    ),
                    part=part_of(dialog_id),
                    people=tuple(
                        dict.fromkeys(
                            p.strip() for p in (row.get("people_names") or "").split(";") if p.strip()
                        )
                    ),
                )
            )
    return rows


@dataclass(frozen=True, slots=True)
class NamedGenres:
    """The genres one seeker utterance names, wanted or not, as a second, careful reading found
    them (see `load_named_genres`), in the catalog's genre names; `unsure` ones count neither way."""

    genres: tuple[str, ...] = ()
    unwanted: tuple[str, ...] = ()
    unsure: tuple[str, ...] = ()


def load_named_genres(path: Path) -> dict[tuple[str, int], NamedGenres]:
    """The genre re-annotation of INSPIRED dev, in the format of `load_named_movies` (a line per
    utterance that names a genre; none without a line)."""
    named: dict[tuple[str, int], NamedGenres] = {}
    for key, row in _annotation_lines(path, "genre"):
        named[key] = NamedGenres(
            genres=tuple(str(g) for g in row.get("genres", ())),
            unwanted=tuple(str(g) for g in row.get("unwanted", ())),
            unsure=tuple(str(g) for g in row.get("unsure", ())),
        )
    return named


def _annotation_lines(path: Path, kind: str) -> list[tuple[tuple[str, int], dict[str, list[str]]]]:
    """(key, row) of each line of a re-annotation file, every key once; DataNotFoundError when the
    file is missing, ValueError naming the line when one is malformed."""
    if not path.is_file():
        raise DataNotFoundError(f"INSPIRED {kind} re-annotation not found: looked for {path}")
    rows: list[tuple[tuple[str, int], dict[str, list[str]]]] = []
    seen: set[tuple[str, int]] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key = (str(row["dialog_id"]), int(row["utt_id"]))
            lists = {name: value for name, value in row.items() if name not in ("dialog_id", "utt_id")}
            if not all(isinstance(v, list) and all(isinstance(t, str) for t in v) for v in lists.values()):
                raise ValueError("every field but the key must be a list of strings")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}:{number}: not a re-annotation line ({error})") from None
        if key in seen:
            raise ValueError(f"{path}:{number}: utterance {key} annotated twice")
        seen.add(key)
        rows.append((key, lists))
    return rows


def load_named_movies(path: Path) -> dict[tuple[str, int], NamedMovies]:
    """The movie re-annotation of INSPIRED dev (one JSON line per utterance that names a movie,
    a series or a film the catalog lacks, keyed by `dialog_id` and `utt_id`; an utterance without
    a line names none). Raises `DataNotFoundError` when the file is missing, ValueError naming the
    line when one is malformed."""
    return {
        key: NamedMovies(
            movies=tuple(str(t) for t in row.get("movies", ())),
            outside=tuple(str(t) for t in row.get("outside", ())),
            series_titles=tuple(str(t) for t in row.get("series_titles", ())),
            unsure=tuple(str(t) for t in row.get("unsure", ())),
        )
        for key, row in _annotation_lines(path, "movie")
    }


__all__ = [
    "NamedGenres",
    "NamedMovies",
    "Part",
    "SeekerUtterance",
    "TaggedTitle",
    "load_named_genres",
    "load_named_movies",
    "load_seeker_utterances",
    "part_of",
]
