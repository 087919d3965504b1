"""Any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server, `python -m crs.llm.server`,
a hosted API): `/v1/completions` for prompts, `/v1/chat/completions` for chat messages.

Only the standard library, so the core stays light. The API key is read from an environment
variable whose name is configured: the key itself never goes into a configuration file or a run
folder. Connection errors (an answer that breaks off or is not HTTP included), timeouts, 429 and 5xx
are retried with exponential backoff; anything else fails at once with the server's own message.
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
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from crs.llm.base import Generation, GenerationRequest, LLMError, one_line
from crs.llm.local import parse_response, request_body

DEFAULT_API_KEY_ENV = "CRS_LLM_API_KEY"
# Far above any completion: a larger answer is not one, and reading it all could exhaust memory.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
_HINT = "start it or set [llm] url / --llm-url"


def endpoint(base_url: str, chat: bool) -> str:
    """`http://host:port` or `http://host:port/v1` (with or without a final slash) -> the endpoint."""
    base = base_url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    return base + ("/chat/completions" if chat else "/completions")


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


class RemoteBackend:
    """An OpenAI-compatible server at `url`. `model` is sent as the request's model name."""

    def __init__(
        self,
        url: str,
        model: str = "",
        api_key_env: str = DEFAULT_API_KEY_ENV,
        timeout_s: float = 60.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        problem = url_problem(url)
        if problem:
            raise ValueError(problem)
        if retries < 0 or timeout_s <= 0:
            raise ValueError(f"need retries >= 0 and timeout_s > 0, got {retries} and {timeout_s}")
        self.url = url
        self.model = model
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.name = f"remote:{model or 'default'}@{url.rstrip('/')}"
        key = (os.environ if environ is None else environ).get(api_key_env, "") if api_key_env else ""
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"

    def generate(self, request: GenerationRequest) -> Generation:
        chat = request.prompt is None
        address = endpoint(self.url, chat)
        body = request_body(request)
        if self.model:
            body["model"] = self.model
        data = json.dumps(body).encode("utf-8")
        started = time.perf_counter()
        payload = self._post(address, data)
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

    def _post(self, address: str, data: bytes) -> bytes:
        tries = self.retries + 1
        last = ""
        for attempt in range(tries):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            payload, last = self._try(address, data)
            if payload is not None:
                return payload
        plural = "try" if tries == 1 else "tries"
        raise LLMError(f"could not reach the LLM server at {address}: {last} ({tries} {plural}); {_HINT}")

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
