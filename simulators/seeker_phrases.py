"""Real seekers' phrasing for the LLM user: ReDial seekers' messages, read by the chat's own
reader, retrieved by meaning.

The LLM user's words used to come from one fixed few-shot prompt at temperature 0, and it said six
things in six ways. Here every reply starts from what real people wrote in the same situation:

- **The messages** are the seekers' messages of ReDial's training dialogues in the *phrasing
  half* (`crs.data.redial.seeker_half`). The other half is what `crs simulate-check` compares
  simulated users with, so a user that reuses real words is never scored against those same words.
- **Their labels** are what the chat reads in them (`crs.language.reading.read_message`): the
  answer to a question ("nope" is no), the reply to a list ("the second one" takes item 2), the
  wishes ("i like comedies" wants Comedy), whether it names a title (never used: it could be the
  target's), and whether it opens or closes its dialogue.
- **Retrieval** embeds them once with MiniLM into a chromadb store under the cache directory (the
  project's own index, `crs.retrieval.store`: verified on every open, rebuilt when stale) and
  ranks the messages of the wanted kind by cosine to the plain wording of the decision.

`SeekerPhrases.examples` draws a few of the nearest at random from the caller's generator, so the
examples vary per turn and per persona while a seed still fixes them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from crs.language.text import fold
from crs.types import AcceptReply, Answer, AnswerReply, Ask, InformReply, Recommend, RejectReply

if TYPE_CHECKING:
    from crs.language.understanding import Understander
    from crs.retrieval.encoder import Encoder, Vectors

Kind = Literal["yes", "no", "dont_know", "accept", "reject", "inform", "opening", "quit"]
KINDS: tuple[Kind, ...] = ("yes", "no", "dont_know", "accept", "reject", "inform", "opening", "quit")
MAX_WORDS = 30  # longer messages tell stories the user cannot back up
# Answers and refusals of one bare word ("no", "yes", "nope") are 0.3% of ReDial seekers' messages
# (the phrasing half) but what a small model falls back to: neither shown nor said.
BARE_WORD_KINDS: frozenset[str] = frozenset({"yes", "no", "dont_know", "reject"})
POOL = 100  # nearest messages the examples are drawn from
GREETING_WORDS = 7  # longest opening kept as a greeting
LIST_CONTEXT = Recommend(items=tuple(range(10)))
# Words per message a persona's verbosity prefers (short, medium, long); a pool too small for
# the range falls back to every length.
VERBOSITY_WORDS = {"short": (1, 6), "medium": (4, 12), "long": (8, MAX_WORDS)}


@dataclass(frozen=True)
class SeekerMessage:
    """One real seeker's message and what the chat reads in it."""

    text: str
    words: int
    first: bool  # opens its dialogue
    last: bool  # closes it
    answer: Answer | None  # as the reply to a yes/no question
    list_reply: Literal["accept", "reject"] | None  # as the reply to a numbered list
    rank: int | None  # 1-based item taken, for an acceptance
    wants: tuple[str, ...]  # attribute names wished for, read alone
    unwanted: tuple[str, ...]
    names_title: bool

    def label(self, kind: Kind) -> str:
        """The decision this message carries, worded as the phrasing prompt words decisions."""
        if kind == "accept":
            return f"take number {self.rank}" if self.rank else "take it"
        if kind == "reject":
            return "none of them" + (f" (too much: {self.unwanted[0]})" if self.unwanted else "")
        if kind in ("inform", "opening"):
            return f"want ({', '.join(self.wants)})" if self.wants else "want (something)"
        if kind == "quit":
            return "quit"
        word = {"yes": "yes", "no": "no", "dont_know": "not sure"}[kind]
        named = self.wants if kind == "yes" else (self.unwanted or self.wants)
        return f"{word} ({named[0]})" if named else word

    def fits(self, kind: Kind) -> bool:
        if self.names_title or self.words > MAX_WORDS or not self.words:
            return False
        if kind in BARE_WORD_KINDS and self.words < 2:
            return False
        if kind == "yes":
            return self.answer is Answer.YES
        if kind == "no":
            return self.answer is Answer.NO
        if kind == "dont_know":
            return self.answer is Answer.DONT_KNOW
        if kind == "accept":
            return self.list_reply == "accept" and self.rank is not None
        if kind == "reject":
            return self.list_reply == "reject"
        if kind == "inform":
            return bool(self.wants) and self.answer is None
        if kind == "opening":
            return self.first and bool(self.wants)
        return self.last and self.answer is None and self.list_reply is None and not self.wants


