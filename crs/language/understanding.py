"""Natural language understanding: one user message plus the dialogue context -> dialogue acts.

Design, and why:

- **Rules over a precomputed catalog index, no model.** The acts a recommender dialogue needs are
  few (answer, inform, name an item, react to a list, restart, help, quit), their wording is
  formulaic, and their slots come from a closed vocabulary (the catalog's attribute names and item
  titles). Exact lookups in dictionaries built once in the constructor keep a message well under
  a few milliseconds on MovieLens' 9,742 titles, and every decision can be traced.
- **Normalisation first.** Lower case, accents folded, HTML tags and control characters dropped,
  apostrophes removed ("80's" -> "80s", "don't" -> "dont"), hyphens split ("sci-fi" -> "sci fi"),
  a light plural stemmer ("comedies" -> "comedy") applied to both the catalog and the message,
  and a small synonym table ("scary" -> horror, "nineties" -> 90s) used only for phrases the
  catalog does not contain itself.
- **Duplicate names resolve to the most used attribute** (LastFM has "80s" and "80's", MovieLens
  the genre "Comedy" and the tag "comedy"): the labelled utterance sets follow the same rule.
- **Fuzzy matching is a fallback with a bar.** Titles: character-trigram candidates, then
  `difflib` ratio; a match at or above `FUZZY_ACCEPT` is taken, one between `FUZZY_ASK` and that is
  asked back ("Did you mean Toy Story (1995)?") rather than guessed. Attribute names: per-token
  `difflib` against names with the same first two letters. Items are looked for after a cue
  ("like X", "similar to X", quotes) or, without a cue, only as exact titles of two or more
  content words, because LastFM has artists called "Drive", "Japan" and "Lipstick".
- **Negation is scoped to a clause.** A cue ("no", "not", "hate", "anything but", "except", ...)
  makes every later attribute or item of its clause unwanted until a positive cue ("but I love")
  or a clause boundary (punctuation, "but", "though", "instead").
- **The pending question decides what yes/no mean.** With an `Ask` pending, "yeah", "nope",
  "dunno", "whatever" are answers, and naming the asked attribute answers it ("I love comedies"
  -> yes). With a list on screen, ordinals and bare numbers point into it ("#3 looks good").
- **Optional embeddings.** `nearest_attributes(word, k)` (for example from `crs.retrieval`) maps
  content words the catalog does not use ("chill", "spooky") to attributes; only matches at or
  above `embedding_threshold` count. Everything works without it.
- **Robust.** Any string is accepted. Only the first `MAX_CHARS` characters are read (a rambling
  message states its wishes early; reading further costs time and adds noise): the result says
  `truncated=True` then. No input raises.
"""

from __future__ import annotations

import difflib
import html
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crs.language.acts import (
    DialogueAct,
    DontCare,
    Help,
    MentionItem,
    MoreLike,
    RejectItem,
    Restart,
    Understanding,
    Unknown,
)
from crs.types import (
    AcceptReply,
    Answer,
    AnswerReply,
    Ask,
    Catalog,
    GiveUp,
    InformReply,
    QuitReply,
    Recommend,
    RejectReply,
    SystemAction,
)

NearestAttributes = Callable[[str, int], list[tuple[int, float]]]

MAX_CHARS = 2000  # characters of a message that are read; the rest is ignored (see module docstring)
MAX_ATTRIBUTE_WORDS = 4  # longest attribute name, in words, that is looked up
MAX_TITLE_WORDS = 10
FUZZY_ACCEPT = 0.86
FUZZY_ASK = 0.72
FUZZY_TOKEN = 0.84
MAX_FUZZY_TOKENS = 40  # per message: bounds the time a long message of unknown words can take

# --- vocabularies ---------------------------------------------------------------------------------

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "about",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "i",
        "im",
        "me",
        "my",
        "we",
        "you",
        "your",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "why",
        "when",
        "where",
        "so",
        "very",
        "really",
        "just",
        "some",
        "any",
        "anything",
        "something",
        "everything",
        "all",
        "also",
        "too",
        "more",
        "most",
        "much",
        "many",
        "please",
        "pls",
        "plz",
        "thanks",
        "thank",
        "ok",
        "okay",
        "well",
        "um",
        "uh",
        "hmm",
        "oh",
        "hey",
        "hi",
        "hello",
        "would",
        "could",
        "should",
        "can",
        "will",
        "shall",
        "might",
        "may",
        "must",
        "do",
        "does",
        "did",
        "done",
        "have",
        "has",
        "had",
        "get",
        "got",
        "go",
        "going",
        "want",
        "wanna",
        "gonna",
        "need",
        "like",
        "likes",
        "love",
        "loves",
        "good",
        "great",
        "best",
        "nice",
        "cool",
        "awesome",
        "amazing",
        "favorite",
        "favorites",
        "favourite",
        "fun",
        "movie",
        "movies",
        "film",
        "films",
        "flick",
        "flicks",
        "show",
        "shows",
        "song",
        "songs",
        "music",
        "track",
        "tracks",
        "band",
        "bands",
        "artist",
        "artists",
        "album",
        "albums",
        "stuff",
        "thing",
        "things",
        "kind",
        "sort",
        "type",
        "one",
        "ones",
        "lot",
        "lots",
        "bit",
        "little",
        "today",
        "tonight",
        "night",
        "maybe",
        "yes",
        "yeah",
        "no",
        "not",
        "none",
        "more",
        "less",
        "other",
        "else",
        "again",
        "still",
        "then",
        "than",
        "only",
        "even",
        "mood",
        "feel",
        "feeling",
        "watch",
        "watching",
        "listen",
        "listening",
        "hear",
        "see",
        "seen",
        "saw",
        "make",
        "made",
        "know",
        "think",
        "say",
        "said",
        "tell",
        "give",
        "show",
        "find",
        "look",
        "looks",
        "looking",
        "something",
        "recommend",
        "recommendation",
        "suggestions",
        "him",
        "her",
        "his",
        "hers",
        "they",
        "them",
        "their",
        "he",
        "she",
        "us",
        "our",
        "ours",
        "myself",
        "yourself",
        "new",
        "old",
        "time",
        "times",
        "play",
        "playing",
        "put",
        "let",
        "lets",
        "day",
        "week",
        "year",
        "years",
        "ago",
        "now",
        "up",
        "down",
        "out",
        "over",
        "under",
        "off",
        "into",
        "onto",
        "into",
        "too",
        "enjoy",
        "enjoyed",
        "prefer",
        "rather",
        "guess",
        "sure",
        "right",
        "left",
        "first",
        "second",
        "third",
        "last",
        "next",
    ]
)

