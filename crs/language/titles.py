"""Titles: the forms a title may be written in, a catalog's title index with fuzzy lookup, and the
guard that tells whether a text names a title.

- **Title keys** (`title_keys`) are what the understander looks messages up by: the main title
  without year, parentheses or leading article ("Godfather: Part II, The (1974)" -> "godfather
  part 2", "godfather 2"), plus every a.k.a. form in parentheses.
- **Fuzzy lookup** (`TitleIndex.closest`) scores a phrase against every title key with rapidfuzz.
  The score is `similarity`: 2 * LCS / (len a + len b), the formula of difflib's ratio with the
  exact longest common subsequence rather than difflib's greedy matching blocks, so it is never
  lower than the difflib ratio the thresholds were chosen with. Of equally close titles the one
  the fewest typos away is taken (`closest_typo`), then the one of the best-known item (most
  attributes), the rule that also decides shared keys.
- **The title guard** (`TitleGuard`) keeps the simulated user from naming its hidden target: a
  text leaks a title when it holds one of the title's forms as whole words, with the spaces left
  out, or within `FUZZY_TITLE` (typos). Titles made only of everyday words ("Yes", "Low") are
  not guarded: saying "yes" does not reveal the band Yes.

The chat and the simulated user read titles with the same folding (`crs.language.text`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias

from crs.language.lexicon import LEXICON
from crs.language.text import closest, closest_typo, normalize, words
from crs.types import Catalog

if TYPE_CHECKING:
    from numpy.typing import NDArray

# Training interactions per item (`Dataset.popularity`), a list or a numpy array.
Popularity: TypeAlias = "Sequence[float] | NDArray[Any]"

MAX_TITLE_WORDS = 10  # longest title, in words, that is looked up
FUZZY_TITLE = 0.86  # similarity at which a phrase of a text counts as the title (typos, missing spaces)
MIN_FUZZY_CHARS = 5  # shorter title forms are matched exactly only: fuzzy on "ABBA" hits too much
# Films of one title whose popularity is at least this share of the best-known one's are a real
# doubt ("King Kong": 2005 or 1933?), asked back; below it the best-known one is meant ("Frozen").
CLOSE_NAMESAKE = 0.34
MAX_NAMESAKES = 3  # offered at most, best-known first

_TITLE_YEAR = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_PARENS = re.compile(r"\(([^)]*)\)")
_AKA = re.compile(r"^(a\.?k\.?a\.?)\s*", re.IGNORECASE)
_TRAILING_ARTICLE = re.compile(
    rf"^(.*), ({'|'.join(re.escape(a) for a in LEXICON.trailing_articles)})$", re.IGNORECASE
)


def typed_title(title: str) -> str:
    """A catalog title as a person types it: "Lion King, The (1994)" -> "The Lion King", and
    "Cold Fish (Tsumetai nettaigyo) (2010)" -> "Cold Fish"."""
    base = _TITLE_YEAR.sub("", title.strip()).strip()
    base = " ".join(_PARENS.sub("", base).split()) if not base.startswith("(") else base
    moved = _TRAILING_ARTICLE.match(base)
    return f"{moved.group(2)} {moved.group(1)}" if moved else base


def digits_for_numerals(folded_words: Iterable[str]) -> list[str]:
    """Roman numerals read as digits, the way title keys store them ("rocky ii" -> "rocky 2")."""
    return [LEXICON.roman_numerals.get(word, word) for word in folded_words]


def title_year(title: str) -> int | None:
    """The year in parentheses at the end of a catalog title ("Heat (1995)" -> 1995), if any."""
    match = _TITLE_YEAR.search(title)
    return int(match.group(1)) if match else None


def title_key(folded_words: Iterable[str]) -> str:
    """The lookup key of a run of message words."""
    return " ".join(digits_for_numerals(folded_words))


def title_keys(title: str) -> list[str]:
    """Lookup keys of a catalog title: main title without year or article, plus any a.k.a. form."""
    title = _TITLE_YEAR.sub("", title)
    variants = [_PARENS.sub(" ", title)]
    variants += [_AKA.sub("", inner) for inner in _PARENS.findall(title)]
    keys: list[str] = []
    for variant in variants:
        # "Godfather: Part II, The" -> "The Godfather: Part II"
        match = _TRAILING_ARTICLE.match(variant.strip())
        if match:
            variant = f"{match.group(2)} {match.group(1)}"
        key_words = digits_for_numerals(words(variant))
        while key_words and key_words[0] in LEXICON.leading_articles:
            key_words = key_words[1:]
        if "part" in key_words:
            # "godfather part 2" -> also "godfather 2"
            short = [w for i, w in enumerate(key_words) if not (w == "part" and i + 1 < len(key_words))]
            if short and short != key_words:
                keys.append(" ".join(short))
        if key_words:
            keys.append(" ".join(key_words))
    return keys


def short_title_keys(title: str) -> list[str]:
    """Keys of the short names people use for a title with a subtitle: the part before the colon
    ("Star Wars: Episode IV - A New Hope" -> "star wars") and before a dash ("Avengers: Infinity
    War - Part I" -> "avengers infinity war")."""
    main = _PARENS.sub(" ", _TITLE_YEAR.sub("", title))
    shorts: list[str] = []
    for separator in (" - ", ":"):
        if separator in main:
            head = main.split(separator, 1)[0]
            shorts += [key for key in title_keys(head) if key not in shorts]
    return shorts


@dataclass(frozen=True, slots=True)
class TitleMatch:
    item: int
    similarity: float


@dataclass(frozen=True)
class TitleIndex:
    """Title key -> item of one catalog. Where items share a key, the best-known one has it: the
    most popular where the catalog's popularity is given, else the one with the most attributes (a
    proxy for how well known it is)."""

    items: Mapping[str, int]
    keys: tuple[str, ...]  # the candidates of a fuzzy lookup, best-known items first
    max_words: int  # words of the longest key, at most MAX_TITLE_WORDS
    # item -> every item of the same main title ("King Kong" 1933, 1976, 2005), best-known first;
    # only for items that have such namesakes.
    namesakes: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    # item -> how well known it is: popularity where given, else the number of attributes.
    renown: Sequence[float] = ()
    by_popularity: bool = False  # renown is real popularity, so near ties among namesakes are real
    years: Mapping[int, int] = field(default_factory=dict)  # the year in the title, of items with namesakes
    # The renown from which an item is among the best-known tenth of the catalog.
    well_known_from: float = 0.0

    @classmethod
    def from_catalog(cls, catalog: Catalog, popularity: Popularity | None = None) -> TitleIndex:
        if popularity is not None and len(popularity) != catalog.n_items:
            raise ValueError(f"popularity has {len(popularity)} values for {catalog.n_items} items")
        renown = (
            [
                float(p) + len(item.attributes) / 1000
                for p, item in zip(popularity, catalog.items, strict=True)
            ]
            if popularity is not None
            else [float(len(item.attributes)) for item in catalog.items]
        )
        items: dict[str, int] = {}
        same_title: dict[str, list[int]] = {}
        for item in catalog.items:
            keys = title_keys(item.title)
            if keys:
                same_title.setdefault(keys[0], []).append(item.index)
            for key in keys:
                best = items.get(key)
                if best is None or renown[item.index] > renown[best]:
                    items[key] = item.index
        # Short names only where no title is spelled that way in full; so are two or three words
        # written as one ("castaway" for "Cast Away", "spiderman").
        shorts: dict[str, int] = {}
        for item in catalog.items:
            main = title_keys(item.title)[:1]
            joined = [
                k.replace(" ", "") for k in main if 1 <= k.count(" ") <= 2 and k.replace(" ", "").isalpha()
            ]
            for key in [*short_title_keys(item.title), *joined]:
                best = shorts.get(key)
                if key not in items and (best is None or renown[item.index] > renown[best]):
                    shorts[key] = item.index
        items.update(shorts)
        max_words = min(MAX_TITLE_WORDS, max((key.count(" ") + 1 for key in items), default=1))
        # Best-known items first: of titles equally close to a phrase, and as many typos away, a fuzzy
        # lookup takes the first.
        keys = sorted(items, key=lambda key: -renown[items[key]])
        namesakes: dict[int, tuple[int, ...]] = {}
        for group in same_title.values():
            if len(group) > 1:
                ranked = tuple(sorted(group, key=lambda i: -renown[i]))
                namesakes.update(dict.fromkeys(group, ranked))
        return cls(
            items=MappingProxyType(items),
            keys=tuple(keys),
            max_words=max_words,
            namesakes=MappingProxyType(namesakes),
            renown=tuple(renown),
            by_popularity=popularity is not None,
            years=MappingProxyType(
                {i: year for i in namesakes if (year := title_year(catalog.items[i].title)) is not None}
            ),
            well_known_from=sorted(renown)[int(0.9 * len(renown))] if renown else 0.0,
        )

    def well_known(self, item: int) -> bool:
        """Whether `item` is among the best-known tenth of the catalog."""
        return self.renown[item] >= self.well_known_from

    def close_namesakes(self, item: int) -> tuple[int, ...]:
        """The namesakes of `item` (itself included) that are about as well known as the best of
        them, when there are several: a title that alone cannot tell which film is meant. Empty
        without real popularity: attribute counts tie too often to ask on them."""
        group = self.namesakes.get(item, ())
        if not self.by_popularity or len(group) < 2:
            return ()
        top = self.renown[group[0]]
        close = tuple(i for i in group if self.renown[i] >= CLOSE_NAMESAKE * top)[:MAX_NAMESAKES]
        return close if len(close) > 1 else ()

    def namesake_of_year(self, item: int, year: int) -> int | None:
        """The film of `item`'s title from `year` ("Frozen" + 2010 -> Frozen (2010)), if any."""
        return next((i for i in self.namesakes.get(item, (item,)) if self.years.get(i) == year), None)

    def item(self, key: str) -> int | None:
        """The item whose title key is exactly `key`."""
        return self.items.get(key)

    def closest(self, phrase: str, cutoff: float) -> TitleMatch | None:
        """The item whose title key is most similar to `phrase`, if at least `cutoff` similar."""
        found = closest_typo(phrase, self.keys, cutoff)
        return None if found is None else TitleMatch(self.items[found[0]], found[1])


# --- the title guard ------------------------------------------------------------------------------


def title_forms(title: str) -> tuple[str, ...]:
    """The ways a title may be written: "Lion King, The (1994)" -> "the lion king", "lion king"."""
    base = _TITLE_YEAR.sub("", title.strip()).strip()
    moved = _TRAILING_ARTICLE.match(base)
    candidates = [base]
    if moved:
        candidates += [f"{moved.group(2)} {moved.group(1)}", moved.group(1)]
    if "&" in base:
        # Folding reads "&" as "and"; people also just leave it out ("simon garfunkel").
        candidates += [candidate.replace("&", " ") for candidate in candidates]
    forms: list[str] = []
    for candidate in candidates:
        form = normalize(candidate)
        if form.startswith("the ") and len(form) > 8:
            forms.append(form[4:])
        forms.append(form)
    everyday = LEXICON.title_guard_everyday_words
    return tuple(
        form
        for form in dict.fromkeys(forms)
        if form and not all(word in everyday or word.isdigit() for word in form.split())
    )


def _windows(text_words: Sequence[str], size: int, length: int) -> list[str]:
    """Runs of `size` consecutive words whose length is within 3 characters of `length`."""
    runs = (" ".join(text_words[start : start + size]) for start in range(max(0, len(text_words) - size) + 1))
    return [run for run in runs if abs(len(run) - length) <= 3]


class TitleGuard:
    """Says whether a text names one title (whole words, case-insensitive, small typos allowed)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.forms = title_forms(title)

    def leaks(self, text: str) -> bool:
        if not self.forms:
            return False
        text_words = words(text)
        padded = f" {' '.join(text_words)} "
        for form in self.forms:
            if f" {form} " in padded or f" {form.replace(' ', '')} " in padded:
                return True
            if len(form) < MIN_FUZZY_CHARS:
                continue
            n = form.count(" ") + 1
            for size in {max(1, n - 1), n, n + 1}:
                if closest(form, _windows(text_words, size, len(form)), FUZZY_TITLE) is not None:
                    return True
        return False
