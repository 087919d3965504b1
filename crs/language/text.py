"""Text normalisation and string similarity shared by everything that reads words: messages,
attribute names and titles.

One folding for all readers (the chat's understander, the title index, the simulated user's title
guard), so that a title written one way in the catalog and another way in a message meet in the
same form: lower case, accents folded to ASCII (characters without an ASCII form dropped),
apostrophes removed ("80's" -> "80s", "don't" -> "dont"), "&" read as "and", and every other
non-alphanumeric character a word break.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, LCSseq

from crs.language.lexicon import LEXICON

STOPWORDS = LEXICON.stopwords
BOUNDARY_PUNCTUATION = LEXICON.boundary_punctuation

DECADE_LONG = re.compile(r"^(19|20)(\d)0s$")  # "1990s": the key keeps the short form, "90s"
DECADE_SHORT = re.compile(r"^(\d)0s$")
# rapidfuzz turns a score cut-off into a whole number of edits, rounding in floating point, and can
# drop a choice that scores exactly the cut-off: the cut-off it gets is one point (of 100) lower,
# and the exact `similarity` decides.
_SCORE_SLACK = 1.0
_APOSTROPHES = re.compile(r"['`´’]")
_WORD = re.compile(r"[a-z0-9]+")
_HTML_TAG = re.compile(r"<[^>]{0,200}>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
# "#3" stays one token (a list position); punctuation that ends a clause is kept as a token.
_TOKEN = re.compile(r"#?[a-z0-9]+|[,.;!?:]")
_CASED_TOKEN = re.compile(r"#?[A-Za-z0-9]+|[,.;!?:]")
_POSSESSIVE = re.compile(r"(\w+)['’]s\b")
# A dot that ends no sentence: in an initialism ("E.T.", "P.S. I Love You", "S.W.A.T.") and after
# a title of address ("Mrs. Doubtfire"). Left as a token it would split the title it sits in.
_INITIALISM = re.compile(r"\b(?:[A-Za-z]\.){2,}")
_ADDRESS = re.compile(r"\b(Mr|Mrs|Ms|Dr|St|Jr|Sr|Mt|Vs)\.", re.IGNORECASE)


def fold(text: str) -> str:
    """Lower case, accents folded to ASCII, apostrophes removed, "&" -> " and "."""
    text = unicodedata.normalize("NFKD", text)
    text = text.encode("ascii", "ignore").decode("ascii").lower()
    text = _APOSTROPHES.sub("", text)
    return text.replace("&", " and ")


def words(text: str) -> list[str]:
    """The folded alphanumeric words of `text`."""
    return _WORD.findall(fold(text))


def normalize(text: str) -> str:
    """`text` folded, one space between its words: the form titles are compared in."""
    return " ".join(words(text))


def similarity(a: str, b: str) -> float:
    """2 * LCS / (len a + len b), LCS the longest common subsequence: 1.0 for equal strings.

    It is difflib's `SequenceMatcher.ratio` formula with the exact LCS in place of difflib's greedy
    matching blocks, so it is never lower than that ratio and equal to it wherever difflib's blocks
    find the longest common subsequence (most short strings).
    """
    total = len(a) + len(b)
    return 2.0 * LCSseq.similarity(a, b) / total if total else 1.0


def _most_similar(query: str, choices: Sequence[str], cutoff: float) -> tuple[float, list[tuple[int, str]]]:
    """The highest `similarity` of a choice to `query`, if at least `cutoff`, and the (position,
    choice) of every choice that has it; (0.0, []) when none reaches `cutoff`.

    rapidfuzz finds the candidates; the exact `similarity` ranks and cuts them.
    """
    found = process.extract(
        query, choices, scorer=fuzz.ratio, score_cutoff=100 * cutoff - _SCORE_SLACK, limit=None
    )
    scored = [(similarity(query, choice), position, choice) for choice, _, position in found]
    best = max((score for score, _, _ in scored), default=0.0)
    if best < cutoff:
        return 0.0, []
    return best, [(position, choice) for score, position, choice in scored if score == best]


def closest(query: str, choices: Sequence[str], cutoff: float) -> tuple[str, float] | None:
    """The choice most similar to `query` and its `similarity`, if that is at least `cutoff`; of
    equally similar choices the first."""
    best, tied = _most_similar(query, choices, cutoff)
    return (min(tied)[1], best) if tied else None


def closest_typo(query: str, choices: Sequence[str], cutoff: float) -> tuple[str, float] | None:
    """Like `closest`, but of equally similar choices the one the fewest typos away (a swap of two
    neighbouring letters counts as one typo: "mvoie" is nearer "movie" than "voice"), then the first.

    `similarity` scores "silent mvoie" the same against "silent movie" and "silent voice": it
    cannot see a swap. Counting typos can, and typos are what fuzzy titles are for.
    """
    best, tied = _most_similar(query, choices, cutoff)
    if not tied:
        return None
    return min((OSA.distance(query, choice), position, choice) for position, choice in tied)[2], best


def singular(token: str) -> str:
    """A deliberately light English plural stemmer, applied to catalog names and messages alike."""
    if len(token) <= 3 or token[0].isdigit() or token.endswith(("ss", "us", "is")):
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith("s"):
        return token[:-1]
    return token


def normalize_key(text: str) -> str:
    """The lookup key of an attribute name or a phrase: folded, tokenised, singular, "1990s" -> "90s"."""
    return " ".join(DECADE_LONG.sub(r"\g<2>0s", singular(word)) for word in words(text))


def _clean(text: str) -> str:
    text = _CONTROL.sub(" ", text)
    text = html.unescape(_HTML_TAG.sub(" ", text))
    for phrase, replacement in LEXICON.message_rewrites:
        if phrase in text:
            text = text.replace(phrase, replacement)
    if "." in text:
        text = _INITIALISM.sub(lambda m: m.group(0).replace(".", " "), text)
        text = _ADDRESS.sub(r"\1 ", text)
    return text


def tokenize(text: str) -> list[str]:
    """The tokens of a message: folded words, "#N" positions and clause punctuation, in order.

    Control characters and HTML tags go first (pasted text, attempts at markup); the lexicon's
    rewrites run on the raw text, before folding would split "r&b" or drop an emoji; hyphens and
    slashes split words ("sci-fi" -> "sci fi").
    """
    text = fold(_clean(text)).replace("-", " ").replace("/", " ")
    return _TOKEN.findall(text)


SENTENCE_OPENING = 2  # `capitalised`: a sentence's first word, capitalised like the words after it
SENTENCE_OPENING_ALONE = 3  # `capitalised`: a sentence's capitalised first word, the words after it not


def capitalised(text: str) -> list[int]:
    """For each token of `tokenize(text)`: 1 where the writer capitalised it ("Coco", not "coco",
    "COCO" or "I") mid-sentence, `SENTENCE_OPENING` for a sentence's first word when a
    capitalised word follows it (past short joining words: "Pursuit of Happiness", "Groundhog
    Day"), `SENTENCE_OPENING_ALONE` for a capitalised first word without one, else 0. People
    capitalise the titles they name; the understander takes that as a cue.
    All 0 when the cased and folded token streams do not line up (a character whose case
    folding changes its length)."""
    cased = unicodedata.normalize("NFKD", _clean(text)).encode("ascii", "ignore").decode("ascii")
    cased = _APOSTROPHES.sub("", cased).replace("&", " and ").replace("-", " ").replace("/", " ")
    tokens = _CASED_TOKEN.findall(cased)
    folded = tokenize(text)
    if [t.lower() for t in tokens] != folded:
        return [0] * len(folded)
    capital = [token[0].isupper() and len(token) > 1 and not token.isupper() for token in tokens]
    for position, token in enumerate(tokens):
        if capital[position] or position == 0:
            continue
        before, after = tokens[position - 1], tokens[position + 1] if position + 1 < len(tokens) else ""
        if token[0].isdigit() or token.lower() in LEXICON.roman_numerals:
            # A number in a run of capitalised words belongs to it: its title may end on it
            # ("Saw V", "Gone in 60 Seconds", "Friday the 13th").
            previous = position - 1
            while previous > 0 and tokens[previous].lower() in LEXICON.title_joining_words:
                previous -= 1
            capital[position] = capital[previous] and (token[0].isdigit() or token.isupper())
        elif len(token) == 1 and token.isupper() and token not in ("I", "A"):
            # An initialism's letters, its dots gone ("E T the Extra Terrestrial").
            capital[position] = (len(before) == 1 and before.isupper()) or (
                len(after) == 1 and after.isupper()
            )
    flags: list[int] = []
    sentence_start = True
    for position, token in enumerate(tokens):
        if not capital[position]:
            flags.append(0)
        elif not sentence_start:
            flags.append(1)
        else:
            after = position + 1
            while after < len(tokens) and (
                folded[after] in LEXICON.title_joining_words or folded[after] == ":"
            ):
                after += 1
            # A number right after it ("Number 2, that's the one") does not make it a title's first
            # word; one after a joining word does ("Friday the 13th").
            opens_run = (
                after < len(tokens)
                and capital[after]
                and (tokens[after][0].isalpha() or after > position + 1)
            )
            flags.append(SENTENCE_OPENING if opens_run else SENTENCE_OPENING_ALONE)
        sentence_start = token in (".", "!", "?")
    return flags


def possessives(text: str) -> frozenset[str]:
    """The folded words written with a possessive "'s" in `text` ("Disney's Coco" -> {"disneys"}):
    such a word is not part of the title that follows it."""
    return frozenset(" ".join(words(match.group(1) + "s")) for match in _POSSESSIVE.finditer(_clean(text)))


def find_phrase(tokens: Sequence[str], phrase: Sequence[str], start: int = 0) -> int:
    """The first position at or after `start` where `phrase` occurs in `tokens`, or -1."""
    n = len(phrase)
    wanted = tuple(phrase)
    for i in range(start, len(tokens) - n + 1):
        if tuple(tokens[i : i + n]) == wanted:
            return i
    return -1


def has_phrase(tokens: Sequence[str], phrases: Sequence[Sequence[str]]) -> bool:
    """Whether any of `phrases` occurs in `tokens`."""
    return any(find_phrase(tokens, phrase) >= 0 for phrase in phrases)
