"""Any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server, `python -m crs.llm.server`,
a hosted API): `/v1/completions` for prompts, `/v1/chat/completions` for chat messages. Several
servers of one model may be given, comma-separated: requests are spread over them
(`crs.llm.endpoints`), and a server that fails is passed over while another can answer.

Only the standard library, so the core stays light. The API key is read from an environment
variable whose name is configured: the key itself never goes into a configuration file or a run
folder. Connection errors (an answer that breaks off or is not HTTP included), timeouts, 429 and 5xx
are retried with exponential backoff (on another server first, when there is one); anything else
fails at once with the server's own message.
`timeout_s` bounds each try as a whole, from connecting to the answer's last byte, so a server that
drips bytes cannot hold a call for longer; an answer is read up to `MAX_ANSWER_BYTES`. Every
failure is an `LLMError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crs.llm.base import Generation, GenerationRequest, LLMError, one_line
from crs.llm.endpoints import (
    COOLDOWN_S,
    Endpoint,
    EndpointPool,
    endpoint,
    split_urls,
    url_problem,
    urls_problem,
)
from crs.llm.local import parse_response, request_body

__all__ = ["DEFAULT_API_KEY_ENV", "MAX_ANSWER_BYTES", "RemoteBackend", "endpoint", "url_problem"]

DEFAULT_API_KEY_ENV = "CRS_LLM_API_KEY"
# Far above any completion: a larger answer is not one, and reading it all could exhaust memory.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
_HINT = "start it or set [llm] url / --llm-url"


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", error)
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return "timed out"
    said = one_line(str(reason)) or type(reason).__name__
    if isinstance(reason, http.client.HTTPException) and not isinstance(reason, ConnectionError):
        return f"its answer is not valid HTTP ({said})"
    return said


class _Connection(http.client.HTTPConnection):
    """Remembers its sockets: urllib lets go of the connection before the body is read, and the
    watchdog of a try must still be able to end that read."""

    def __init__(self, *args: Any, sockets: list[socket.socket], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sockets = sockets

    def connect(self) -> None:
        super().connect()
        self.sockets.append(self.sock)


class _TLSConnection(_Connection, http.client.HTTPSConnection):
    """The same over TLS (the method order puts HTTPSConnection's connect under ours)."""


class _Handler(urllib.request.HTTPHandler):
    def __init__(self, sockets: list[socket.socket]) -> None:
        super().__init__()
        self.sockets = sockets

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_Connection, req, sockets=self.sockets)  # type: ignore[arg-type]


@functools.cache
def _tls() -> ssl.SSLContext:
    # What urllib uses when given no context; made once, as loading the certificates is slow.
    return ssl.create_default_context()


class _TLSHandler(urllib.request.HTTPSHandler):
    def __init__(self, sockets: list[socket.socket]) -> None:
        self.tls = _tls()
        super().__init__(context=self.tls)
        self.sockets = sockets

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_TLSConnection, req, sockets=self.sockets, context=self.tls)  # type: ignore[arg-type]


