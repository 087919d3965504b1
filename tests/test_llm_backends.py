"""The LLM backends with the real gemma-3-270m: local in process, remote against a real server on
127.0.0.1, and the disk cache. Only the retry and error paths use a tiny stdlib HTTP server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crs.llm import (
    CachedBackend,
    GenerationRequest,
    LLMBackend,
    LLMError,
    LocalBackend,
    Message,
    RemoteBackend,
    make_backend,
    request_key,
)
from crs.llm.local import model_file
from crs.scoring import default_cache_dir
from crs.settings import ConfigError, LLMSettings

FEW_SHOT = """Turn a decision into a short, natural reply from a music fan.
Question: Do you like jazz? Decision: yes
Reply: Yes, I love jazz, especially late at night.
Question: Are you looking for 80s music? Decision: no
Reply: No, not really, I'd rather have something newer.
Question: Do you like heavy metal? Decision: yes
Reply: Yes, heavy metal is great, the louder the better.
Question: Do you want something acoustic? Decision: no
Reply: No, acoustic stuff is a bit too quiet for me.
"""


def ask(question: str, decision: str, **fields: Any) -> GenerationRequest:
    prompt = f"{FEW_SHOT}Question: {question} Decision: {decision}\nReply:"
    return GenerationRequest(prompt=prompt, max_tokens=24, **fields)


@pytest.fixture(scope="module")
def local() -> LocalBackend:
    backend = LocalBackend(default_cache_dir(), threads=2)
    backend.load()
    return backend


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- local ----------------------------------------------------------------------------------------


def test_model_file_is_reassembled_when_the_wrong_size(tmp_path: Path) -> None:
    target = model_file(tmp_path)
    size = target.stat().st_size
    target.write_bytes(b"not a model")
    assert model_file(tmp_path).stat().st_size == size
    assert [p.name for p in (tmp_path / "llm").iterdir()] == [target.name]  # no temporary left


def test_local_generation_is_deterministic_and_independent_of_the_prompt_cache(local: LocalBackend) -> None:
    request = ask("Do you like pop?", "yes")
    first = local.generate(request)
    local.generate(ask("Do you like techno?", "no"))  # leaves another prompt in llama.cpp's cache
    local.generate(GenerationRequest(prompt="Unrelated text that shares no prefix.", max_tokens=4))
    again = local.generate(request)
    assert first.text == again.text and first.text.strip()
    assert first.prompt_tokens > 100 and 0 < first.completion_tokens <= 24
    assert "\n" not in first.text  # the default stop


def test_fresh_requests_are_exact_too(local: LocalBackend) -> None:
    """A `fresh` request (prompts that share little, evaluated from scratch in batches by a second
    copy of the model) gives the same words whatever ran before it, sampled or not."""
    request = replace(ask("Do you like soul?", "no", temperature=0.8, seed=5), fresh=True)
    first = local.generate(request)
    local.generate(replace(ask("Do you like metal?", "yes", temperature=0.8, seed=9), fresh=True))
    local.generate(ask("Do you like soul?", "no", temperature=0.8, seed=5))  # the other copy
    assert local.generate(request).text == first.text and first.text.strip()


def test_local_seeded_sampling_repeats_for_the_same_seed(local: LocalBackend) -> None:
    texts = {
        seed: local.generate(ask("Do you like folk?", "no", temperature=1.0, seed=seed)).text
        for seed in (1, 2, 3)
    }
    assert local.generate(ask("Do you like folk?", "no", temperature=1.0, seed=2)).text == texts[2]
    assert len(set(texts.values())) > 1  # the seed matters


def test_local_honours_max_tokens_and_stop(local: LocalBackend) -> None:
    short = local.generate(GenerationRequest(prompt="One, two, three, four,", max_tokens=3, stop=()))
    assert short.completion_tokens == 3
    stopped = local.generate(GenerationRequest(prompt="One, two, three, four,", max_tokens=20, stop=(",",)))
    assert "," not in stopped.text


def test_local_chat_messages(local: LocalBackend) -> None:
    request = GenerationRequest(
        messages=(Message("system", "You are a music fan."), Message("user", "Do you like jazz?")),
        max_tokens=12,
    )
    first = local.generate(request)
    assert first.text.strip() != "" and first.prompt_tokens > 5 and first.completion_tokens > 0
    assert local.generate(request).text == first.text


# -- cache ----------------------------------------------------------------------------------------


def test_cache_hit_returns_the_same_text_fast(local: LocalBackend, tmp_path: Path) -> None:
    cached = CachedBackend(local, tmp_path)
    request = ask("Do you like blues?", "yes")
    first = cached.generate(request)
    hit = cached.generate(request)
    assert not first.cached and hit.cached
    assert (hit.text, hit.prompt_tokens, hit.completion_tokens) == (
        first.text,
        first.prompt_tokens,
        first.completion_tokens,
    )
    assert hit.seconds < 0.05
    assert cached.name == local.name


def test_corrupt_cache_entry_is_regenerated(local: LocalBackend, tmp_path: Path) -> None:
    cached = CachedBackend(local, tmp_path)
    request = ask("Do you like indie?", "no")
    first = cached.generate(request)
    path = cached.path(request)
    for garbage in ("{not json", '{"format": 1, "text": 3}', ""):
        path.write_text(garbage, encoding="utf-8")
        again = cached.generate(request)
        assert not again.cached and again.text == first.text
        assert json.loads(path.read_text(encoding="utf-8"))["text"] == first.text


def test_cache_key_covers_backend_and_every_field() -> None:
    base = ask("Do you like rap?", "no")
    keys = {
        request_key("a", base),
        request_key("b", base),
        request_key("a", ask("Do you like rap?", "no", seed=1)),
        request_key("a", ask("Do you like rap?", "no", temperature=0.5)),
        request_key("a", GenerationRequest(prompt=base.prompt, max_tokens=23)),
        request_key("a", GenerationRequest(prompt=base.prompt, max_tokens=24, stop=("\n", "."))),
        request_key("a", replace(base, fresh=True)),
    }
    assert len(keys) == 7
    assert request_key("a", base) == request_key("a", ask("Do you like rap?", "no"))


def test_make_backend_from_settings(tmp_path: Path) -> None:
    backend = make_backend(LLMSettings(), tmp_path)
    assert isinstance(backend, CachedBackend) and isinstance(backend.inner, LocalBackend)
    assert backend.folder == tmp_path / "llm" / "responses"
    remote = make_backend(LLMSettings(backend="remote", url="http://127.0.0.1:9/v1", cache=False), tmp_path)
    # LLMBackend is a runtime-checkable protocol: this checks RemoteBackend has its members.
    assert isinstance(remote, RemoteBackend) and isinstance(remote, LLMBackend)
    with pytest.raises(ConfigError, match="unknown value 'gpt'"):
        LLMSettings(backend="gpt")


# -- remote, against the real model ---------------------------------------------------------------


@pytest.fixture(scope="module")
def gemma_server() -> Iterator[str]:
    from crs.llm.server import start_server

    server = start_server(free_port(), default_cache_dir())
    yield str(server.listening_address)
    del server


def test_remote_backend_against_a_real_server(gemma_server: str, local: LocalBackend) -> None:
    assert gemma_server.startswith("http://127.0.0.1:")
    remote = RemoteBackend(gemma_server + "/v1", model="gemma-3-270m", timeout_s=30)
    request = ask("Do you like pop?", "yes")
    answer = remote.generate(request)
    # The server is built with the local backend's settings: the same words for the same request.
    assert answer.text == local.generate(request).text
    assert answer.prompt_tokens > 100 and answer.completion_tokens > 0
    chat = GenerationRequest(messages=(Message("user", "Do you like jazz?"),), max_tokens=8)
    assert remote.generate(chat).text == local.generate(chat).text
    assert RemoteBackend(gemma_server).generate(request).text == answer.text  # base URL without /v1


def test_unreachable_server_fails_fast_with_a_clear_message() -> None:
    remote = RemoteBackend("http://127.0.0.1:9/v1", retries=2, backoff_s=0.05, timeout_s=2)
    started = time.perf_counter()
    with pytest.raises(LLMError) as error:
        remote.generate(ask("Do you like pop?", "yes"))
    assert time.perf_counter() - started < 3
    assert str(error.value) == (
        "could not reach the LLM server at http://127.0.0.1:9/v1/completions: connection refused (3 tries); "
        "start it or set [llm] url / --llm-url"
    )


# -- remote, retries and bad answers (a tiny scripted server) -------------------------------------


class Scripted(BaseHTTPRequestHandler):
    """Answers POSTs from `script` (status, body) in turn; records paths, headers and bodies."""

    script: list[tuple[int, bytes]] = []
    seen: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        type(self).seen.append((self.path, dict(self.headers), body))
        status, payload = type(self).script.pop(0) if type(self).script else (500, b"script exhausted")
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def scripted() -> Iterator[str]:
    Scripted.script, Scripted.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


OK = json.dumps(
    {"choices": [{"text": " Yes, sure."}], "usage": {"prompt_tokens": 7, "completion_tokens": 4}}
).encode()


def test_retries_with_backoff_recover_from_503(scripted: str) -> None:
    Scripted.script = [(503, b"busy"), (503, b"busy"), (200, OK)]
    remote = RemoteBackend(
        scripted, model="m", retries=2, backoff_s=0.1, environ={"CRS_LLM_API_KEY": "secret"}
    )
    started = time.perf_counter()
    answer = remote.generate(ask("Do you like pop?", "yes", seed=5, temperature=0.3))
    assert time.perf_counter() - started >= 0.3  # backoff 0.1 s, then 0.2 s
    assert (answer.text, answer.prompt_tokens, answer.completion_tokens) == (" Yes, sure.", 7, 4)
    assert len(Scripted.seen) == 3
    path, headers, body = Scripted.seen[-1]
    assert path == "/v1/completions" and headers["Authorization"] == "Bearer secret"
    assert (body["seed"], body["temperature"], body["model"], body["stop"]) == (5, 0.3, "m", ["\n"])


def test_503_until_out_of_tries_and_no_key_no_header(scripted: str) -> None:
    Scripted.script = [(503, b"busy")] * 2
    remote = RemoteBackend(scripted, retries=1, backoff_s=0.01, environ={})
    with pytest.raises(LLMError, match=r"HTTP 503 .*busy \(2 tries\); start it or set \[llm\] url"):
        remote.generate(GenerationRequest(messages=(Message("user", "hi"),)))
    assert Scripted.seen[0][0] == "/v1/chat/completions"
    assert "Authorization" not in Scripted.seen[0][1]


@pytest.mark.parametrize(
    ("status", "payload", "match"),
    [
        (400, b'{"error": "prompt too long"}', "refused the request: HTTP 400"),
        (200, b"<html>not json</html>", "not JSON"),
        (200, b'{"choices": []}', "without choices"),
        (200, b'{"error": {"message": "model not loaded"}}', "model not loaded"),
    ],
)
def test_bad_answers_give_clear_errors(scripted: str, status: int, payload: bytes, match: str) -> None:
    Scripted.script = [(status, payload)]
    with pytest.raises(LLMError, match=match):
        RemoteBackend(scripted, retries=2, backoff_s=0.01).generate(ask("Do you like pop?", "yes"))
    assert len(Scripted.seen) == 1  # none of these is retried