def read_seeker_message(understander: Understander, text: str, first: bool, last: bool) -> SeekerMessage:
    """`text` labelled by the chat's reader (see the module docstring)."""
    from crs.language.acts import MentionItem
    from crs.language.reading import read_message

    catalog = understander.catalog
    alone = understander.understand(text)
    to_question = read_message(understander.understand(text, Ask(attribute=0)), Ask(attribute=0)).reply
    to_list = read_message(understander.understand(text, LIST_CONTEXT), LIST_CONTEXT).reply
    wished = read_message(alone, None).reply
    answer = to_question.answer if isinstance(to_question, AnswerReply) else None
    list_reply: Literal["accept", "reject"] | None = None
    rank = None
    if isinstance(to_list, AcceptReply):
        list_reply, rank = "accept", to_list.item + 1
    elif isinstance(to_list, RejectReply):
        list_reply = "reject"
    wants: tuple[str, ...] = ()
    unwanted: tuple[str, ...] = ()
    if isinstance(wished, InformReply):
        wants = tuple(catalog.attributes[a].name for a in wished.attributes)
        unwanted = tuple(catalog.attributes[a].name for a in wished.unwanted)
    return SeekerMessage(
        text=text,
        words=len(fold(text).split()),
        first=first,
        last=last,
        answer=answer,
        list_reply=list_reply,
        rank=rank,
        wants=wants,
        unwanted=unwanted,
        names_title=any(isinstance(a, MentionItem) for a in alone.acts),
    )


GREETING = re.compile(r"(hi|hello|hey|good (morning|evening|afternoon|day)|greetings|howdy)\b", re.IGNORECASE)
# A wish is said after these words in an opening ("I'm looking for", "Do you know any good").
# How a wish follows these words: "I'm looking for" a crime movie, "I like" crime movies.
SINGULAR_AFTER = frozenset({"for", "watch", "see", "want", "recommend", "suggest", "know", "need"})
PLURAL_AFTER = frozenset({"like", "love", "into", "enjoy", "prefer"})
_BEFORE_A_WISH = frozenset({"a", "an", "some", "any", "good", "great", "nice", "the", "few", "really", "new"})
_PUNCTUATION = ".,!?;:\"'()"


def opening_frame(understander: Understander, text: str) -> str | None:
    """The words before the first wish of a real opening, when they end as a wish can follow:
    "Hi! I'm looking for a good comedy" -> "Hi! I'm looking for". None when there is none."""
    from crs.language.reading import read_message

    words = text.split()
    for position, word in enumerate(words):
        reply = read_message(understander.understand(word.strip(_PUNCTUATION)), None).reply
        if isinstance(reply, InformReply) and reply.attributes:
            frame = words[:position]
            while frame and frame[-1].lower() in _BEFORE_A_WISH:
                frame.pop()
            if frame and frame[-1].lower() in SINGULAR_AFTER | PLURAL_AFTER:
                return " ".join(frame)
            return None
    return None