# Message phrases rewritten before anything else: multi-word idioms become one token, emoji words.
_PHRASES: tuple[tuple[str, str], ...] = (
    ("r&b", " rnb "),
    ("r & b", " rnb "),
    ("rock n roll", " rock and roll "),
    ("rock'n'roll", " rock and roll "),
    ("👍", " yes "),
    ("👌", " yes "),
    ("✅", " yes "),
    ("👎", " no "),
    ("❌", " no "),
    ("🙅", " no "),
    ("🤷", " dunno "),
    ("❤", " love "),
    ("😍", " love "),
    ("🥰", " love "),
    ("💕", " love "),
    ("🤮", " hate "),
    ("😱", " scary "),
    ("👻", " scary "),
    ("😂", " funny "),
    ("🤣", " funny "),
    ("🙏", " please "),
)

# Query key -> catalog key(s), used only when the query key is not a catalog key itself.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "scifi": ("sci fi",),
    "science fiction": ("sci fi",),
    "sf": ("sci fi",),
    "romcom": ("romance", "comedy"),
    "rom com": ("romance", "comedy"),
    "romantic comedy": ("romance", "comedy"),
    "romantic": ("romance",),
    "animated": ("animation",),
    "cartoon": ("animation",),
    "kid": ("children",),
    "child": ("children",),
    "family": ("children",),
    "scary": ("horror",),
    "spooky": ("horror",),
    "creepy": ("horror",),
    "frightening": ("horror",),
    "horrer": ("horror",),
    "comedic": ("comedy",),
    "funny": ("comedy",),
    "hilarious": ("comedy",),
    "noir": ("film noir",),
    "doc": ("documentary",),
    "docu": ("documentary",),
    "documentarie": ("documentary",),
    "thrilling": ("thriller",),
    "suspense": ("thriller",),
    "detective": ("crime",),
    "gangster": ("crime",),
    "mafia": ("crime",),
    "mobster": ("crime",),
    "cowboy": ("western",),
    "space": ("sci fi",),
    "alien": ("sci fi",),
    "magic": ("fantasy",),
    "wizard": ("fantasy",),
    "mystery": ("mystery",),
    "whodunit": ("mystery",),
    "musical theatre": ("musical",),
    "war movie": ("war",),
    "wwii": ("war",),
    "superheroe": ("superhero",),
    "hiphop": ("hip hop",),
    "hip hop": ("hip hop",),
    "rap music": ("rap",),
    "edm": ("electronic",),
    "electro music": ("electronic",),
    "techno": ("techno",),
    "relaxing": ("chillout",),
    "chilled": ("chillout",),
    "chill out": ("chillout",),
    "metalhead": ("metal",),
    "heavy": ("heavy metal",),
    "girl singer": ("female vocalists",),
    "female singer": ("female vocalists",),
    "female vocal": ("female vocalists",),
    "male singer": ("male vocalists",),
    "singer songwriter": ("singer songwriter",),
    "oldie": ("oldies",),
    "classic": ("classic rock",),
    "nineties": ("90s",),
    "eighties": ("80s",),
    "seventies": ("70s",),
    "sixties": ("60s",),
    "fifties": ("50s",),
    "forties": ("40s",),
    "thirties": ("30s",),
    "twenties": ("20s",),
    "noughties": ("00s",),
    "aughts": ("00s",),
    "2000": ("00s",),
    "2010": ("10s",),
}

