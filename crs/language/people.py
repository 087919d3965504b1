"""People named in a message ("with Jim Carrey", "by Jordan Peele", "something Spielberg made"),
read against the directors and leading cast of a catalog's films (`crs.data.film_details`).

- A full name counts anywhere, in any case ("jim carrey"), when it is a name of at least two words.
- A surname alone counts after a cue ("with Carrey", "by Spielberg", "starring Hanks") or written
  capitalised on its own (not inside a run of capitalised words, which is a title or a place:
  "Toy Story", "New York", "Saving Private Ryan"; not after "the": "the Rock"), when one person
  of the catalog carries it in at least `MIN_FILMS_FOR_SURNAME` films and no other person with that
  surname comes close (half as many films): "Nolan" is Christopher Nolan, "Smith" is nobody.
- A surname that is also an everyday word or a catalog attribute ("Stone", "Black") needs its cue.
- A first name alone counts only after a cue ("a comedy with Julia", "starring Keanu"), under the
  same rule as a surname; of a surname and a first name that both fit, the person with more films.

A name right after a negation ("nothing with Adam Sandler", "no Tarantino", "without Carrey")
is unwanted. Only names of people with films in the catalog are known.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from crs.data.film_details import CatalogDetails
from crs.language.text import STOPWORDS, normalize
from crs.types import Catalog

MIN_FILMS_FOR_SURNAME = 3
MAX_NAME_WORDS = 4
_CUES = frozenset(
    {"with", "by", "starring", "stars", "featuring", "director", "directed", "actor", "actress"}
)
_NEGATIONS = frozenset({"no", "not", "without", "nothing", "none", "never", "hate", "hated"})
_ARTICLES = frozenset({"the"})  # "the Rock" is no surname; "a Tarantino film" is
_WORD = re.compile(r"[^\W_]+(?:[-'’.][^\W_]+)*\.?", re.UNICODE)


@dataclass(frozen=True)
class Person:
    name: str
    films: tuple[int, ...]  # catalog items they directed or lead in, in catalog order
    directed: tuple[int, ...]


def _key(words: list[str]) -> str:
    return " ".join(words)


def person_key(name: str) -> str:
    """The form names are compared in: "Robert Downey Jr." -> "robert downey jr"."""
    return normalize(name)


class PeopleIndex:
    """Every director and leading actor of the linked films, by folded name and by surname."""

    def __init__(self, details: CatalogDetails, everyday: frozenset[str] = frozenset()) -> None:
        films: dict[str, list[int]] = {}
        directed: dict[str, list[int]] = {}
        spelled: dict[str, str] = {}
        for item, film in sorted(details.by_item.items()):
            for name in film.people:
                key = person_key(name)
                if not key:
                    continue
                spelled.setdefault(key, name)
                films.setdefault(key, []).append(item)
                if name in film.directors:
                    directed.setdefault(key, []).append(item)
        self.people: Mapping[str, Person] = MappingProxyType(
            {
                key: Person(
                    spelled[key], tuple(dict.fromkeys(items)), tuple(dict.fromkeys(directed.get(key, ())))
                )
                for key, items in films.items()
            }
        )
        by_surname: dict[str, list[str]] = {}
        by_first_name: dict[str, list[str]] = {}
        for key in self.people:
            parts = key.split()
            if len(parts) >= 2:
                by_surname.setdefault(parts[-1], []).append(key)
                by_first_name.setdefault(parts[0], []).append(key)
        self.surnames: Mapping[str, str] = MappingProxyType(self._dominant(by_surname))
        self.first_names: Mapping[str, str] = MappingProxyType(self._dominant(by_first_name))
        self.everyday = everyday
        self.longest = min(MAX_NAME_WORDS, max((k.count(" ") + 1 for k in self.people), default=1))

    def _dominant(self, by_name: Mapping[str, list[str]]) -> dict[str, str]:
        """Name -> the person it means: the one with at least `MIN_FILMS_FOR_SURNAME` films when
        nobody else of that name comes close (half as many)."""
        dominant: dict[str, str] = {}
        for name, keys in by_name.items():
            counts = Counter({k: len(self.people[k].films) for k in keys})
            (best, n), *rest = counts.most_common()
            if n >= MIN_FILMS_FOR_SURNAME and (not rest or rest[0][1] * 2 < n) and name not in STOPWORDS:
                dominant[name] = best
        return dominant

    @classmethod
    def for_catalog(cls, details: CatalogDetails, catalog: Catalog) -> PeopleIndex:
        """The index the chat reads with: a surname that is also an attribute's name ("black",
        "stone") counts only after a cue."""
        return cls(details, everyday=frozenset(a.name.lower() for a in catalog.attributes))

    def find(self, text: str) -> tuple[tuple[Person, bool], ...]:
        """(person, wanted) for the people `text` names, in the order named, each once."""
        spans = [(m.group(0), normalize(m.group(0))) for m in _WORD.finditer(text)]
        words = [folded for _, folded in spans]
        found: list[tuple[int, Person]] = []  # (first word, person)
        taken = [False] * len(words)
        for length in range(self.longest, 1, -1):
            for start in range(0, len(words) - length + 1):
                if any(taken[start : start + length]):
                    continue
                person = self.people.get(_key(words[start : start + length]))
                if person is not None:
                    found.append((start, person))
                    taken[start : start + length] = [True] * length

        def capitalised(position: int) -> bool:
            return 0 <= position < len(spans) and spans[position][0][:1].isupper()

        for position, (_, word) in enumerate(spans):
            cued = position > 0 and words[position - 1] in _CUES
            if not taken[position] and cued and word in self.first_names:
                first = self.people[self.first_names[word]]
                by_surname = self.people[self.surnames[word]] if word in self.surnames else None
                if by_surname is None or len(first.films) > len(by_surname.films):
                    found.append((position, first))
                    taken[position] = True
                    continue
            if taken[position] or word not in self.surnames:
                continue
            alone = (
                capitalised(position)
                and position > 0
                and not capitalised(position - 1)
                and not capitalised(position + 1)
                and words[position - 1] not in _ARTICLES
            )
            if cued or (alone and word not in self.everyday):
                found.append((position, self.people[self.surnames[word]]))
                taken[position] = True
        named: dict[Person, bool] = {}
        for start, person in sorted(found, key=lambda pair: pair[0]):
            # "nothing with X", "no X", "without X": a negation among the two words before the name.
            before = words[max(0, start - 2) : start]
            named.setdefault(person, not any(w in _NEGATIONS for w in before))
        return tuple(named.items())
