"""ReDial (Li et al., NeurIPS 2018) dialogues as released: real crowd-worker conversations in which
a seeker asks for movies and a recommender suggests them. Movie mentions in the text are written
`@<movieId>`; `movieMentions` gives each mentioned id's name ("Superbad  (2007)").

Only the files in `<data_dir>/redial/` are read. The test split is withheld: `load_dialogues`
reads `test_data.jsonl` only where that file exists, and says so clearly where it does not.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from crs.data.errors import DataError, DataNotFoundError

SPLIT_FILES = {"train": "train_data.jsonl", "test": "test_data.jsonl"}
MENTION = re.compile(r"@(\d+)")
_NAME_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")


@dataclass(frozen=True, slots=True)
class Message:
    text: str
    sender: int
    seeker: bool  # written by the person looking for a movie (the initiator)
    message_id: int = 0


@dataclass(frozen=True, slots=True)
class Opinion:
    """The seeker's or recommender's answers about one mentioned movie (None: did not say)."""

    suggested: bool | None
    seen: bool | None
    liked: bool | None


@dataclass(frozen=True)
class Dialogue:
    conversation_id: str
    messages: tuple[Message, ...]
    mentions: Mapping[str, str]  # movie id -> name as ReDial writes it
    seeker_opinions: Mapping[str, Opinion]


def movie_name(name: str) -> tuple[str, int | None]:
    """ReDial's name of a movie ("Whip It  (2009)") -> ("Whip It", 2009)."""
    match = _NAME_YEAR.search(name)
    year = int(match.group(1)) if match else None
    title = _NAME_YEAR.sub("", name) if match else name
    return " ".join(title.split()), year


def part_of(conversation_id: str, salt: str = "redial-split-v1") -> Literal["tune", "heldout"]:
    """Half of the dialogues by a hash of their id: "tune" may be looked at, "heldout" not."""
    digest = hashlib.sha256(f"{salt}:{conversation_id}".encode()).digest()
    return "tune" if digest[0] % 2 == 0 else "heldout"


SEEKER_HALF_SALT = "redial-seekers-v1"


def seeker_half(conversation_id: str) -> Literal["phrasing", "comparison"]:
    """Half of the dialogues by another hash of their id: simulated users may draw their words
    from the seekers of the "phrasing" half (`simulators.seeker_phrases`); simulated users are
    compared with the seekers of the "comparison" half (`crs.evaluation.fidelity`)."""
    return "phrasing" if part_of(conversation_id, salt=SEEKER_HALF_SALT) == "tune" else "comparison"


def _answer(value: object) -> bool | None:
    return {0: False, 1: True}.get(value) if isinstance(value, int) else None


def load_dialogues(data_dir: Path, split: str = "train") -> list[Dialogue]:
    """The dialogues of `split` ("train": the 1,401 released here; "test": only where its file
    exists), in file order."""
    if split not in SPLIT_FILES:
        raise DataError(f"ReDial has no split {split!r} (known: {', '.join(SPLIT_FILES)})", data_dir)
    path = data_dir / "redial" / SPLIT_FILES[split]
    if not path.is_file():
        withheld = " (ReDial's test split is withheld from this data folder)" if split == "test" else ""
        raise DataNotFoundError(f"ReDial {split} dialogues not found: looked for {path}{withheld}")
    dialogues: list[Dialogue] = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                seeker = int(raw["initiatorWorkerId"])
                messages = tuple(
                    Message(
                        str(m["text"]),
                        int(m["senderWorkerId"]),
                        int(m["senderWorkerId"]) == seeker,
                        int(m.get("messageId", 0)),
                    )
                    for m in raw["messages"]
                )
                mentions = {str(k): str(v) for k, v in (raw.get("movieMentions") or {}).items()}
                questions = raw.get("initiatorQuestions") or {}
                opinions = {
                    str(k): Opinion(
                        _answer(v.get("suggested")), _answer(v.get("seen")), _answer(v.get("liked"))
                    )
                    for k, v in (questions.items() if isinstance(questions, dict) else ())
                }
            except (KeyError, TypeError, ValueError) as error:
                raise DataError(f"malformed dialogue on line {line_number}: {error}", path) from error
            dialogues.append(
                Dialogue(
                    conversation_id=str(raw.get("conversationId", line_number)),
                    messages=messages,
                    mentions=MappingProxyType(mentions),
                    seeker_opinions=MappingProxyType(opinions),
                )
            )
    return dialogues


__all__ = ["Dialogue", "MENTION", "Message", "Opinion", "load_dialogues", "movie_name", "part_of"]