_YES = frozenset(
    [
        "yes",
        "yeah",
        "yea",
        "yep",
        "yup",
        "ya",
        "yah",
        "y",
        "sure",
        "absolutely",
        "definitely",
        "certainly",
        "totally",
        "ok",
        "okay",
        "aye",
        "affirmative",
        "indeed",
        "correct",
        "right",
        "exactly",
    ]
)
_YES_PHRASES = (
    ("of", "course"),
    ("sounds", "good"),
    ("sounds", "great"),
    ("why", "not"),
    ("for", "sure"),
    ("i", "do"),
    ("i", "am"),
    ("yes", "please"),
    ("that", "would", "be", "nice"),
    ("go", "for", "it"),
    ("love", "it"),
    ("love", "that"),
    ("hell", "yes"),
    ("very", "much"),
)
_NO = frozenset(["no", "nope", "nah", "nay", "n", "negative", "never", "nooo", "noo"])
_NO_PHRASES = (
    ("not", "really"),
    ("not", "at", "all"),
    ("i", "dont"),
    ("dont", "think", "so"),
    ("no", "thanks"),
    ("not", "today"),
    ("not", "now"),
    ("not", "so", "much"),
    ("not", "for", "me"),
    ("not", "a", "fan"),
    ("definitely", "not"),
    ("absolutely", "not"),
    ("hell", "no"),
    ("please", "no"),
    ("not", "in", "the", "mood"),
    ("rather", "not"),
    ("id", "rather", "not"),
)
_DONT_KNOW_PHRASES = (
    ("dont", "know"),
    ("do", "not", "know"),
    ("dunno",),
    ("idk",),
    ("not", "sure"),
    ("no", "idea"),
    ("maybe",),
    ("perhaps",),
    ("no", "clue"),
    ("cant", "say"),
    ("hard", "to", "say"),
    ("who", "knows"),
    ("unsure",),
    ("possibly",),
    ("kinda",),
    ("sort", "of"),
    ("not", "certain"),
    ("hmm",),
    ("havent", "decided"),
)
_DONT_CARE_PHRASES = (
    ("dont", "care"),
    ("do", "not", "care"),
    ("whatever",),
    ("doesnt", "matter"),
    ("does", "not", "matter"),
    ("either", "way"),
    ("no", "preference"),
    ("any", "is", "fine"),
    ("anything", "is", "fine"),
    ("i", "dont", "mind"),
    ("dont", "mind"),
    ("indifferent",),
    ("irrelevant",),
    ("all", "the", "same"),
    ("up", "to", "you"),
    ("either", "is", "fine"),
    ("could", "go", "either"),
    ("both", "fine"),
    ("i", "dont", "have", "a", "preference"),
    ("makes", "no", "difference"),
    ("dc",),
    ("idc",),
    ("whatevs",),
    ("meh",),
)
_NEGATION_WORDS = frozenset(
    [
        "no",
        "not",
        "dont",
        "doesnt",
        "didnt",
        "never",
        "hate",
        "hates",
        "hated",
        "dislike",
        "dislikes",
        "without",
        "except",
        "avoid",
        "nothing",
        "none",
        "nor",
        "neither",
        "isnt",
        "arent",
        "wont",
        "cant",
        "skip",
        "loathe",
        "detest",
        "nix",
        "exclude",
        "excluding",
        "minus",
        "stop",
        "zero",
        "against",
        "ugh",
    ]
)
_NEGATION_PHRASES = (
    ("anything", "but"),
    ("everything", "but"),
    ("all", "but"),
    ("other", "than"),
    ("sick", "of"),
    ("tired", "of"),
    ("fed", "up"),
    ("rather", "not"),
    ("stay", "away"),
    ("keep", "away"),
    ("spare", "me"),
    ("cant", "stand"),
    ("not", "into"),
    ("not", "a", "fan"),
    ("no", "more"),
    ("enough", "of"),
    ("pass", "on"),
    ("allergic", "to"),
)
_POSITIVE_WORDS = frozenset(
    [
        "love",
        "loves",
        "like",
        "likes",
        "want",
        "wanna",
        "prefer",
        "enjoy",
        "adore",
        "into",
        "fan",
        "craving",
        "crave",
        "dig",
        "yes",
        "yeah",
        "instead",
        "rather",
        "fancy",
        "looking",
        "need",
    ]
)
_NEUTRALISERS = (("dont", "mind"), ("wouldnt", "mind"), ("not", "bad"), ("dont", "hate"))
_BOUNDARY_WORDS = frozenset(["but", "though", "although", "however", "instead", "whereas", "while", "yet"])
_BOUNDARY_PUNCT = frozenset(",.;!?:")
_ITEM_CUES = (
    ("similar", "to"),
    ("such", "as"),
    ("something", "like"),
    ("stuff", "like"),
    ("things", "like"),
    ("movies", "like"),
    ("films", "like"),
    ("bands", "like"),
    ("artists", "like"),
    ("music", "like"),
    ("more", "like"),
    ("kind", "of", "like"),
    ("along", "the", "lines", "of"),
    ("in", "the", "style", "of"),
    ("reminds", "me", "of"),
    ("fan", "of"),
    ("as", "good", "as"),
    ("like",),
    ("loved",),
    ("love",),
    ("liked",),
    ("enjoyed",),
    ("adore",),
    ("hated",),
    ("hate",),
    ("seen",),
    ("watched",),
    ("heard",),
    ("than",),
    ("except",),
    ("by",),
    ("was",),
    ("is",),
)
_ORDINALS = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
    "fifth": 5,
    "5th": 5,
    "sixth": 6,
    "6th": 6,
    "seventh": 7,
    "7th": 7,
    "eighth": 8,
    "8th": 8,
    "ninth": 9,
    "9th": 9,
    "tenth": 10,
    "10th": 10,
}
_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_NONE_PHRASES = (
    ("none",),
    ("neither",),
    ("nothing", "here"),
    ("not", "these"),
    ("not", "those"),
    ("none", "of", "these"),
    ("none", "of", "them"),
    ("something", "else"),
    ("show", "me", "more"),
    ("show", "more"),
    ("other", "options"),
    ("others",),
    ("different", "ones"),
    ("dont", "like", "any"),
    ("no", "good"),
    ("not", "interested"),
    ("nothing", "appeals"),
    ("seen", "them", "all"),
    ("seen", "all"),
    ("heard", "them", "all"),
    ("all", "of", "them"),
    ("nah",),
    ("nope",),
    ("no",),
    ("pass",),
)
_SEEN_WORDS = frozenset(["seen", "watched", "heard", "saw", "know", "knew"])
_RESTART_PHRASES = (
    ("start", "over"),
    ("start", "again"),
    ("restart",),
    ("reset",),
    ("begin", "again"),
    ("from", "scratch"),
    ("new", "search"),
    ("start", "from", "the", "beginning"),
    ("lets", "start", "fresh"),
    ("clear", "everything"),
    ("forget", "everything"),
    ("start", "fresh"),
    ("try", "again", "from"),
)
_HELP_PHRASES = (
    ("help",),
    ("what", "can", "i", "say"),
    ("what", "can", "you", "do"),
    ("how", "does", "this", "work"),
    ("how", "do", "i"),
    ("what", "do", "i", "do"),
    ("what", "should", "i", "say"),
    ("instructions",),
    ("how", "does", "it", "work"),
    ("what", "is", "this"),
    ("options",),
    ("confused",),
)
_QUIT_PHRASES = (
    ("bye",),
    ("goodbye",),
    ("quit",),
    ("exit",),
    ("im", "done"),
    ("i", "am", "done"),
    ("thats", "all"),
    ("stop",),
    ("leave",),
    ("see", "you"),
    ("cya",),
    ("gotta", "go"),
    ("end", "chat"),
    ("end", "this"),
    ("good", "night"),
    ("bye", "bye"),
    ("forget", "it"),
    ("never", "mind"),
    ("nevermind",),
)
_MORE_LIKE_PHRASES = (
    ("more", "like"),
    ("similar", "to"),
    ("something", "like"),
    ("others", "like"),
    ("more", "of"),
    ("like", "the"),
    ("ones", "like"),
    ("along", "the", "lines", "of"),
)

