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


__all__ = ["Part", "SeekerUtterance", "TaggedTitle", "load_seeker_utterances", "part_of"]
