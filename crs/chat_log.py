"""Chat logs (`crs chat --log-dir DIR`): every conversation appended turn by turn, so a server that
stops or crashes loses nothing a person said, and `crs view DIR` reads them back.

Each server process appends to its own file, `chat-<UTC start>-<pid>.jsonl`, so two servers may
share a folder without a lock. Each line is the conversation as it stands after one event (the
evaluation transcript schema, see `crs.evaluation.records`, with both sides' words) plus:

- `session`: a random id of the browser tab; `conversation`: its conversation number (a restart
  or a policy switch starts another);
- `time`: when the event happened (UTC, ISO 8601); `event`: what the person did
  (`{"kind": "start" | "text" | "button" | "remove" | "policy" | "feedback", "value": ...}`, a
  text's words being in `messages`);
- `feedback`: the thumbs up and down given so far, with the items of the list they judged.

A line is complete before it is written (one `write` + flush, under a lock), so a kill loses at
most the line being written; a reader skips a torn last line. No address of the person is kept.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from crs.evaluation.records import ConversationRecord

LOG_GLOB = "chat-*.jsonl"
LOG_FIELDS = ("session", "conversation", "time", "event", "feedback")


class ChatLogError(Exception):
    """A log folder that cannot be written or read; the message names the path."""


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class ChatLog:
    """An append-only JSONL file in `folder`, shared by every session of one server (thread-safe)."""

    def __init__(self, folder: Path) -> None:
        started = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.path = Path(folder) / f"chat-{started}-{os.getpid()}.jsonl"
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self._handle: IO[str] = self.path.open("a", encoding="utf-8")
        except OSError as error:
            raise ChatLogError(f"cannot write the chat log in {folder}: {error.strerror or error}") from None
        self._lock = threading.Lock()

    def append(self, entry: Mapping[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            try:
                self._handle.write(line)
                self._handle.flush()
            except (OSError, ValueError) as error:  # ValueError: written after close
                raise ChatLogError(f"cannot append to {self.path}: {error}") from None

    def close(self) -> None:
        with self._lock:
            self._handle.close()


@dataclass(frozen=True)
class LoggedConversation:
    """One conversation of a chat log: its last state, and when it started and last changed."""

    session: str
    conversation: int
    record: ConversationRecord
    started: str
    last: str
    events: int
    feedback: tuple[dict[str, Any], ...]

    @property
    def accepted(self) -> bool:
        """A person's chat succeeds when they take an item (`crs.chat.ChatBot.transcript_record`)."""
        return self.record.success


def is_chat_log_folder(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob(LOG_GLOB))


def read_chat_logs(folder: Path) -> tuple[list[LoggedConversation], list[str]]:
    """Every conversation in the folder's logs, in order of first appearance, and one line per
    line that was skipped (torn by a kill, or not a log line) naming the file and line."""
    first: dict[tuple[str, int], Mapping[str, Any]] = {}
    last: dict[tuple[str, int], Mapping[str, Any]] = {}
    counts: dict[tuple[str, int], int] = {}
    skipped: list[str] = []
    paths = sorted(folder.glob(LOG_GLOB))
    if not paths:
        raise ChatLogError(f"{folder} holds no chat logs ({LOG_GLOB}); start one with crs chat --log-dir")
    for path in paths:
        for number, entry, problem in _lines(path):
            if problem:
                skipped.append(f"{path}, line {number}: {problem}")
                continue
            key = (str(entry["session"]), int(entry["conversation"]))
            first.setdefault(key, entry)
            last[key] = entry
            counts[key] = counts.get(key, 0) + 1
    conversations = []
    for key, entry in last.items():
        record = ConversationRecord.from_json({k: v for k, v in entry.items() if k not in LOG_FIELDS})
        conversations.append(
            LoggedConversation(
                session=key[0],
                conversation=key[1],
                record=record,
                started=str(first[key]["time"]),
                last=str(entry["time"]),
                events=counts[key],
                feedback=tuple(entry.get("feedback") or ()),
            )
        )
    return conversations, skipped


def _lines(path: Path) -> Iterator[tuple[int, Mapping[str, Any], str]]:
    try:
        handle = path.open("rb")
    except OSError as error:
        raise ChatLogError(f"cannot read {path}: {error.strerror or error}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            yield number, *_parse(raw)


def _parse(raw: bytes) -> tuple[Mapping[str, Any], str]:
    try:
        entry = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}, "not JSON (a line torn by a kill is skipped)"
    if not isinstance(entry, dict):
        return {}, f"a JSON {type(entry).__name__}, not a log entry"
    missing = [name for name in ("session", "conversation", "time") if name not in entry]
    if missing:
        return {}, f"not a chat log entry (no {', '.join(missing)})"
    if not isinstance(entry["conversation"], int) or not isinstance(entry.get("feedback", []), list):
        return {}, "not a chat log entry (conversation or feedback of the wrong type)"
    try:
        ConversationRecord.from_json({k: v for k, v in entry.items() if k not in LOG_FIELDS})
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return {}, f"not a conversation record ({error})"
    return entry, ""


def feedback_counts(conversations: Iterable[LoggedConversation]) -> tuple[int, int]:
    """Thumbs up and down over every conversation (the last judgement of each message)."""
    up = down = 0
    for conversation in conversations:
        for judged in conversation.feedback:
            if judged.get("liked") is True:
                up += 1
            elif judged.get("liked") is False:
                down += 1
    return up, down