def _shut(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        # The plain socket's shutdown, also for TLS: it wakes a read blocked in another thread
        # without tearing down the TLS object that read is using. OSError: already closed.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class RemoteBackend:
    """OpenAI-compatible servers at `url`: one base URL, or several of the same model separated by
    commas. `model` is sent as the request's model name; `concurrency` bounds the requests in
    flight to each server from this machine (`crs.llm.endpoints`)."""

    def __init__(
        self,
        url: str,
        model: str = "",
        api_key_env: str = DEFAULT_API_KEY_ENV,
        timeout_s: float = 60.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        environ: Mapping[str, str] | None = None,
        concurrency: int = 4,
        cooldown_s: float = COOLDOWN_S,
        slots_dir: Path | None = None,
    ) -> None:
        problem = urls_problem(url)
        if problem:
            raise ValueError(problem)
        if retries < 0 or timeout_s <= 0:
            raise ValueError(f"need retries >= 0 and timeout_s > 0, got {retries} and {timeout_s}")
        if concurrency < 1:
            raise ValueError(f"need concurrency >= 1, got {concurrency}")
        urls = split_urls(url)
        self.url = url
        self.urls = urls
        self.model = model
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.pool = EndpointPool(urls, concurrency, cooldown_s, slots_dir)
        # The name is in every cache key: it names the servers as a set, never the one that
        # answered, so a rerun is served from disk whichever server answered each request.
        servers = sorted({one.rstrip("/") for one in urls}) if len(urls) > 1 else [urls[0].rstrip("/")]
        self.name = f"remote:{model or 'default'}@{'+'.join(servers)}"
        key = (os.environ if environ is None else environ).get(api_key_env, "") if api_key_env else ""
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"

    def generate(self, request: GenerationRequest) -> Generation:
        chat = request.prompt is None
        body = request_body(request)
        if self.model:
            body["model"] = self.model
        data = json.dumps(body).encode("utf-8")
        started = time.perf_counter()
        payload, address = self._post(chat, data)
        seconds = time.perf_counter() - started
        try:
            response = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            start = payload[:200].decode("utf-8", "replace")
            raise LLMError(
                f"the LLM server at {address} sent something that is not JSON: {start!r}"
            ) from None
        except RecursionError:
            raise LLMError(f"the LLM server at {address} sent JSON nested too deeply to read") from None
        except ValueError as error:  # e.g. an integer of thousands of digits
            raise LLMError(
                f"the LLM server at {address} sent JSON that cannot be read: {one_line(str(error))}"
            ) from None
        text, prompt_tokens, completion_tokens = parse_response(
            response, chat, f"the LLM server at {address}"
        )
        return Generation(text, prompt_tokens, completion_tokens, seconds)

    def _post(self, chat: bool, data: bytes) -> tuple[bytes, str]:
        """(the answer, the address that gave it). Tries go in rounds: each server with tries left
        gets one (a server cooling down only when no other is left), then a pause of backoff,
        doubled each round. With one server that is `retries` pauses between `retries + 1` tries;
        with several, a failed try goes on to another server at once. LLMError when every server
        has used its `retries + 1`."""
        servers = self.pool.endpoints
        tries_left = {server: self.retries + 1 for server in servers}
        last: dict[Endpoint, str] = {}
        tried_this_round: set[Endpoint] = set()
        pauses = 0
        while True:
            left = [server for server in servers if tries_left[server] > 0]
            if not left:
                raise LLMError(self._unreachable(chat, last))
            among = [server for server in left if server not in tried_this_round]
            if not among:
                time.sleep(self.backoff_s * 2**pauses)
                pauses += 1
                tried_this_round.clear()
                among = left
            with self.pool.slot(among) as server:
                address = endpoint(server.base, chat)
                payload, why = self._try(address, data)
            if payload is not None:
                self.pool.succeeded(server)
                return payload, address
            self.pool.failed(server)
            tries_left[server] -= 1
            last[server] = why
            tried_this_round.add(server)

    def _unreachable(self, chat: bool, last: dict[Endpoint, str]) -> str:
        tries = self.retries + 1
        plural = "try" if tries == 1 else "tries"
        servers: Sequence[Endpoint] = self.pool.endpoints
        if len(servers) == 1:
            address = endpoint(servers[0].base, chat)
            why = last[servers[0]]
            return f"could not reach the LLM server at {address}: {why} ({tries} {plural}); {_HINT}"
        said = "; ".join(f"{endpoint(s.base, chat)}: {last[s]}" for s in servers)
        return (
            f"could not reach any of the {len(servers)} LLM servers ({tries} {plural} each): {said}; "
            "start them or set [llm] url / --llm-url"
        )

    def _try(self, address: str, data: bytes) -> tuple[bytes | None, str]:
        """One try: (the answer, "") or (None, why another try may help); LLMError when it would not."""
        sockets: list[socket.socket] = []
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            _shut(sockets)

        watchdog = threading.Timer(self.timeout_s, expire)
        watchdog.daemon = True
        watchdog.start()
        opener = urllib.request.build_opener(_Handler(sockets), _TLSHandler(sockets))
        posted = urllib.request.Request(address, data=data, headers=self._headers, method="POST")
        try:
            with opener.open(posted, timeout=self.timeout_s) as answer:
                payload = bytes(answer.read(MAX_ANSWER_BYTES + 1))
                # What Content-Length announced but never came: a read of a given size ends
                # quietly at a closed connection instead of raising.
                missing = getattr(answer, "length", None) or 0
            if expired.is_set():  # the watchdog's shutdown reads as the end of the answer
                return None, "timed out"
            if len(payload) > MAX_ANSWER_BYTES:
                raise LLMError(
                    f"the LLM server at {address} sent an answer larger than "
                    f"{MAX_ANSWER_BYTES // 2**20} MiB; is that address an LLM server?"
                )
            if missing > 0:
                return None, f"the answer broke off after {len(payload)} of {len(payload) + missing} bytes"
            return payload, ""
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code} {one_line(str(error.reason))}".rstrip() + _detail(error)
            if error.code != 429 and error.code < 500:
                raise LLMError(f"the LLM server at {address} refused the request: {last}") from None
            return None, last
        # ValueError: a redirect to a malformed address; HTTPException: an answer that is not HTTP
        # or stops half-way. Both are transport failures like a reset connection.
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as error:
            return None, "timed out" if expired.is_set() else _reason(error)
        finally:
            watchdog.cancel()
            for sock in sockets:
                sock.close()


def _detail(error: urllib.error.HTTPError) -> str:
    """The start of an error answer's body, read within the try's time; "" when there is none."""
    try:
        text = one_line(error.read(300).decode("utf-8", "replace"))
    except (OSError, http.client.HTTPException, ValueError):
        return ""
    finally:
        error.close()
    return f": {text}" if text else ""
