"""Several OpenAI-compatible servers behind one remote backend (`crs.llm.endpoints`): requests are
spread evenly, at most `concurrency` are in flight to each server (across processes too), a server
that fails is passed over while another answers, and a bad list of addresses is one clear line.

The fast tests run against tiny real HTTP servers on 127.0.0.1 (one thread per request, counting
what they see); the `cluster` test runs an LLM-user evaluation against two real llama.cpp servers."""

from __future__ import annotations

import json
import multiprocessing
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crs.llm import CachedBackend, GenerationRequest, LLMError, RemoteBackend, make_backend
from crs.llm.endpoints import EndpointCount, urls_problem
from crs.settings import ConfigError, LLMSettings


@dataclass
class Seen:
    """What one tiny server saw: requests answered, and the most it held at once."""

    status: int = 200
    delay_s: float = 0.0
    answered: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(seen: Seen) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            with seen.lock:
                seen.in_flight += 1
                seen.most_in_flight = max(seen.most_in_flight, seen.in_flight)
            time.sleep(seen.delay_s)
            # The words depend on the request alone, as a model's do at temperature 0.
            text = f" reply to {body['prompt'][-12:]} with seed {body['seed']}"
            payload = json.dumps(
                {"choices": [{"text": text}], "usage": {"prompt_tokens": 3, "completion_tokens": 5}}
            ).encode()
            with seen.lock:
                seen.in_flight -= 1
                if seen.status == 200:
                    seen.answered += 1
            if seen.status != 200:
                payload = b"overloaded"
            self.send_response(seen.status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
            pass

    return Handler


@pytest.fixture
def servers() -> Iterator[tuple[list[str], list[Seen]]]:
    """Two tiny servers: their base URLs and what each saw."""
    started, urls, seen = [], [], []
    for _ in range(2):
        record = Seen()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(record))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        started.append(server)
        urls.append(f"http://127.0.0.1:{server.server_address[1]}/v1")
        seen.append(record)
    yield urls, seen
    for server in started:
        server.shutdown()
        server.server_close()


