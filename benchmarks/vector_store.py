"""Benchmark of the vector store at scale: chromadb embedded (PersistentClient) against a
`chroma run` server, with N random unit vectors of 384 dimensions (MiniLM's size).

For each mode: the vectors are added in batches (seeded, generated batch by batch, so N is not
held in memory twice), then `--queries` random unit query vectors are asked for their k=10
nearest (cosine, HNSW with chromadb's defaults); reported are the build time, the query p50/p95,
the disk size of the store, and the top-10 overlap with the exact answer. The baseline, measured
in the same run on the same vectors: the exact top 10 by one numpy matrix-vector product over the
in-memory vectors (what the retriever's default backend does).

Random vectors are the hardest case for an approximate index (every neighbour is nearly as far as
the next), so the overlap here is a floor, not what real text embeddings get.

    python benchmarks/vector_store.py --items 10000            # ~1 minute
    nice -n 10 python benchmarks/vector_store.py               # 1,000,000 vectors: hours on 2 cores

Writes benchmarks/results/vector_store.json (one entry per --items value, merged with the
entries already there).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from crs.retrieval.server import LocalChromaServer, http_client

DIM = 384
K = 10


def unit_vectors(seed: int, part: int, count: int) -> np.ndarray:
    rng = np.random.default_rng([seed, part])
    vectors = rng.standard_normal((count, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def batches(n_items: int, batch_size: int, seed: int) -> Iterator[tuple[int, np.ndarray]]:
    for part, start in enumerate(range(0, n_items, batch_size)):
        yield start, unit_vectors(seed, part, min(batch_size, n_items - start))


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def percentiles(seconds: list[float]) -> dict[str, float]:
    return {
        "p50_ms": float(np.percentile(seconds, 50)) * 1e3,
        "p95_ms": float(np.percentile(seconds, 95)) * 1e3,
    }


def exact_top(
    n_items: int, batch_size: int, seed: int, queries: np.ndarray
) -> tuple[list[set[int]], list[float]]:
    """The exact top K of every query, and the time of one whole-matrix product per query (the
    baseline): the vectors are held in memory once, as the retriever holds them."""
    matrix = np.empty((n_items, DIM), dtype=np.float32)
    for start, vectors in batches(n_items, batch_size, seed):
        matrix[start : start + len(vectors)] = vectors
    tops, seconds = [], []
    for query in queries:
        started = time.perf_counter()
        scores = np.einsum("ij,j->i", matrix, query)
        top = np.argpartition(-scores, K - 1)[:K]
        seconds.append(time.perf_counter() - started)
        tops.append({int(i) for i in top})
    return tops, seconds


def measure(
    client: Any,
    construction_ef: int,
    n_items: int,
    batch_size: int,
    seed: int,
    queries: np.ndarray,
    exact: list[set[int]],
) -> dict[str, Any]:
    metadata = {"hnsw:space": "cosine", "hnsw:construction_ef": construction_ef}
    collection = client.create_collection("bench", metadata=metadata, embedding_function=None)
    batch_size = min(batch_size, int(client.get_max_batch_size()))
    started = time.perf_counter()
    last_report = started
    for start, vectors in batches(n_items, batch_size, seed):
        collection.add(ids=[str(i) for i in range(start, start + len(vectors))], embeddings=vectors)
        if time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            rate = (start + len(vectors)) / (last_report - started)
            print(
                f"  added {start + len(vectors):,} of {n_items:,} ({rate:,.0f}/s)",
                file=sys.stderr,
                flush=True,
            )
    add_seconds = time.perf_counter() - started
    started = time.perf_counter()
    assert collection.count() == n_items
    count_seconds = time.perf_counter() - started
    # The first query after a build pays for the HNSW index being loaded / brought up to date.
    started = time.perf_counter()
    collection.query(query_embeddings=queries[:1], n_results=K, include=["distances"])
    first_query_seconds = time.perf_counter() - started
    seconds, overlap = [], []
    for query, truth in zip(queries, exact, strict=True):
        started = time.perf_counter()
        found = collection.query(query_embeddings=query[None, :], n_results=K, include=["distances"])
        seconds.append(time.perf_counter() - started)
        overlap.append(len(truth & {int(i) for i in found["ids"][0]}) / K)
    return {
        "add_seconds": add_seconds,
        "add_per_second": n_items / add_seconds,
        "count_seconds": count_seconds,
        "first_query_seconds": first_query_seconds,
        "query": percentiles(seconds),
        "top10_overlap_with_exact": float(np.mean(overlap)),
        "batch_size": batch_size,
        "construction_ef": construction_ef,
    }


def run(
    n_items: int,
    construction_ef: int,
    batch_size: int,
    n_queries: int,
    seed: int,
    modes: list[str],
    work: Path,
) -> dict[str, Any]:
    queries = unit_vectors(seed + 1, 0, n_queries)
    started = time.perf_counter()
    exact, exact_seconds = exact_top(n_items, batch_size, seed, queries)
    print(
        f"{n_items:,}: exact baseline in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True
    )
    result: dict[str, Any] = {"items": n_items, "dim": DIM, "k": K, "queries": n_queries, "modes": {}}
    result["modes"]["numpy exact (in memory)"] = {
        "query": percentiles(exact_seconds),
        "top10_overlap_with_exact": 1.0,
    }
    for mode in modes:
        folder = work / f"{mode}-{n_items}"
        shutil.rmtree(folder, ignore_errors=True)
        print(f"{n_items:,}: {mode} ...", file=sys.stderr, flush=True)
        if mode == "embedded":
            import chromadb
            from chromadb.config import Settings

            client = chromadb.PersistentClient(str(folder), settings=Settings(anonymized_telemetry=False))
            entry = measure(client, construction_ef, n_items, batch_size, seed, queries, exact)
            entry["disk_bytes"] = folder_size(folder)
        else:
            with LocalChromaServer(folder) as server:
                client = http_client(server.url)
                entry = measure(client, construction_ef, n_items, batch_size, seed, queries, exact)
                entry["disk_bytes"] = folder_size(folder)
        result["modes"][mode] = entry
        print(f"{n_items:,}: {mode}: {json.dumps(entry)}", file=sys.stderr, flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    return result


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| vectors | store | add s | adds/s | query p50 ms | query p95 ms | top-10 overlap with exact "
        "| disk MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for mode, entry in result["modes"].items():
            add = f"{entry['add_seconds']:.0f}" if "add_seconds" in entry else ""
            rate = f"{entry['add_per_second']:,.0f}" if "add_per_second" in entry else ""
            disk = f"{entry['disk_bytes'] / 1e6:,.0f}" if "disk_bytes" in entry else ""
            ef = entry.get("construction_ef", 100)
            label = mode if ef == 100 else f"{mode} (build ef {ef}, default 100)"
            lines.append(
                f"| {result['items']:,} | {label} | {add} | {rate} | {entry['query']['p50_ms']:.1f} | "
                f"{entry['query']['p95_ms']:.1f} | {entry['top10_overlap_with_exact']:.3f} | {disk} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--items", type=int, nargs="+", default=[1_000_000], help="vectors to store (several: one run each)"
    )
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--batch-size", type=int, default=5000, help="vectors per add (capped by chromadb's maximum)"
    )
    parser.add_argument("--modes", nargs="+", default=["embedded", "server"], choices=["embedded", "server"])
    parser.add_argument(
        "--construction-ef",
        type=int,
        default=100,
        help="HNSW ef at build time (chromadb's default 100; lower builds faster, a worse graph)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--work", type=Path, default=None, help="folder for the stores (default: a temporary one)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "vector_store.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = {}
    report["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    report.setdefault("runs", {})
    with tempfile.TemporaryDirectory(prefix="crs-vector-store-", dir=args.work) as work:
        for n_items in args.items:
            result = run(
                n_items,
                args.construction_ef,
                args.batch_size,
                args.queries,
                args.seed,
                args.modes,
                Path(work),
            )
            result["seed"] = args.seed
            label = str(n_items) if args.construction_ef == 100 else f"{n_items}-ef{args.construction_ef}"
            report["runs"][label] = result
            path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")  # after each size
    results = [report["runs"][key] for key in sorted(report["runs"], key=lambda k: (len(k), k))]
    print(table(results))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
