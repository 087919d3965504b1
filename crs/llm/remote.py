"""Any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server, `python -m crs.llm.server`,
a hosted API): `/v1/completions` for prompts, `/v1/chat/completions` for chat messages.

Only the standard library, so the core stays light. The API key is read from an environment
variable whose name is configured: the key itself never goes into a configuration file or a run
folder. Connection errors, timeouts, 429 and 5xx are retried with exponential backoff; anything
else fails at once with the server's own message.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping

from crs.llm.base import Generation, GenerationRequest, LLMError
from crs.llm.local import parse_response, request_body

DEFAULT_API_KEY_ENV = "CRS_LLM_API_KEY"
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
    return str(reason) or type(reason).__name__


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
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the LLM server url must start with http:// or https://, got {url!r}")
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
            shown = payload[:200].decode("utf-8", "replace")
            raise LLMError(
                f"the LLM server at {address} sent something that is not JSON: {shown!r}"
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
            http = urllib.request.Request(address, data=data, headers=self._headers, method="POST")
            try:
                with urllib.request.urlopen(http, timeout=self.timeout_s) as answer:
                    return bytes(answer.read())
            except urllib.error.HTTPError as error:
                detail = error.read()[:300].decode("utf-8", "replace").strip()
                last = f"HTTP {error.code} {error.reason}" + (f": {detail}" if detail else "")
                if error.code != 429 and error.code < 500:
                    raise LLMError(f"the LLM server at {address} refused the request: {last}") from None
            except (urllib.error.URLError, OSError) as error:  # refused, reset, DNS, timeout
                last = _reason(error)
        plural = "try" if tries == 1 else "tries"
        raise LLMError(f"could not reach the LLM server at {address}: {last} ({tries} {plural}); {_HINT}")