def closed_port() -> str:
    """An address nothing listens on (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/v1"


def ask(number: int) -> GenerationRequest:
    return GenerationRequest(prompt=f"Question number {number:04d}", max_tokens=8, seed=number)


def test_requests_alternate_over_the_servers_and_the_words_do_not_depend_on_which(
    servers: tuple[list[str], list[Seen]], tmp_path: Path
) -> None:
    urls, seen = servers
    pair = RemoteBackend(",".join(urls), retries=0, environ={}, slots_dir=tmp_path)
    one = RemoteBackend(urls[1], retries=0, environ={}, slots_dir=tmp_path)
    texts = [pair.generate(ask(n)).text for n in range(20)]
    assert [s.answered for s in seen] == [10, 10]  # one process, one request at a time: in turn
    assert texts == [one.generate(ask(n)).text for n in range(20)]
    assert pair.pool.counts() == tuple(EndpointCount(url, 10, 0) for url in urls)


def test_at_most_concurrency_requests_in_flight_to_each_server(
    servers: tuple[list[str], list[Seen]], tmp_path: Path
) -> None:
    urls, seen = servers
    for record in seen:
        record.delay_s = 0.05
    pair = RemoteBackend(",".join(urls), retries=0, concurrency=2, environ={}, slots_dir=tmp_path)
    with ThreadPoolExecutor(8) as threads:
        texts = list(threads.map(lambda n: pair.generate(ask(n)).text, range(32)))
    assert len(set(texts)) == 32
    assert [s.most_in_flight for s in seen] == [2, 2]  # the limit is reached and never passed
    assert sum(s.answered for s in seen) == 32 and min(s.answered for s in seen) >= 12


def _worker(url: str, slots_dir: str, first: int, out: Any) -> None:
    backend = RemoteBackend(url, retries=0, concurrency=1, environ={}, slots_dir=Path(slots_dir))
    for n in range(first, first + 6):
        backend.generate(ask(n))
    out.put([(c.url, c.answered) for c in backend.pool.counts()])


def test_the_limit_and_the_spreading_hold_across_processes(
    servers: tuple[list[str], list[Seen]], tmp_path: Path
) -> None:
    """Four forked workers (as `--workers 4` runs them), one slot per server: never two requests
    at once on a server, and the servers share the work."""
    urls, seen = servers
    for record in seen:
        record.delay_s = 0.03
    fork = multiprocessing.get_context("fork")
    out = fork.Queue()
    workers = [
        fork.Process(target=_worker, args=(",".join(urls), str(tmp_path), 100 * w, out)) for w in range(4)
    ]
    for worker in workers:
        worker.start()
    reports = [out.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
        assert worker.exitcode == 0
    assert [s.most_in_flight for s in seen] == [1, 1]
    assert sum(s.answered for s in seen) == 24 and min(s.answered for s in seen) >= 8
    assert sum(answered for report in reports for _, answered in report) == 24


def test_a_server_that_is_down_is_passed_over(servers: tuple[list[str], list[Seen]], tmp_path: Path) -> None:
    urls, seen = servers
    down = closed_port()
    pair = RemoteBackend(f"{down},{urls[0]}", retries=2, backoff_s=1.0, environ={}, slots_dir=tmp_path)
    started = time.perf_counter()
    for n in range(10):
        assert pair.generate(ask(n)).text.startswith(" reply to")
    assert time.perf_counter() - started < 0.9  # no backoff: the other server answered at once
    # The refused server is tried once, then cools down (5 s) while the other answers.
    assert pair.pool.counts() == (EndpointCount(down.rstrip("/"), 0, 1), EndpointCount(urls[0], 10, 0))
    assert seen[0].answered == 10


def test_a_failing_server_is_tried_again_after_its_cooldown(
    servers: tuple[list[str], list[Seen]], tmp_path: Path
) -> None:
    urls, seen = servers
    seen[0].status = 503
    pair = RemoteBackend(",".join(urls), retries=1, cooldown_s=0.2, environ={}, slots_dir=tmp_path)
    for n in range(4):
        pair.generate(ask(n))
    assert [c.failed for c in pair.pool.counts()] == [1, 0]  # 503 once, then passed over
    seen[0].status = 200  # it recovers
    time.sleep(0.25)
    for n in range(4, 10):
        pair.generate(ask(n))
    assert seen[0].answered > 0 and [c.failed for c in pair.pool.counts()] == [1, 0]


def test_every_server_down_is_one_line_naming_each(tmp_path: Path) -> None:
    first, second = closed_port(), closed_port()
    pair = RemoteBackend(f"{first},{second}", retries=2, backoff_s=0.05, environ={}, slots_dir=tmp_path)
    started = time.perf_counter()
    with pytest.raises(LLMError) as error:
        pair.generate(ask(1))
    # Three rounds of one try on each server, with the backoff between rounds (0.05 s, then 0.1 s).
    assert 0.15 <= time.perf_counter() - started < 2
    assert str(error.value) == (
        f"could not reach any of the 2 LLM servers (3 tries each): {first}/completions: connection "
        f"refused; {second}/completions: connection refused; start them or set [llm] url / --llm-url"
    )
    assert [c.failed for c in pair.pool.counts()] == [3, 3]


def test_the_cache_key_names_the_servers_as_a_set(
    servers: tuple[list[str], list[Seen]], tmp_path: Path
) -> None:
    urls, seen = servers
    cached = CachedBackend(RemoteBackend(",".join(urls), environ={}, slots_dir=tmp_path), tmp_path / "c")
    first = [cached.generate(ask(n)) for n in range(6)]
    swapped = RemoteBackend(f"{urls[1]}/,{urls[0]}", environ={}, slots_dir=tmp_path)
    again = [CachedBackend(swapped, tmp_path / "c").generate(ask(n)) for n in range(6)]
    assert all(a.cached for a in again) and [a.text for a in again] == [f.text for f in first]
    assert sum(s.answered for s in seen) == 6
    # One server keeps the name it always had: existing caches stay valid.
    assert RemoteBackend("http://127.0.0.1:9/v1/").name == "remote:default@http://127.0.0.1:9/v1"


@pytest.mark.parametrize(
    ("urls", "message"),
    [
        ("http://127.0.0.1:8080/v1,ftp://h/v1", "must start with http:// or https://, got 'ftp://h/v1'"),
        ("http://a:1/v1, http://b:99999", "url 'http://b:99999' is malformed"),
        ("http://a:1/v1,,http://b:2/v1", "has an empty entry"),
        ("http://a:1/v1,", "has an empty entry"),
        ("http://a:1,http://b:2/v1,http://a:1/v1/", "url 'http://a:1/v1/' is listed twice"),
    ],
)
def test_a_bad_list_is_refused_naming_the_address(urls: str, message: str) -> None:
    assert message in urls_problem(urls)
    with pytest.raises(ConfigError, match=r"^LLMSettings\.url: the LLM server .*" + re.escape(message)):
        LLMSettings(backend="remote", url=urls)
    with pytest.raises(ValueError, match=re.escape(message)):
        RemoteBackend(urls, environ={})
    assert urls_problem("http://a:1/v1, https://b/v1") == ""


def test_the_settings_take_a_list(servers: tuple[list[str], list[Seen]]) -> None:
    urls, _ = servers
    backend = make_backend(
        LLMSettings(backend="remote", url=" , ".join(urls), concurrency=3, cache=False), None
    )
    assert isinstance(backend, RemoteBackend) and backend.urls == tuple(urls)
    assert backend.pool.concurrency == 3
    with pytest.raises(ConfigError, match="concurrency"):
        LLMSettings(concurrency=0)


def test_the_cli_names_the_bad_address(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from crs.cli import main

    args = ["evaluate", "--simulator", "llm", "--llm-backend", "remote", "--limit", "1", "--quiet"]
    assert main([*args, "--llm-url", "http://127.0.0.1:9/v1,localhost:8080", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error:") and "'localhost:8080'" in error


# -- two real llama.cpp servers -------------------------------------------------------------------


def _tasks(base: str) -> int:
    """The id of the last task the server's single slot ran (it grows with every completion;
    a slot that has run none has no id)."""
    with urllib.request.urlopen(f"{base}/slots", timeout=10) as answer:
        return int(json.loads(answer.read())[0].get("id_task", -1))


@pytest.mark.cluster
def test_an_llm_user_evaluation_over_two_llama_cpp_servers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--llm-url A,B` against two real gemma-3-270m servers: both answer, and the conversations are
    exactly those of a run against one of them (same model, same settings, no disk cache)."""
    from crs.cli import main
    from crs.evaluation.records import ConversationRecord
    from crs.llm.server import start_server
    from crs.scoring import default_cache_dir

    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    # One thread each: llama.cpp's words depend on the thread count, so every server has the same.
    first, second = (start_server(port, default_cache_dir(), threads=1) for port in ports)
    try:
        bases = [str(first.listening_address), str(second.listening_address)]
        config = tmp_path / "llm.toml"
        config.write_text("[llm]\ncache = false\ntimeout_s = 60.0\n")
        common = ["evaluate", "--dataset", "movielens", "--simulator", "llm", "--limit", "2", "--quiet"]
        common += ["--llm-backend", "remote", "--config", str(config), "--fidelity-against", "none"]
        # Nothing to train first, and short conversations: the test is about who answers.
        common += ["--policy", "max_entropy", "--scorer", "popularity", "--max-turns", "6"]
        before = [_tasks(base) for base in bases]
        both = f"{bases[0]}/v1,{bases[1]}/v1"
        assert main([*common, "--llm-url", both, "--out", str(tmp_path / "two")]) == 0
        after = [_tasks(base) for base in bases]
        assert after[0] > before[0] and after[1] > before[1], (before, after)
        assert main([*common, "--llm-url", f"{bases[0]}/v1", "--out", str(tmp_path / "one")]) == 0
        capsys.readouterr()
    finally:
        del first, second

    def records(run: str) -> list[dict[str, Any]]:
        lines = (tmp_path / run / "transcripts.jsonl").read_text().splitlines()
        kept = [ConversationRecord.from_json(json.loads(line)).to_json(timings=False) for line in lines]
        return [{k: v for k, v in r.items() if k not in ("seconds", "llm_seconds")} for r in kept]

    two, one = records("two"), records("one")
    assert len(two) == 2 and any(turn.get("words") == "llm" for r in two for turn in r["turns"])
    assert two == one
