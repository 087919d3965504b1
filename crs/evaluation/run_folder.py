"""A run folder while a run writes it: nothing finished is ever lost.

- The folder is locked (`fcntl.flock` on `.lock`, released by the kernel even when the process is
  killed) so that two runs never write one folder.
- `config.json` is written before the first conversation, so a killed run can be resumed.
- Every finished conversation is appended to `transcripts.jsonl` and flushed as it ends, in
  conversation order: a run killed at conversation 3,900 of 4,000 keeps 3,900 (at most the
  conversations in flight are lost).
- `metrics.json` and the plot are written at the end, each to a temporary file renamed into place,
  so a reader never sees half of one.

`resume` reopens such a folder: it drops a torn last line (the write a kill interrupted) and gives
back the conversations already played.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from crs.evaluation.records import ConversationRecord

LOCK = ".lock"
CONFIG, TRANSCRIPTS, METRICS, PLOT = "config.json", "transcripts.jsonl", "metrics.json", "success_by_turn.png"


class RunFolderError(Exception):
    """The folder cannot be written or resumed; the message says which and why."""


def write_atomically(path: Path, text: str) -> None:
    """`text` into `path` through a temporary file and a rename: all of it or none."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def lock_folder(path: Path, what: str = "run folder") -> IO[str]:
    """`path`, made if need be, locked against every other writer until `release_folder`; `what`
    names the folder in errors ("report folder")."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock = (path / LOCK).open("a", encoding="utf-8")
    except OSError as error:
        raise RunFolderError(f"cannot write {what} {path}: {error.strerror or error}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise RunFolderError(f"{what} {path} is being written by another run") from None
    return lock


def release_folder(path: Path, lock: IO[str]) -> None:
    (path / LOCK).unlink(missing_ok=True)
    lock.close()  # closing releases the lock


class RunFolder:
    """An open, locked run folder; use `create` or `resume`, then `append`, then `close`."""

    def __init__(self, path: Path, lock: IO[str], made: bool = False) -> None:
        self.path = path
        self._lock = lock
        self._made = made  # this run made the folder: a run that failed before writing removes it
        self._transcripts: IO[str] | None = None  # opened by the first `append`

    @classmethod
    def _open(cls, path: Path, new: bool) -> IO[str]:
        """The folder, made if need be, with its lock held."""
        lock = lock_folder(path)
        if new and any(entry.name != LOCK for entry in path.iterdir()):
            cls._release(path, lock)
            raise RunFolderError(
                f"run folder {path} already exists and is not empty; choose another --out "
                f"(or `crs evaluate --resume {path}` to finish an interrupted run)"
            )
        return lock

    @staticmethod
    def _release(path: Path, lock: IO[str]) -> None:
        release_folder(path, lock)

    @classmethod
    def create(cls, path: Path) -> RunFolder:
        """A new run's folder (empty or absent), locked; fails before any work is done."""
        made = not path.exists()
        return cls(path, cls._open(path, new=True), made)

    @classmethod
    def resume(cls, path: Path) -> tuple[RunFolder, dict[str, Any], list[ConversationRecord]]:
        """An interrupted run's folder, locked: its saved config and the conversations it holds
        (a torn last line is cut off the file)."""
        if not (path / CONFIG).is_file():
            raise RunFolderError(f"{path} is not a run folder to resume: it has no {CONFIG}")
        if (path / METRICS).exists():
            raise RunFolderError(f"run {path} is complete (it has {METRICS}); nothing to resume")
        lock = cls._open(path, new=False)
        try:
            config = json.loads((path / CONFIG).read_text(encoding="utf-8"))
            if not isinstance(config, dict):
                raise ValueError("not a JSON object")
            records = _read_complete_lines(path / TRANSCRIPTS)
        except (OSError, ValueError) as error:
            cls._release(path, lock)
            raise RunFolderError(f"cannot resume {path}: {error}") from None
        return cls(path, lock), config, records

    def write_config(self, config: Mapping[str, Any]) -> None:
        write_atomically(self.path / CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def append(self, record: ConversationRecord) -> None:
        if self._transcripts is None:
            self._transcripts = (self.path / TRANSCRIPTS).open("a", encoding="utf-8")
        self._transcripts.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
        self._transcripts.flush()

    def write_metrics(self, metrics: Mapping[str, Any]) -> None:
        write_atomically(self.path / METRICS, json.dumps(metrics, indent=2) + "\n")

    @property
    def plot_path(self) -> Path:
        return self.path / PLOT

    def close(self) -> None:
        if self._transcripts is not None:
            self._transcripts.close()
        if not self._lock.closed:
            self._release(self.path, self._lock)
        if self._made and not any(self.path.iterdir()):
            self.path.rmdir()  # failed before writing anything: leave no empty folder behind

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_complete_lines(path: Path) -> list[ConversationRecord]:
    """The records of `path`; a last line without its newline, or not valid JSON, is what a kill
    cut short: it is removed from the file. Damage anywhere else is an error."""
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    records: list[ConversationRecord] = []
    keep = 0
    for number, line in enumerate(complete, start=1):
        try:
            records.append(ConversationRecord.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError) as error:
            if number == len(complete) and not tail:
                break  # the last line, torn mid-record and then newline-free: cut below
            raise ValueError(f"{path}, line {number}: not a conversation record ({error})") from None
        keep += len(line) + 1
    if keep != len(data):
        with path.open("r+b") as handle:
            handle.truncate(keep)
    return records
