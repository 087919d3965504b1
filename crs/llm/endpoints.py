"""Which of several OpenAI-compatible servers answers the next request.

`[llm] url` / `--llm-url` may list several servers, comma-separated: a cluster of vLLM or llama.cpp
servers that serve one model. Each request goes to the least busy server that is not cooling down,
ties taken in turn, with at most `concurrency` requests in flight to each server from this machine.

The limit holds across processes, because that is where the requests come from: every forked
`--workers` process of an evaluation sends one request at a time, so a count kept inside one
process would never be above 1. A request in flight holds one of its server's `concurrency` slots,
an exclusive `flock` on a small file in a per-user folder of the temporary directory; the kernel
lets go of it when the file is closed or the process dies, so a killed worker never keeps a slot.
Slots are taken level by level (a server's first slot before any server's second), so a request
goes to the server with the fewest requests in flight as every process sees it, and each process
starts its turn at an offset from its pid, so that workers do not all begin with the first server.

A server whose try failed in a way another try may mend (refused, timed out, cut off, 429, 5xx)
cools down: it is passed over while another server can take the request, for `cooldown_s`,
doubled with each failure in a row up to `MAX_COOLDOWN_S`; its next answer ends it.

Which server answered never changes the words: they all serve the same model, and a request
carries its own seed and temperature (the disk cache's key does not name the server either).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from crs.llm.base import LLMError

COOLDOWN_S = 5.0
MAX_COOLDOWN_S = 300.0
# Waiting for a free slot: checks start 1 ms apart and slow to this (a reply takes far longer).
_LONGEST_POLL_S = 0.02


def endpoint(base_url: str, chat: bool) -> str:
    """`http://host:port` or `http://host:port/v1` (with or without a final slash) -> the endpoint."""
    return base_v1(base_url) + ("/chat/completions" if chat else "/completions")


def base_v1(url: str) -> str:
    """A server's base URL ending in /v1: one server however its address is written."""
    base = url.rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


def url_problem(url: str) -> str:
    """What is wrong with an LLM server address ("" when nothing is): checked when the settings
    are read, so a typo fails at once, not at the first of many conversations."""
    if not url.startswith(("http://", "https://")):
        return f"the LLM server url must start with http:// or https://, got {url!r}"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it
    except ValueError as error:
        return f"the LLM server url {url!r} is malformed: {error}"
    if not parts.hostname:
        return f"the LLM server url {url!r} names no host"
    return ""


def split_urls(text: str) -> tuple[str, ...]:
    """The addresses of a comma-separated list (one address is a list of one)."""
    return tuple(part.strip() for part in text.split(","))


def urls_problem(text: str) -> str:
    """What is wrong with a comma-separated list of LLM server addresses ("" when nothing is);
    the message names the address at fault."""
    urls = split_urls(text)
    if len(urls) > 1 and not all(urls):
        return f"the LLM server list {text!r} has an empty entry (separate the urls with single commas)"
    seen: set[str] = set()
    for url in urls:
        problem = url_problem(url)
        if problem:
            return problem
        if base_v1(url) in seen:
            return f"the LLM server url {url!r} is listed twice in {text!r}"
        seen.add(base_v1(url))
    return ""


class Endpoint:
    """One server of the pool and what this process has seen of it."""

    def __init__(self, url: str, slots: Path) -> None:
        self.url = url.rstrip("/")
        self.base = base_v1(url)
        self.slots = slots  # the folder of its slot files, shared by every process of this user
        self.answered = 0
        self.failed = 0
        self.failures_in_a_row = 0
        self.cooling_until = 0.0  # time.monotonic() before which it is passed over


@dataclass(frozen=True)
class EndpointCount:
    """What one server did for this process: requests answered, tries failed."""

    url: str
    answered: int
    failed: int


def default_slots_dir() -> Path:
    # Per user: another user's folder of the same name cannot hold our slots.
    return Path(tempfile.gettempdir()) / f"crs-llm-slots-{os.getuid()}"


class EndpointPool:
    """The servers of one remote backend, their slots and their cooling down (thread-safe)."""

    def __init__(
        self,
        urls: Sequence[str],
        concurrency: int = 4,
        cooldown_s: float = COOLDOWN_S,
        slots_dir: Path | None = None,
    ) -> None:
        if not urls:
            raise ValueError("an LLM server pool needs at least one url")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        folder = slots_dir if slots_dir is not None else default_slots_dir()
        self.endpoints = tuple(
            Endpoint(url, folder / hashlib.sha256(base_v1(url).encode()).hexdigest()[:16]) for url in urls
        )
        self.concurrency = concurrency
        self.cooldown_s = cooldown_s
        self._lock = threading.Lock()
        self._turn = 0
        self._folders_made = False

    @contextlib.contextmanager
    def slot(self, among: Sequence[Endpoint]) -> Iterator[Endpoint]:
        """Holds a slot of the best server of `among` (waiting for one when all are full) while
        the request runs."""
        chosen, handle = self._take(among)
        try:
            yield chosen
        finally:
            os.close(handle)  # closing the file lets go of its lock

    def succeeded(self, server: Endpoint) -> None:
        with self._lock:
            server.answered += 1
            server.failures_in_a_row = 0
            server.cooling_until = 0.0

    def failed(self, server: Endpoint) -> None:
        with self._lock:
            server.failed += 1
            server.failures_in_a_row += 1
            pause = min(self.cooldown_s * 2 ** (server.failures_in_a_row - 1), MAX_COOLDOWN_S)
            server.cooling_until = time.monotonic() + pause

    def counts(self) -> tuple[EndpointCount, ...]:
        with self._lock:
            return tuple(EndpointCount(s.url, s.answered, s.failed) for s in self.endpoints)

    def _order(self, among: Sequence[Endpoint]) -> list[Endpoint]:
        """The servers to ask for a slot, in order: those not cooling down, in turn from an offset
        of this process's own; when all cool down, the one whose cooling ends first."""
        now = time.monotonic()
        with self._lock:
            ready = [server for server in among if server.cooling_until <= now]
            if not ready:
                ready = [min(among, key=lambda server: server.cooling_until)]
            start = (os.getpid() + self._turn) % len(ready)
            self._turn += 1
        return ready[start:] + ready[:start]

    def _take(self, among: Sequence[Endpoint]) -> tuple[Endpoint, int]:
        self._make_folders()
        pause = 0.001
        while True:
            order = self._order(among)
            for level in range(self.concurrency):
                for server in order:
                    handle = _lock_slot(server, level)
                    if handle is not None:
                        return server, handle
            time.sleep(pause)
            pause = min(2 * pause, _LONGEST_POLL_S)

    def _make_folders(self) -> None:
        if self._folders_made:
            return
        for server in self.endpoints:
            try:
                server.slots.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as error:
                raise LLMError(
                    f"cannot keep the request limit of the LLM server at {server.url}: "
                    f"{server.slots}: {error.strerror or error}"
                ) from None
        self._folders_made = True


def _lock_slot(server: Endpoint, level: int) -> int | None:
    """An open file holding slot `level` of `server`, or None when another request holds it."""
    path = server.slots / str(level)
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise LLMError(
            f"cannot keep the request limit of the LLM server at {server.url}: {path}: "
            f"{error.strerror or error}"
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        return None
    except BaseException:
        os.close(handle)
        raise
    return handle