_HTML_TAG = re.compile(r"<[^>]{0,200}>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
_TOKEN = re.compile(r"#?[a-z0-9]+|[,.;!?:]")
_TITLE_YEAR = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_PARENS = re.compile(r"\(([^)]*)\)")
_ROMAN = {"ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8", "ix": "9"}
_DECADE_LONG = re.compile(r"^(19|20)(\d)0s$")
_DECADE_SHORT = re.compile(r"^(\d)0s$")


def _fold(text: str) -> str:
    """Lower case, accents folded to ASCII, apostrophes removed, other punctuation to spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = text.encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"['`´’]", "", text)
    text = text.replace("&", " and ")
    return text


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
    return " ".join(_DECADE_LONG.sub(r"\g<2>0s", singular(t)) for t in re.findall(r"[a-z0-9]+", _fold(text)))


def _title_keys(title: str) -> list[str]:
    """Lookup keys of a catalog title: main title without year or article, plus any a.k.a. form."""
    title = _TITLE_YEAR.sub("", title)
    variants = [_PARENS.sub(" ", title)]
    variants += [re.sub(r"^(a\.?k\.?a\.?)\s*", "", m, flags=re.I) for m in _PARENS.findall(title)]
    keys: list[str] = []
    for variant in variants:
        # "Godfather: Part II, The" -> "The Godfather: Part II"
        match = re.match(r"^(.*), (the|a|an|les|la|le|il|el|das|der|die)$", variant.strip(), flags=re.I)
        if match:
            variant = f"{match.group(2)} {match.group(1)}"
        words = re.findall(r"[a-z0-9]+", _fold(variant))
        words = [_ROMAN.get(w, w) for w in words]
        while words and words[0] in ("the", "a", "an"):
            words = words[1:]
        if "part" in words:
            # "godfather part 2" -> also "godfather 2"
            short = [w for i, w in enumerate(words) if not (w == "part" and i + 1 < len(words))]
            if short and short != words:
                keys.append(" ".join(short))
        if words:
            keys.append(" ".join(words))
    return keys


def _trigrams(text: str) -> set[str]:
    padded = f"  {text} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int  # exclusive, in token positions
    kind: str  # "attribute" | "item"
    value: int
    confidence: float


def _find_phrase(tokens: Sequence[str], phrase: Sequence[str], start: int = 0) -> int:
    n = len(phrase)
    for i in range(start, len(tokens) - n + 1):
        if tuple(tokens[i : i + n]) == tuple(phrase):
            return i
    return -1


def _has_phrase(tokens: Sequence[str], phrases: Sequence[Sequence[str]]) -> bool:
    return any(_find_phrase(tokens, p) >= 0 for p in phrases)


class Understander:
    """Reads user messages against one catalog. Build once per catalog (about a second on LastFM)."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        nearest_attributes: NearestAttributes | None = None,
        embedding_threshold: float = 0.6,
        min_support: int = 5,
    ) -> None:
        self.catalog = catalog
        self.nearest_attributes = nearest_attributes
        self.embedding_threshold = embedding_threshold
        support = Counter(a for item in catalog.items for a in item.attributes)
        self.support = support

        # Attribute names -> index; the most used attribute wins a shared key.
        keys: dict[str, int] = {}
        for attribute in catalog.attributes:
            if support[attribute.index] < min(min_support, max(support.values(), default=0)):
                continue
            key = normalize_key(attribute.name)
            if not key or key in STOPWORDS or key in _YES or key in _NO or key.isdigit():
                continue
            # Folksonomy tags such as "i love" or "80s stuff" swallow ordinary phrases: a name with a
            # filler word in it must be widely used to count.
            if " " in key and support[attribute.index] < 100 and any(w in STOPWORDS for w in key.split()):
                continue
            best = keys.get(key)
            if best is None or support[attribute.index] > support[best]:
                keys[key] = attribute.index
        aliases: dict[str, int] = {}
        for key, index in keys.items():
            long = _DECADE_LONG.match(key)
            if long:
                aliases.setdefault(f"{long.group(2)}0s", index)
            short = _DECADE_SHORT.match(key)
            if short:
                century = "20" if short.group(1) in "01" else "19"
                aliases.setdefault(f"{century}{short.group(1)}0s", index)
        for alias, index in aliases.items():
            keys.setdefault(alias, index)
        # A rare compound tag ("70s rock") loses to its widely used parts ("70s", "rock").
        for key in [k for k in keys if " " in k]:
            parts = key.split()
            if all(p in keys for p in parts) and support[keys[key]] * 5 < min(
                support[keys[p]] for p in parts
            ):
                del keys[key]
        self._attribute_keys = keys
        self._synonyms = {
            normalize_key(source): tuple(keys[normalize_key(t)] for t in targets if normalize_key(t) in keys)
            for source, targets in SYNONYMS.items()
        }
        self._synonyms = {k: v for k, v in self._synonyms.items() if v and k not in keys}
        # Decade words always mean the decade, even where a folksonomy has a tag "nineties".
        for source, targets in SYNONYMS.items():
            target = normalize_key(targets[0])
            if _DECADE_SHORT.match(target) and target in keys:
                keys[normalize_key(source)] = keys[target]
        # Fuzzy candidates: single-word names of attributes in real use, bucketed by first two letters.
        self._fuzzy_attributes: dict[str, list[str]] = {}
        for key, index in keys.items():
            if " " not in key and len(key) >= 4 and key.isalpha() and support[index] >= 5:
                self._fuzzy_attributes.setdefault(key[:2], []).append(key)

        # Titles -> items; the item with the most attributes (a proxy for how known it is) wins.
        titles: dict[str, int] = {}
        for item in catalog.items:
            for key in _title_keys(item.title):
                best = titles.get(key)
                if best is None or len(item.attributes) > len(catalog.items[best].attributes):
                    titles[key] = item.index
        self._titles = titles
        self._title_list = list(titles)
        postings: dict[str, list[int]] = {}
        for position, key in enumerate(self._title_list):
            for gram in _trigrams(key):
                postings.setdefault(gram, []).append(position)
        self._title_postings = postings
        self._max_title_words = min(MAX_TITLE_WORDS, max((k.count(" ") + 1 for k in titles), default=1))

    # --- public ---------------------------------------------------------------------------------

    def understand(self, text: object, context: SystemAction | None = None) -> Understanding:
        """The acts of `text` given the system's last action. Never raises on any input."""
        try:
            return self._understand(text, context)
        except Exception:  # pragma: no cover - a last line of defence for the chat, never expected
            return Understanding(acts=(Unknown(),), confidence=0.0, clarify=_SORRY)

    # --- steps ----------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        text = _CONTROL.sub(" ", text)
        text = html.unescape(_HTML_TAG.sub(" ", text))
        for phrase, replacement in _PHRASES:
            if phrase in text:
                text = text.replace(phrase, replacement)
        text = _fold(text)
        text = text.replace("-", " ").replace("/", " ")
        return _TOKEN.findall(text)

    def _understand(self, text: object, context: SystemAction | None) -> Understanding:
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        truncated = len(text) > MAX_CHARS
        tokens = self.tokenize(text[:MAX_CHARS])
        words = [t for t in tokens if t not in _BOUNDARY_PUNCT]
        if not words:
            return Understanding(acts=(Unknown(),), confidence=0.0, clarify=_SORRY, truncated=truncated)
        pending = context.attribute if isinstance(context, Ask) else None
        shown = context.items if isinstance(context, Recommend) else ()
        if isinstance(context, GiveUp):
            pending, shown = None, ()

        acts: list[DialogueAct] = []
        confidence = 1.0
        clarify: str | None = None

        # Commands first: they override everything else in a short message.
        short = len(words) <= 8
        if short and _has_phrase(words, _RESTART_PHRASES):
            return Understanding(acts=(Restart(),), confidence=0.95, truncated=truncated)
        if short and _has_phrase(words, _QUIT_PHRASES) and not _has_phrase(words, (("dont", "stop"),)):
            return Understanding(acts=(QuitReply(),), confidence=0.9, truncated=truncated)
        if short and _has_phrase(words, _HELP_PHRASES) or words in (["h"], ["menu"]):
            return Understanding(acts=(Help(),), confidence=0.9, truncated=truncated)

        # Answers to the pending question read the first clause.
        first_clause = _first_clause(tokens)
        answer = self._answer(first_clause) if pending is not None else None

        spans, span_clarify = self._spans(tokens, shown)
        clarify = clarify or span_clarify
        polarity = _polarities(tokens, spans)

        wanted: list[int] = []
        unwanted: list[int] = []
        for span, positive in zip(spans, polarity, strict=True):
            confidence = min(confidence, span.confidence)
            if span.kind == "attribute":
                (wanted if positive else unwanted).append(span.value)
        # Naming the asked attribute answers the question.
        if pending is not None and answer is None:
            if pending in wanted:
                answer = Answer.YES
            elif pending in unwanted:
                answer = Answer.NO
        if pending is not None:
            wanted = [a for a in wanted if a != pending]
            unwanted = [a for a in unwanted if a != pending]

        # Reactions to a list on screen.
        if shown:
            reaction, reaction_clarify = self._reaction(words, tokens, spans, polarity, shown)
            acts.extend(reaction)
            clarify = clarify or reaction_clarify

        if answer == "dont_care":
            acts.insert(0, DontCare())
        elif answer is not None:
            acts.insert(0, AnswerReply(Answer(answer)))

        reacted_items = {getattr(a, "item", None) for a in acts}
        for span, positive in zip(spans, polarity, strict=True):
            if span.kind == "item" and span.value not in reacted_items:
                acts.append(MentionItem(item=span.value, liked=positive))
                reacted_items.add(span.value)

        # Leftover content words -> embeddings, when available.
        if self.nearest_attributes is not None:
            extra = self._embedded(
                tokens, spans, {*wanted, *unwanted, *([] if pending is None else [pending])}
            )
            for index, similarity, positive in extra:
                (wanted if positive else unwanted).append(index)
                confidence = min(confidence, similarity)

        wanted = list(dict.fromkeys(wanted))
        unwanted = [a for a in dict.fromkeys(unwanted) if a not in wanted]
        if wanted or unwanted:
            acts.append(InformReply(attributes=tuple(wanted), unwanted=tuple(unwanted)))

        if not acts:
            return Understanding(
                acts=(Unknown(),), confidence=0.0, clarify=clarify or _SORRY, truncated=truncated
            )
        return Understanding(acts=tuple(acts), confidence=confidence, clarify=clarify, truncated=truncated)

    def _answer(self, clause: list[str]) -> str | None:
        if not clause:
            return None
        head = clause[:6]
        if _has_phrase(head, _DONT_CARE_PHRASES):
            return "dont_care"
        if _has_phrase(head, _DONT_KNOW_PHRASES):
            return "dont_know"
        if _has_phrase(head, _NO_PHRASES):
            return "no"
        first = clause[0]
        if first in _NO and (len(clause) == 1 or clause[1] in _NO or clause[1] in _AFTER_ANSWER):
            return "no"
        if first in _YES or _has_phrase(head[:4], _YES_PHRASES):
            return "yes"
        if len(clause) >= 2 and clause[0] in ("um", "uh", "hmm", "well", "oh", "ah", "haha", "lol"):
            return self._answer(clause[1:])
        return None

    def _spans(self, tokens: list[str], shown: tuple[int, ...]) -> tuple[list[_Span], str | None]:
        """Items and attributes mentioned, left to right, without overlaps."""
        spans: list[_Span] = []
        clarify: str | None = None
        taken = [t in _BOUNDARY_PUNCT for t in tokens]
        stems = [singular(t) for t in tokens]
        n = len(tokens)

        # Titles of the items on screen, even one-word ones: the user is looking at them.
        if shown:
            on_screen = {key: item for item in shown for key in _title_keys(self.catalog.items[item].title)}
            for length in range(MAX_TITLE_WORDS, 0, -1):
                for i in range(0, n - length + 1):
                    key = " ".join(_ROMAN.get(w, w) for w in tokens[i : i + length])
                    if key in on_screen and not any(taken[i : i + length]):
                        spans.append(_Span(i, i + length, "item", on_screen[key], 1.0))
                        for k in range(i, i + length):
                            taken[k] = True
        # Cued titles (exact, then fuzzy), before attributes.
        if True:
            for start in self._cue_positions(tokens):
                if taken[start]:
                    continue
                found, ask = self._title_at(tokens, taken, start)
                if found is not None:
                    spans.append(found)
                    for k in range(found.start, found.end):
                        taken[k] = True
                elif ask is not None and clarify is None:
                    clarify = ask
        # Uncued exact titles of two or more content words.
        for length in range(self._max_title_words, 1, -1):
            for i in range(0, n - length + 1):
                if any(taken[i : i + length]):
                    continue
                window = tokens[i : i + length]
                key = " ".join(_ROMAN.get(w, w) for w in window)
                if key in self._titles and sum(w not in STOPWORDS for w in window) >= 2:
                    if self._attribute_reading_wins(normalize_key(key)):
                        continue
                    spans.append(_Span(i, i + length, "item", self._titles[key], 1.0))
                    for k in range(i, i + length):
                        taken[k] = True
        # Attributes: longest exact key first, then synonyms, then fuzzy single words.
        for length in range(MAX_ATTRIBUTE_WORDS, 0, -1):
            for i in range(0, n - length + 1):
                if any(taken[i : i + length]):
                    continue
                key = " ".join(stems[i : i + length])
                values: tuple[int, ...] = ()
                if key in self._attribute_keys and not (length == 1 and key in STOPWORDS):
                    values = (self._attribute_keys[key],)
                elif key in self._synonyms:
                    values = self._synonyms[key]
                for value in values:
                    spans.append(_Span(i, i + length, "attribute", value, 1.0))
                if values:
                    for k in range(i, i + length):
                        taken[k] = True
        budget = MAX_FUZZY_TOKENS
        for i, token in enumerate(tokens):
            if budget <= 0:
                break
            if taken[i] or len(token) < 5 or not token.isalpha() or token in STOPWORDS or token in _FUNCTION:
                continue
            budget -= 1
            stem = stems[i]
            match = difflib.get_close_matches(stem, self._fuzzy_attributes.get(stem[:2], ()), 1, FUZZY_TOKEN)
            if match:
                ratio = difflib.SequenceMatcher(None, stem, match[0]).ratio()
                spans.append(_Span(i, i + 1, "attribute", self._attribute_keys[match[0]], ratio))
                taken[i] = True
        spans.sort(key=lambda s: (s.start, s.kind))
        return spans, clarify

    def _attribute_reading_wins(self, key: str) -> bool:
        """For a phrase that is both a title and an attribute: the attribute, unless it is a rare tag
        (LastFM users tag artists with their own names: "radiohead" is a tag of 20 artists)."""
        if key in self._synonyms:
            return True
        index = self._attribute_keys.get(key)
        return index is not None and self.support[index] >= 50

    def _cue_positions(self, tokens: list[str]) -> list[int]:
        """Token positions where an item title may start: after a cue phrase."""
        positions: list[int] = []
        for i in range(len(tokens)):
            for cue in _ITEM_CUES:
                if tuple(tokens[i : i + len(cue)]) == cue:
                    start = i + len(cue)
                    if start < len(tokens) and tokens[start] not in _BOUNDARY_PUNCT:
                        positions.append(start)
                    break
        return positions

    def _title_at(self, tokens: list[str], taken: list[bool], start: int) -> tuple[_Span | None, str | None]:
        """An item whose title starts at `start`: exact (longest) or fuzzy, or a question to ask."""
        end = start
        while end < len(tokens) and end - start < MAX_TITLE_WORDS and tokens[end] not in _BOUNDARY_PUNCT:
            if end > start and (tokens[end] in _BOUNDARY_WORDS or tokens[end] in ("and", "or", "please")):
                break
            end += 1
        words = [_ROMAN.get(w, w) for w in tokens[start:end]]
        lead = 0
        while lead < len(words) and words[lead] in ("the", "a", "an"):
            lead += 1
        exact: _Span | None = None
        for stop in range(len(words), lead, -1):
            key = " ".join(words[lead:stop])
            if key in self._titles:
                content = [w for w in words[lead:stop] if w not in STOPWORDS]
                if not content:
                    continue
                stem_key = " ".join(singular(w) for w in words[lead:stop])
                if self._attribute_reading_wins(stem_key):
                    return None, None  # "like jazz": the attribute reading wins
                exact = _Span(start, start + stop, "item", self._titles[key], 1.0)
                rest = [w for w in words[stop:] if w not in STOPWORDS]
                # A one-word title followed by more words ("toy stroy") may be a typo of a longer one.
                if stop - lead >= 2 or not rest:
                    return exact, None
                break
        # Fuzzy: try the phrase and its prefixes, minus trailing filler words.
        content_words = [w for w in words[lead:] if w]
        while content_words and content_words[-1] in STOPWORDS:
            content_words.pop()
        if not content_words or sum(len(w) for w in content_words) < 5:
            return None, None
        first_key = singular(content_words[0])
        if len(content_words) == 1 and (first_key in self._attribute_keys or first_key in self._synonyms):
            return None, None
        best: tuple[float, int, int] | None = None  # (ratio, item, words used)
        for stop in range(len(content_words), 0, -1):
            phrase = " ".join(content_words[:stop])
            if len(phrase) < 5:
                break
            for key in self._title_candidates(phrase):
                ratio = difflib.SequenceMatcher(None, phrase, key).ratio()
                if best is None or ratio > best[0]:
                    best = (ratio, self._titles[key], stop)
            if best is not None and best[0] >= FUZZY_ACCEPT:
                break
        if exact is not None and (best is None or best[0] < FUZZY_ACCEPT or best[2] <= 1):
            return exact, None
        if best is None or best[0] < FUZZY_ASK:
            return None, None
        ratio, item, used = best
        if ratio >= FUZZY_ACCEPT:
            return _Span(start, start + lead + used, "item", item, ratio), None
        return None, f"Did you mean {self.catalog.items[item].title}?"

    def _title_candidates(self, phrase: str, limit: int = 12) -> list[str]:
        grams = _trigrams(phrase)
        counts: Counter[int] = Counter()
        for gram in grams:
            postings = self._title_postings.get(gram)
            if postings is not None and len(postings) < 3000:  # very common trigrams do not discriminate
                counts.update(postings)
        scored = []
        for position, shared in counts.most_common(limit * 4):
            key = self._title_list[position]
            dice = 2 * shared / (len(grams) + len(key) + 2)
            scored.append((dice, key))
        scored.sort(reverse=True)
        return [key for _, key in scored[:limit]]

    def _reaction(
        self,
        words: list[str],
        tokens: list[str],
        spans: list[_Span],
        polarity: list[bool],
        shown: tuple[int, ...],
    ) -> tuple[list[DialogueAct], str | None]:
        """Acts about the items on screen: pick, reject one, more like one, none of them."""
        positions = self._pointed(words, len(shown))
        for span, positive in zip(spans, polarity, strict=True):
            if span.kind == "item" and span.value in shown:
                positions.append((shown.index(span.value) + 1, positive))
        seen = any(w in _SEEN_WORDS for w in words) or _has_phrase(words, (("already", "have"),))
        negative = any(w in _NEGATION_WORDS for w in words) or _has_phrase(words, _NO_PHRASES)
        more_like = _has_phrase(words, _MORE_LIKE_PHRASES)
        acts: list[DialogueAct] = []
        if positions:
            for position, positive in dict.fromkeys(positions):
                item = shown[position - 1]
                if more_like and positive:
                    acts.append(MoreLike(item))
                elif seen:
                    acts.append(RejectItem(item, seen=True))
                elif not positive:
                    acts.append(RejectItem(item))
                else:
                    acts.append(AcceptReply(item))
            return acts, None
        if _has_phrase(words, (("seen", "them", "all"), ("seen", "all"), ("heard", "them", "all"))):
            return [RejectReply()], None
        if seen and len(shown) == 1:
            return [RejectItem(shown[0], seen=True)], None
        if seen and len(words) <= 5:
            return [RejectReply()], None
        if len(words) <= 6 and _has_phrase(words, _NONE_PHRASES):
            return [RejectReply()], None
        if len(words) <= 4 and negative:
            return [RejectReply()], None
        if len(shown) == 1 and len(words) <= 4 and (words[0] in _YES or _has_phrase(words, _YES_PHRASES)):
            return [AcceptReply(shown[0])], None
        if len(words) <= 4 and (words[0] in _YES or _has_phrase(words, _YES_PHRASES)):
            return [], "Great! Which one: say its number."
        return [], None

    def _pointed(self, words: list[str], n_shown: int) -> list[tuple[int, bool]]:
        """(1-based position, positive) for every list position the message points at."""
        found: list[tuple[int, bool]] = []
        for i, word in enumerate(words):
            position: int | None = None
            if word in _ORDINALS:
                position = _ORDINALS[word]
                if word in ("second",) and i + 1 < len(words) and words[i + 1] in ("thought",):
                    position = None
            elif word.startswith("#") and word[1:].isdigit():
                position = int(word[1:])
            elif word.isdigit() and len(word) <= 2:
                before = words[i - 1] if i else ""
                after = words[i + 1] if i + 1 < len(words) else ""
                if (
                    len(words) <= 2
                    or before in ("number", "no", "option", "pick", "take", "the", "choose", "num", "nr")
                    or after in ("one", "please", "looks", "is", "sounds", "seems")
                ):
                    position = int(word)
            elif word in _NUMBER_WORDS:
                before = words[i - 1] if i else ""
                if before in ("number", "option", "no", "num", "nr") or len(words) == 1:
                    position = _NUMBER_WORDS[word]
            elif word == "last":
                after = words[i + 1] if i + 1 < len(words) else ""
                if after in ("one", "option", "film", "movie", "artist", "band", "") or len(words) <= 3:
                    position = n_shown
            elif word in ("top", "latter") and i + 1 < len(words) and words[i + 1] in ("one", "pick"):
                position = 1 if word == "top" else n_shown
            if position is None or not 1 <= position <= n_shown:
                continue
            found.append((position, not _negated_at(words, i)))
        return found

    def _embedded(
        self, tokens: list[str], spans: list[_Span], known: set[int]
    ) -> list[tuple[int, float, bool]]:
        assert self.nearest_attributes is not None
        covered: set[int] = set()
        for span in spans:
            covered.update(range(span.start, span.end))
        found: list[tuple[int, float, bool]] = []
        asked = 0
        for i, token in enumerate(tokens):
            if (
                i in covered
                or len(token) < 3
                or not token.isalpha()
                or token in STOPWORDS
                or token in _FUNCTION
            ):
                continue
            asked += 1
            if asked > 20:
                break
            try:
                nearest = self.nearest_attributes(token, 1)
            except Exception:  # an optional helper must never break understanding
                return found
            for index, similarity in nearest[:1]:
                if (
                    similarity >= self.embedding_threshold
                    and index not in known
                    and 0 <= index < self.catalog.n_attributes
                ):
                    found.append((int(index), float(similarity), not _negated_at(tokens, i)))
                    known.add(index)
        return found


