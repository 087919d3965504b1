"""Who made a film and what it is about: directors, leading cast and a one-line plot for the items
of a movie catalog, from ReDial's `movie_text.jsonl` (PECRS release; see the data README).

The file is keyed by title only (lower case, no year), so each line is linked to catalog items by
title key (`crs.language.titles.title_keys`, the key the chat reads titles by):

- A film's keys are tried in order: its full title, its a.k.a. forms, then its short name
  ("Star Wars: Episode IV - A New Hope" -> "star wars").
- A title with one catalog film and one line links them. Otherwise (remakes, namesakes) the line's
  year is estimated: most of the file lists films by release year, so a line's year is the median
  year of the films around it that link unambiguously, where those agree (within
  `YEAR_SPREAD`). A film is linked to a line of its title whose estimated year is within
  `YEAR_SLACK` of its own; where the line's year cannot be estimated, only when they share a genre
  (names compared after folding, "Science Fiction" = "Sci-Fi", "Family" = "Children"), or either
  side has no genres. The crime film "Heat"'s cast on "Heat (2013)", a comedy, would be wrong, and
  no details is better.
- The closest pairs (year, then shared genres, then order) are linked first, each film and line once.

Details are optional for the chat: a catalog without them shows titles and genres only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from crs.data.errors import DataError
from crs.types import Catalog

MOVIE_TEXT = Path("redial") / "movie_text.jsonl"
MAX_CAST = 3  # leading actors shown on a card; the file lists about three
YEAR_WINDOW = 40  # lines on each side whose films date a line
YEAR_SPREAD = 10  # years between the 10th and 90th percentile of those films, at most, to date it
YEAR_SLACK = 3  # years between a film and the estimated year of its line, at most

# Genre names as the two sources spell them, folded to one form.
_GENRE_FOLD = {"science fiction": "sci-fi", "family": "children", "kids": "children", "musical": "music"}


@dataclass(frozen=True, slots=True)
class FilmDetails:
    directors: tuple[str, ...]
    cast: tuple[str, ...]
    plot: str
    genres: tuple[str, ...] = ()  # as the details file names them (not the catalog's)

    @property
    def people(self) -> tuple[str, ...]:
        return self.directors + self.cast


@dataclass(frozen=True)
class CatalogDetails:
    """Details of the catalog items that could be linked, by item index."""

    by_item: Mapping[int, FilmDetails]
    lines: int  # lines in the details file
    source: Path

    def get(self, item: int) -> FilmDetails | None:
        return self.by_item.get(item)

    @property
    def coverage(self) -> int:
        return len(self.by_item)


def fold_genre(name: str) -> str:
    key = " ".join(name.lower().replace("-", " - ").split()).replace(" - ", "-")
    return _GENRE_FOLD.get(key, key)


def _names(value: object, path: Path, line: int, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"line {line}: {field!r} must be a list of names", path)
    return tuple(" ".join(v.split()) for v in value if v.strip())


def read_details(path: Path) -> list[tuple[str, FilmDetails]]:
    """(title, details) of every line of a `movie_text.jsonl` file, in file order."""
    if not path.is_file():
        raise DataError("missing file (expected ReDial's movie_text.jsonl: one JSON film per line)", path)
    rows: list[tuple[str, FilmDetails]] = []
    with path.open(encoding="utf-8") as lines:
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as error:
                raise DataError(f"line {number}: not JSON ({error.msg})", path) from None
            if not isinstance(row, dict) or not isinstance(row.get("title"), str):
                raise DataError(f"line {number}: expected an object with a string 'title'", path)
            plot = row.get("plot") or ""
            if not isinstance(plot, str):
                raise DataError(f"line {number}: 'plot' must be a string", path)
            details = FilmDetails(
                directors=_names(row.get("director"), path, number, "director"),
                cast=_names(row.get("cast"), path, number, "cast")[:MAX_CAST],
                plot=" ".join(plot.split()),
                genres=_names(row.get("genres"), path, number, "genres"),
            )
            rows.append((row["title"], details))
    return rows


def link_details(catalog: Catalog, rows: list[tuple[str, FilmDetails]]) -> dict[int, FilmDetails]:
    """Catalog item -> details, by the rules in the module docstring."""
    from crs.language.titles import short_title_keys, title_keys, title_year

    lines_by_key: dict[str, list[int]] = {}
    for line, (title, _) in enumerate(rows):
        keys = title_keys(title)
        if keys:
            lines_by_key.setdefault(keys[0], []).append(line)
    items_by_key: dict[str, list[int]] = {}
    for entry in catalog.items:
        keys = [*title_keys(entry.title), *short_title_keys(entry.title)]
        key = next((k for k in keys if k in lines_by_key), None)
        if key is not None:
            items_by_key.setdefault(key, []).append(entry.index)

    def catalog_genres(item: int) -> set[str]:
        attributes = catalog.attributes
        return {
            fold_genre(attributes[a].name)
            for a in catalog.items[item].attributes
            if attributes[a].group == "genre"
        }

    linked: dict[int, FilmDetails] = {}
    for key, items in items_by_key.items():
        lines = lines_by_key[key]
        if len(items) == 1 and len(lines) == 1:
            linked[items[0]] = rows[lines[0]][1]
    line_years = _estimated_years(
        len(rows),
        {
            lines_by_key[key][0]: year
            for key, items in items_by_key.items()
            if len(items) == 1
            and len(lines_by_key[key]) == 1
            and (year := title_year(catalog.items[items[0]].title)) is not None
        },
    )
    for key, items in items_by_key.items():
        lines = lines_by_key[key]
        if len(items) == 1 and len(lines) == 1:
            continue
        items = sorted(items, key=lambda i: title_year(catalog.items[i].title) or 0)
        pairs = []
        for rank_item, item in enumerate(items):
            ours = catalog_genres(item)
            year = title_year(catalog.items[item].title)
            for rank_line, line in enumerate(lines):
                theirs = {fold_genre(g) for g in rows[line][1].genres}
                shared = len(ours & theirs)
                estimate = line_years.get(line)
                if estimate is not None and year is not None:
                    gap = abs(estimate - year)
                    if gap <= YEAR_SLACK:
                        pairs.append((gap, -shared, abs(rank_item - rank_line), item, line))
                elif shared or not ours or not theirs:
                    pairs.append((YEAR_SLACK + 1, -shared, abs(rank_item - rank_line), item, line))
        used_items: set[int] = set()
        used_lines: set[int] = set()
        for *_, item, line in sorted(pairs):
            if item not in used_items and line not in used_lines:
                linked[item] = rows[line][1]
                used_items.add(item)
                used_lines.add(line)
    return linked


def _estimated_years(n_lines: int, dated: Mapping[int, int]) -> dict[int, float]:
    """Line -> the median year of the dated lines around it, where they agree (see the module)."""
    import numpy as np

    positions = np.array(sorted(dated), dtype=np.int64)
    years = np.array([dated[p] for p in positions], dtype=np.float64)
    estimates: dict[int, float] = {}
    for line in range(n_lines):
        low, high = np.searchsorted(positions, [line - YEAR_WINDOW, line + YEAR_WINDOW + 1])
        near = years[low:high]
        if len(near) >= 5:
            p10, p50, p90 = np.percentile(near, [10, 50, 90])
            if p90 - p10 <= YEAR_SPREAD:
                estimates[line] = float(p50)
    return estimates


def load_film_details(data_dir: Path, catalog: Catalog) -> CatalogDetails:
    """The details of `catalog`'s films from `<data_dir>/redial/movie_text.jsonl`."""
    path = Path(data_dir) / MOVIE_TEXT
    rows = read_details(path)
    return CatalogDetails(by_item=MappingProxyType(link_details(catalog, rows)), lines=len(rows), source=path)