class SeekerPhrases:
    """The labelled messages and their embeddings; `examples` retrieves some for a decision.
    `frames` are the beginnings of real openings a wish can follow, and `greetings` the real
    openings that only greet ("Hi, how are you?")."""

    def __init__(
        self,
        messages: Sequence[SeekerMessage],
        vectors: Vectors,
        encoder: Encoder,
        frames: Sequence[str] = (),
        greetings: Sequence[str] = (),
    ) -> None:
        if len(messages) != len(vectors):
            raise ValueError(f"{len(messages)} messages but {len(vectors)} vectors")
        self.frames = tuple(frames)
        self.greetings = tuple(greetings)
        self.messages = tuple(messages)
        self.vectors = vectors
        self.encoder = encoder
        self._by_kind = {
            kind: np.array([i for i, m in enumerate(self.messages) if m.fits(kind)], dtype=np.int64)
            for kind in KINDS
        }
        self._queries: dict[str, Vectors] = {}

    def count(self, kind: Kind) -> int:
        return len(self._by_kind[kind])

    def of_kind(self, kind: Kind, verbosity: str | None = None, at_least: int = 1) -> list[int]:
        """Indices of the messages of `kind`, of the persona's preferred lengths when at least
        `at_least` of them fit."""
        rows = [int(i) for i in self._by_kind[kind]]
        if verbosity in VERBOSITY_WORDS:
            low, high = VERBOSITY_WORDS[verbosity]
            sized = [i for i in rows if low <= self.messages[i].words <= high]
            if len(sized) >= at_least:
                return sized
        return rows

    def nearest(self, kind: Kind, query: str, k: int = POOL, verbosity: str | None = None) -> list[int]:
        """Indices of the `k` messages of `kind` nearest in meaning to `query`, best first (of the
        persona's preferred lengths when at least `k` of them fit)."""
        rows = np.array(self.of_kind(kind, verbosity, at_least=k), dtype=np.int64)
        if not len(rows):
            return []
        vector = self._queries.get(query)
        if vector is None:
            vector = self.encoder.encode([query])[0]
            self._queries[query] = vector
        scores = self.vectors[rows] @ vector
        order = np.argsort(-scores, kind="stable")[:k]
        return [int(rows[j]) for j in order]

    def examples(
        self,
        kind: Kind,
        query: str,
        rng: np.random.Generator,
        k: int = 3,
        verbosity: str | None = None,
    ) -> list[SeekerMessage]:
        """`k` of the `POOL` messages of `kind` nearest to `query`, drawn at random from `rng`."""
        pool = self.nearest(kind, query, POOL, verbosity)
        if not pool:
            return []
        picked = rng.choice(len(pool), size=min(k, len(pool)), replace=False)
        return [self.messages[pool[int(j)]] for j in sorted(picked)]


def seeker_texts(data_dir: Path) -> list[tuple[str, bool, bool]]:
    """(text, opens its dialogue, closes it) of every seeker message in ReDial's training
    dialogues of the phrasing half, each movie written as its title, as people type it."""
    from crs.data.redial import load_dialogues, seeker_half
    from crs.language.tagged import as_typed

    out: list[tuple[str, bool, bool]] = []
    for dialogue in load_dialogues(data_dir, "train"):
        if seeker_half(dialogue.conversation_id) != "phrasing":
            continue
        said = [m for m in dialogue.messages if m.seeker and m.text.strip()]
        for position, message in enumerate(said):
            text = " ".join(as_typed(message.text, dialogue.mentions).split())
            out.append((text, position == 0, position == len(said) - 1))
    return out


_OPENED: dict[str, tuple[Understander, SeekerPhrases]] = {}


def open_seeker_phrases(
    data_dir: Path,
    understander: Understander,
    cache_dir: Path | None = None,
    encoder: Encoder | None = None,
) -> SeekerPhrases:
    """The phrases for `understander`'s catalog, embedded once into `<cache_dir>/phrases/` (about
    40 s on 2 cores the first time) and read by the reader on every open (a few seconds), so
    that the labels always follow the reader as it is. One per catalog in a process."""
    from crs.retrieval.encoder import MiniLmEncoder
    from crs.retrieval.store import open_or_build
    from crs.retrieval.text import content_hash
    from crs.scoring import default_cache_dir

    cached = _OPENED.get(str(data_dir))
    if cached is not None and cached[0] is understander:
        return cached[1]
    texts = seeker_texts(data_dir)
    encoder = encoder or MiniLmEncoder()
    folder = (cache_dir or default_cache_dir()) / "phrases" / "redial-seekers"
    index, _ = open_or_build(
        folder, [t for t, _, _ in texts], encoder, content_hash(encoder.name, (t for t, _, _ in texts))
    )
    messages = [read_seeker_message(understander, text, first, last) for text, first, last in texts]
    openings = [m for m in messages if m.first and not m.names_title]
    frames = [f for f in (opening_frame(understander, m.text) for m in openings if m.wants) if f]
    greetings = [
        m.text
        for m in openings
        if not m.wants and m.words <= GREETING_WORDS and GREETING.match(m.text) and m.answer is None
    ]
    phrases = SeekerPhrases(messages, index.vectors, encoder, sorted(set(frames)), sorted(set(greetings)))
    _OPENED.clear()
    _OPENED[str(data_dir)] = (understander, phrases)
    return phrases


__all__ = [
    "KINDS",
    "Kind",
    "SeekerMessage",
    "SeekerPhrases",
    "open_seeker_phrases",
    "read_seeker_message",
    "seeker_texts",
]
