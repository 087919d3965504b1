"""The word lists of the language understanding, read once from `lexicon.toml` into frozen structures.

The lists are data, not code: they are what gets tuned on the development messages (see
`crs.language.evaluation`), and a diff of the TOML file shows exactly which words changed. Every
key of the file is a field of `Lexicon` and the other way round, so a misspelt key fails loudly at
import instead of leaving a list silently empty.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

Phrase = tuple[str, ...]
LEXICON_FILE = "lexicon.toml"


@dataclass(frozen=True)
class Lexicon:
    """One field per table of lexicon.toml; the file's comments say what each is for."""

    stopwords: frozenset[str]
    message_rewrites: tuple[tuple[str, str], ...]
    yes_words: frozenset[str]
    yes_phrases: tuple[Phrase, ...]
    no_words: frozenset[str]
    no_phrases: tuple[Phrase, ...]
    dont_know_phrases: tuple[Phrase, ...]
    dont_care_phrases: tuple[Phrase, ...]
    after_answer_words: frozenset[str]
    negation_words: frozenset[str]
    negation_phrases: tuple[Phrase, ...]
    positive_words: frozenset[str]
    neutralisers: tuple[Phrase, ...]
    boundary_words: frozenset[str]
    boundary_punctuation: frozenset[str]
    item_cues: tuple[Phrase, ...]
    none_phrases: tuple[Phrase, ...]
    seen_words: frozenset[str]
    restart_phrases: tuple[Phrase, ...]
    help_phrases: tuple[Phrase, ...]
    quit_phrases: tuple[Phrase, ...]
    more_like_phrases: tuple[Phrase, ...]
    function_words: frozenset[str]
    title_guard_everyday_words: frozenset[str]
    hesitations: frozenset[str]
    help_words: frozenset[str]
    quit_vetoes: tuple[Phrase, ...]
    already_have_phrases: tuple[Phrase, ...]
    seen_all_phrases: tuple[Phrase, ...]
    title_breaks: frozenset[str]
    leading_articles: frozenset[str]
    title_joining_words: frozenset[str]
    title_subject_verbs: frozenset[str]
    title_verbs: frozenset[str]
    change_of_mind_phrases: tuple[Phrase, ...]
    newest_film_words: frozenset[str]
    oldest_film_words: frozenset[str]
    exact_title_cues: tuple[Phrase, ...]
    trailing_articles: tuple[str, ...]
    position_before_digit: frozenset[str]
    position_after_digit: frozenset[str]
    position_before_number_word: frozenset[str]
    position_after_last: frozenset[str]
    first_item_pointers: tuple[Phrase, ...]
    last_item_pointers: tuple[Phrase, ...]
    not_pointers: tuple[Phrase, ...]
    boundary_quantifiers: frozenset[str]
    non_negating_after_no: frozenset[str]
    negation_cancellers: frozenset[str]
    negation_keepers: frozenset[str]
    synonyms: Mapping[str, tuple[str, ...]]
    ordinals: Mapping[str, int]
    number_words: Mapping[str, int]
    roman_numerals: Mapping[str, str]


# How a TOML value becomes its field's type, by the field's annotation (a string: postponed annotations).
_CONVERTERS: dict[str, Callable[[Any], object]] = {
    "frozenset[str]": lambda value: frozenset(str(v) for v in value),
    "tuple[str, ...]": lambda value: tuple(str(v) for v in value),
    "tuple[Phrase, ...]": lambda value: tuple(tuple(str(v).split()) for v in value),
    "tuple[tuple[str, str], ...]": lambda value: tuple((str(a), str(b)) for a, b in value),
    "Mapping[str, tuple[str, ...]]": lambda value: MappingProxyType(
        {str(k): tuple(str(v) for v in vs) for k, vs in value.items()}
    ),
    "Mapping[str, int]": lambda value: MappingProxyType({str(k): int(v) for k, v in value.items()}),
    "Mapping[str, str]": lambda value: MappingProxyType({str(k): str(v) for k, v in value.items()}),
}


def parse_lexicon(raw: Mapping[str, Any]) -> Lexicon:
    """A `Lexicon` from the parsed TOML; raises ValueError on a missing or unknown table."""
    expected = {field.name: str(field.type) for field in fields(Lexicon)}
    missing, unknown = expected.keys() - raw.keys(), raw.keys() - expected.keys()
    if missing or unknown:
        raise ValueError(f"{LEXICON_FILE}: missing tables {sorted(missing)}, unknown {sorted(unknown)}")
    values: dict[str, Any] = {name: _CONVERTERS[kind](raw[name]) for name, kind in expected.items()}
    return Lexicon(**values)


@cache
def load_lexicon() -> Lexicon:
    """The packaged lexicon, read once per process."""
    text = resources.files("crs.language").joinpath(LEXICON_FILE).read_text(encoding="utf-8")
    return parse_lexicon(tomllib.loads(text))


LEXICON = load_lexicon()