_SORRY = "Sorry, I didn't quite get that. Tell me a genre, a decade or a title you like, or type 'help'."
_AFTER_ANSWER = frozenset(
    [
        "thanks",
        "thank",
        "but",
        "i",
        "im",
        "not",
        "way",
        "sorry",
        "really",
        "way",
        "thx",
        "please",
        "its",
        "it",
        "that",
    ]
)
# Words never worth a fuzzy or embedding lookup: grammar and dialogue words outside STOPWORDS.
_FUNCTION = frozenset(
    [
        "dont",
        "doesnt",
        "didnt",
        "isnt",
        "arent",
        "wasnt",
        "werent",
        "wont",
        "cant",
        "couldnt",
        "wouldnt",
        "shouldnt",
        "hate",
        "hated",
        "dislike",
        "loved",
        "liked",
        "lovely",
        "anyway",
        "whatever",
        "though",
        "although",
        "however",
        "because",
        "since",
        "unless",
        "until",
        "while",
        "without",
        "except",
        "instead",
        "probably",
        "actually",
        "basically",
        "honestly",
        "literally",
        "seriously",
        "something",
        "someone",
        "somewhere",
        "somehow",
        "nothing",
        "either",
        "neither",
        "another",
        "other",
        "others",
        "every",
        "really",
        "pretty",
        "quite",
        "rather",
        "enough",
        "totally",
        "absolutely",
        "definitely",
        "maybe",
        "perhaps",
        "please",
        "thanks",
        "thank",
        "sorry",
        "hello",
        "number",
        "option",
        "options",
        "there",
        "their",
        "theyre",
        "youre",
        "thats",
        "whats",
        "where",
        "which",
        "while",
        "whole",
        "would",
        "could",
        "should",
        "might",
        "lately",
        "recently",
        "usually",
        "always",
        "never",
        "tonight",
        "weekend",
        "friend",
        "friends",
        "girlfriend",
        "boyfriend",
        "family",
        "wife",
        "husband",
        "kids",
        "evening",
        "watched",
        "watch",
        "listen",
        "heard",
        "hearing",
        "looking",
        "things",
        "think",
        "thought",
        "feels",
        "feeling",
        "mood",
    ]
)


