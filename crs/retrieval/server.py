"""A chromadb server as the vector store: its URL, a bounded reachability check, a client, and a
local `chroma run` for tests and benchmarks.

Several chat replicas can share one index by pointing at the same server (`--chroma-url
http://HOST:PORT`, or `[chat] chroma_url`). The URL is checked before anything else is loaded, and
a server that does not answer its heartbeat within `timeout_s` is one clear error naming the URL
(chromadb's own client would otherwise retry for a long time, then fail with a traceback).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HEARTBEAT = "/api/v2/heartbeat"
CONNECT_TIMEOUT_S = 5.0


class StoreUnreachable(ValueError):
    """The chroma server named by the settings does not answer: one line, naming the URL."""


@dataclass(frozen=True)
class ChromaUrl:
    """`http(s)://HOST:PORT` split the way `chromadb.HttpClient` takes it."""

    host: str
    port: int
    ssl: bool

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"


def url_problem(url: str) -> str:
    """What is wrong with a chroma server URL ("" when nothing is; "" is also "no server")."""
    if not url:
        return ""
    try:
        parse_url(url)
    except ValueError as error:
        return str(error)
    return ""


def parse_url(url: str) -> ChromaUrl:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"chroma server URL {url!r} must look like http://HOST:PORT")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"chroma server URL {url!r} must be just http://HOST:PORT (no path)")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 8000)
    except ValueError:
        raise ValueError(f"chroma server URL {url!r} has an invalid port") from None
    return ChromaUrl(host=parts.hostname, port=port, ssl=parts.scheme == "https")


def check_reachable(url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> ChromaUrl:
    """The parsed URL once the server answers its heartbeat; `StoreUnreachable` within about
    `timeout_s` when it does not."""
    parsed = parse_url(url)
    try:
        with urllib.request.urlopen(parsed.url + HEARTBEAT, timeout=timeout_s) as answer:  # noqa: S310
            answer.read()
    except (OSError, urllib.error.URLError) as error:
        reason = getattr(error, "reason", None) or error
        raise StoreUnreachable(
            f"chroma server at {parsed.url} is not reachable ({reason}); "
            "start it with `chroma run --host HOST --port PORT --path DIR` or leave chroma_url empty"
        ) from None
    return parsed


def http_client(url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    """A `chromadb.HttpClient` for `url`, after a bounded heartbeat check."""
    parsed = check_reachable(url, timeout_s)
    import chromadb
    from chromadb.config import Settings

    return chromadb.HttpClient(
        host=parsed.host,
        port=parsed.port,
        ssl=parsed.ssl,
        settings=Settings(anonymized_telemetry=False),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def chroma_executable() -> str:
    """The `chroma` CLI installed next to this Python (the venv's bin), else the one on PATH."""
    beside = Path(sys.executable).parent / "chroma"
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if not found:
        raise FileNotFoundError(
            "no `chroma` executable next to this Python or on PATH (pip install chromadb)"
        )
    return found


class LocalChromaServer:
    """`chroma run --path PATH --host 127.0.0.1 --port PORT`, started now and stopped (by its pid)
    by `stop()` or at the end of a `with` block. For tests and benchmarks."""

    def __init__(self, path: Path, port: int | None = None, start_timeout_s: float = 60.0) -> None:
        self.path = path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        path.mkdir(parents=True, exist_ok=True)
        self._log = (path.parent / f"{path.name}-chroma-{self.port}.log").open("wb")
        self.process = subprocess.Popen(
            [
                chroma_executable(),
                "run",
                "--path",
                str(path),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one, never by name
        )
        deadline = time.monotonic() + start_timeout_s
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(
                    f"chroma run exited with {self.process.returncode} (log: {self._log.name})"
                )
            try:
                check_reachable(self.url, timeout_s=1.0)
                return
            except StoreUnreachable:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"chroma run did not answer within {start_timeout_s:g} s") from None
                time.sleep(0.2)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
            except ProcessLookupError:
                pass
        self._log.close()

    def __enter__(self) -> LocalChromaServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
