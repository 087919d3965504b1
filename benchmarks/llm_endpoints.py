"""Several model servers behind one `--llm-url` (`crs.llm.endpoints`): throughput and how evenly the
requests are spread, against real gemma-3-270m servers (`python -m crs.llm.server`, one process
each) on this machine.

    python benchmarks/llm_endpoints.py                 # ~3 minutes on an idle 2-core machine
    python benchmarks/llm_endpoints.py --requests 16   # a smoke test

The same requests (short few-shot replies, temperature 0) are sent by `--clients` threads of one
process through `RemoteBackend` to: one server with one thread (the baseline), one server with all
the cores' threads, two servers with one thread each (`--llm-url A,B`), and two servers of which
one is down (a closed port). For each: requests/s, its ratio to the baseline measured in the same
run, the share of requests each server answered, and whether the words equal those of one
server with the same thread count (llama.cpp's words depend on its thread count). Also timed: taking
and giving back a request slot (the per-request cost of the spreading).

On 2 cores two servers cannot be faster than one using both cores: the point there is even use and
failover. With servers on separate machines (or GPUs), throughput adds up.

Writes benchmarks/results/llm_endpoints.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# The llm_backend benchmark's prompt (this script's folder is on sys.path when run).
from llm_backend import FEW_SHOT

from crs.llm.base import GenerationRequest, LLMError
from crs.llm.endpoints import EndpointPool, split_urls
from crs.llm.remote import RemoteBackend

GENRES = (
    "pop",
    "techno",
    "blues",
    "indie",
    "folk",
    "rap",
    "soul",
    "punk",
    "reggae",
    "disco",
    "grunge",
    "ska",
)


def requests(count: int) -> list[GenerationRequest]:
    out = []
    for n in range(count):
        genre, decision = GENRES[n % len(GENRES)], ("yes", "no")[(n // len(GENRES)) % 2]
        prompt = f"{FEW_SHOT}Question: Do you like {genre} music? Decision: {decision}\nReply:"
        out.append(GenerationRequest(prompt=prompt, max_tokens=24, seed=n))
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`python -m crs.llm.server` as its own process, as a model server of a cluster runs."""

    def __init__(self, threads: int, cache_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        command = [sys.executable, "-m", "crs.llm.server", "--port", str(self.port)]
        command += ["--threads", str(threads), "--cache-dir", str(cache_dir)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the model server on port {self.port} did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run(url: str, batch: list[GenerationRequest], clients: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as slots:
        for server in split_urls(url):  # warm up: a fresh server's first request pays the shared prefix
            with contextlib.suppress(LLMError):  # the server that is down
                RemoteBackend(server, timeout_s=120, retries=0, environ={}).generate(batch[0])
        backend = RemoteBackend(
            url, timeout_s=120, concurrency=concurrency, environ={}, slots_dir=Path(slots)
        )
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as threads:
            texts = list(threads.map(lambda request: backend.generate(request).text, batch))
        seconds = time.perf_counter() - started
        counts = backend.pool.counts()
    answered = sum(count.answered for count in counts)
    return {
        "seconds": round(seconds, 2),
        "requests_per_s": round(len(batch) / seconds, 3),
        "share": [round(count.answered / answered, 3) for count in counts],
        "failed_tries": [count.failed for count in counts],
        "texts": texts,
    }


def slot_overhead_us(rounds: int = 2000) -> float:
    with tempfile.TemporaryDirectory() as slots:
        pool = EndpointPool(["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"], 4, slots_dir=Path(slots))
        started = time.perf_counter()
        for _ in range(rounds):
            with pool.slot(pool.endpoints):
                pass
        return round(1e6 * (time.perf_counter() - started) / rounds, 1)


def main(argv: list[str] | None = None) -> int:
    from crs.llm.local import model_file
    from crs.scoring import default_cache_dir

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=48, help="requests per configuration (default 48)")
    parser.add_argument("--clients", type=int, default=4, help="client threads sending them (default 4)")
    parser.add_argument("--concurrency", type=int, default=2, help="[llm] concurrency (default 2)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    cache_dir = default_cache_dir()
    model_file(cache_dir)  # assembled once, before any server starts
    cores = os.cpu_count() or 2
    batch = requests(args.requests)
    load = [round(value, 2) for value in os.getloadavg()]
    rows: list[dict[str, Any]] = []

    def measure(label: str, threads: list[int], down: bool = False) -> dict[str, Any]:
        servers = [Server(count, cache_dir) for count in threads]
        try:
            urls = [server.url for server in servers]
            if down:
                urls.append(f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
            row = {"setup": label, "servers": len(urls), "threads": threads, "down": int(down)}
            row.update(run(",".join(urls), batch, args.clients, args.concurrency))
        finally:
            for server in servers:
                server.stop()
        rows.append(row)
        print(f"{label}: {row['requests_per_s']} requests/s, shares {row['share']}", file=sys.stderr)
        return row

    one = baseline = measure("1 server, 1 thread", [1])
    measure(f"1 server, {cores} threads", [cores])
    two = measure("2 servers, 1 thread each", [1, 1])
    down = measure("1 server of 1 thread + 1 down", [1], down=True)
    same_words = {
        "2 servers = 1 server (1 thread)": two["texts"] == one["texts"],
        "1 up + 1 down = 1 server (1 thread)": down["texts"] == one["texts"],
    }
    overhead = slot_overhead_us()

    print("| setup | requests/s | vs 1 server of 1 thread | share per server | failed tries |")
    print("|---|---|---|---|---|")
    for row in rows:
        ratio = row["requests_per_s"] / baseline["requests_per_s"]
        share = " / ".join(f"{s:.0%}" for s in row["share"])
        failed = sum(row["failed_tries"])
        print(f"| {row['setup']} | {row['requests_per_s']:.2f} | {ratio:.2f} | {share} | {failed} |")
    for label, same in same_words.items():
        print(f"same words, {label}: {same}")
    print(f"taking and giving back a request slot: {overhead} µs")

    report = {
        # Other work on the machine slows a 2-thread server most (its threads wait for each other).
        "machine": {"cpu_count": cores, "python": platform.python_version(), "load_average": load},
        "requests": args.requests,
        "clients": args.clients,
        "concurrency": args.concurrency,
        "rows": [{k: v for k, v in row.items() if k != "texts"} for row in rows],
        "ratio_to_baseline": {
            row["setup"]: round(row["requests_per_s"] / baseline["requests_per_s"], 3) for row in rows
        },
        "same_words": same_words,
        "slot_overhead_us": overhead,
        "median_reply_chars": statistics.median(len(text) for text in one["texts"]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "llm_endpoints.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.out / 'llm_endpoints.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