def _first_clause(tokens: list[str]) -> list[str]:
    clause: list[str] = []
    for token in tokens:
        if token in _BOUNDARY_PUNCT or token in _BOUNDARY_WORDS:
            if clause:
                break
            continue
        clause.append(token)
    return clause


def _negated_at(tokens: Sequence[str], position: int) -> bool:
    """Whether the word at `position` lies in the scope of a negation of its clause."""
    negated = False
    i = position - 1
    start = 0
    while i >= 0:
        if tokens[i] in _BOUNDARY_PUNCT or (
            tokens[i] in _BOUNDARY_WORDS
            and not (i > 0 and tokens[i - 1] in ("anything", "everything", "all"))
        ):
            start = i + 1
            break
        i -= 1
    k = start
    while k < position:
        word = tokens[k]
        pair = tuple(tokens[k : k + 2])
        if pair in _NEUTRALISERS:
            negated = False
            k += 2
            continue
        if pair in _NEGATION_PHRASES or tuple(tokens[k : k + 3]) in _NEGATION_PHRASES:
            negated = True
        elif word in _NEGATION_WORDS:
            # "not only", "no doubt" and a leading answer "no" do not negate what follows.
            nxt = tokens[k + 1] if k + 1 < len(tokens) else ""
            if not (
                word == "no" and (nxt in _BOUNDARY_PUNCT or nxt in ("doubt", "i", "but")) or nxt == "only"
            ):
                negated = True
        elif (
            word in _POSITIVE_WORDS
            and negated
            and k > start
            and tokens[k - 1] not in _NEGATION_WORDS
            # "don't really like" keeps the negation
            and not (k >= 2 and tokens[k - 2] in ("dont", "not", "never", "doesnt"))
        ):
            negated = False
        k += 1
    return negated


def _polarities(tokens: list[str], spans: list[_Span]) -> list[bool]:
    return [not _negated_at(tokens, span.start) for span in spans]
