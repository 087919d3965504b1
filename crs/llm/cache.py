"""Generations cached on disk, keyed by the backend's name and the whole request.

A request carries its seed and temperature, so the same request to the same model may be answered
from disk: reruns are exact and cost nothing. One small JSON file per key, written to a temporary
name and renamed, so forked workers writing the same key at once never leave half a file; a file
that cannot be read back (corrupt, truncated, from another version) is simply regenerated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from crs.llm.base import Generation, GenerationRequest, LLMBackend

FORMAT = 1


def request_key(backend_name: str, request: GenerationRequest) -> str:
    """sha256 of the canonical JSON of (backend name, every request field)."""
    fields = dataclasses.asdict(request)  # messages become dicts, tuples lists: JSON-ready
    if not fields["fresh"]:
        del fields["fresh"]  # keys from before the field existed stay valid
    canonical = json.dumps(
        {"backend": backend_name, "request": fields},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class CachedBackend:
    """Wraps `inner`; its name is the inner name, so wrapping never changes a key."""

    def __init__(self, inner: LLMBackend, folder: Path) -> None:
        self.inner = inner
        self.folder = folder
        self.name = inner.name

    def path(self, request: GenerationRequest) -> Path:
        key = request_key(self.name, request)
        return self.folder / key[:2] / f"{key}.json"

    def generate(self, request: GenerationRequest) -> Generation:
        started = time.perf_counter()
        path = self.path(request)
        stored = _read(path)
        if stored is not None:
            text, prompt_tokens, completion_tokens = stored
            return Generation(
                text, prompt_tokens, completion_tokens, time.perf_counter() - started, cached=True
            )
        generation = self.inner.generate(request)
        _write(
            path,
            {
                "format": FORMAT,
                "backend": self.name,
                "text": generation.text,
                "prompt_tokens": generation.prompt_tokens,
                "completion_tokens": generation.completion_tokens,
                "seconds": generation.seconds,
            },
        )
        return generation


def _read(path: Path) -> tuple[str, int, int] | None:
    try:
        record: Any = json.loads(path.read_text(encoding="utf-8"))
        text, prompt_tokens, completion_tokens = (
            record["text"],
            record["prompt_tokens"],
            record["completion_tokens"],
        )
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None  # missing or unreadable: generate again, and the rename replaces the bad file
    if record.get("format") != FORMAT or not isinstance(text, str):
        return None
    if not (isinstance(prompt_tokens, int) and isinstance(completion_tokens, int)):
        return None
    return text, prompt_tokens, completion_tokens


def _write(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:16]}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(record, file, ensure_ascii=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
