"""Benchmark of the free-text retriever on the first turn of simulated conversations.

For the first 1,000 shuffled valid pairs of each dataset (`crs.protocol.target_pairs`),
the user opens with TEXT instead of an attribute id: 1-3 of the target's attribute names in a
template a person might use ("I'm in the mood for something funny and 1990s"), seeded per pair,
never the title. Methods ranked over the whole catalog:

- popularity: the opening is ignored;
- text: cosine of the opening to each item's embedding (`Retriever.scores`);
- attributes: the opening mapped to its 3 nearest attribute names, items scored by the summed
  similarity of the ones they have, ties broken by popularity (the "attribute route");
- bpr: the BPR scorer's scores for the user, the opening ignored;
- text+bpr@T: the BPR scores, standardised per user (their raw scale is arbitrary), as logits plus
  `text_log_likelihood(text, T)`.

Caveat: the openings use the catalog's own attribute names, which flatters the attribute route
(its nearest attribute is often an exact match); real users paraphrase. T is swept on this same
valid split, so the best T is optimistic. Also timed: a fresh index build (in a temporary folder),
reopening it, and query latency p50/p95 for the numpy and chromadb backends, whole catalog and a
10% candidate subset.

    python benchmarks/retrieval.py                  # both datasets, ~5 minutes on 2 cores
    python benchmarks/retrieval.py --limit 200      # a smoke test

Writes benchmarks/results/retrieval.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# Entry point, not library: make sure nothing tries the network for the packaged model.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from crs.data import Dataset, load_dataset  # noqa: E402
from crs.protocol import target_pairs  # noqa: E402
from crs.retrieval import MiniLmEncoder, Retriever, open_retriever  # noqa: E402
from crs.scoring import make_scorer  # noqa: E402

TEMPLATES = {
    1: ("I'm in the mood for something {0}", "anything {0}?", "I'd like some {0}"),
    2: ("I'm in the mood for something {0} and {1}", "looking for {0}, maybe {1}", "{0} and {1} please"),
    3: ("I'm in the mood for something {0}, {1} and {2}", "something {0} with {1} and a bit of {2}"),
}
TEMPERATURES = (0.02, 0.05, 0.1, 0.2)
NEAREST = 3


def opening(dataset: Dataset, item: int, seed: int, index: int) -> str:
    rng = np.random.default_rng([seed, index])
    attributes = dataset.catalog.items[item].attributes
    count = int(rng.integers(1, min(3, len(attributes)) + 1))
    chosen = rng.choice(np.asarray(attributes), size=count, replace=False)
    names = [dataset.catalog.attributes[int(a)].name for a in chosen]
    templates = TEMPLATES[count]
    return templates[int(rng.integers(len(templates)))].format(*names)


def rank_of(scores: np.ndarray, target: int) -> float:
    """1-based rank of the target; ties count half (neither optimistic nor pessimistic)."""
    greater = int((scores > scores[target]).sum())
    ties = int((scores == scores[target]).sum()) - 1
    return 1.0 + greater + ties / 2.0


def log_softmax(x: np.ndarray) -> np.ndarray:
    top = x.max()
    return x - (top + np.log(np.exp(x - top).sum()))


def attribute_route(retriever: Retriever, text: str, popularity: np.ndarray) -> np.ndarray:
    index = retriever.catalog.index
    scores = np.zeros(retriever.catalog.n_items)
    for attribute, similarity in retriever.nearest_attributes(text, NEAREST):
        items = index.attribute_items[
            index.attribute_pointers[attribute] : index.attribute_pointers[attribute + 1]
        ]
        scores[items] += similarity
    # Popularity only orders items with the same matched similarity (it is scaled below 1e-3).
    return scores + 1e-3 * popularity / (popularity.max() + 1.0)


def percentiles(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": float(np.percentile(values, 50)) * 1e3,
        "p95_ms": float(np.percentile(values, 95)) * 1e3,
    }


def measure_dataset(
    name: str, data_dir: str | None, limit: int, seed: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    dataset = load_dataset(name, data_dir)
    encoder = MiniLmEncoder()
    with tempfile.TemporaryDirectory(prefix="crs-retrieval-") as folder:
        started = time.perf_counter()
        open_retriever(dataset.catalog, name, Path(folder), encoder)
        build_seconds = time.perf_counter() - started  # includes embedding the attribute names
        started = time.perf_counter()
        retriever = open_retriever(dataset.catalog, name, Path(folder), encoder)
        open_seconds = time.perf_counter() - started
        assert retriever.rebuilt is None, retriever.rebuilt
        bpr = make_scorer("bpr", dataset)
        popularity = np.asarray(dataset.popularity, dtype=np.float64)
        pairs = target_pairs(dataset, "valid", limit)
        methods = ["popularity", "bpr", "text", "attributes", *(f"text+bpr@{t}" for t in TEMPERATURES)]
        ranks: dict[str, list[float]] = {m: [] for m in methods}
        texts = []
        for i, (user, item) in enumerate(pairs):
            target = int(item)
            text = opening(dataset, target, seed, i)
            texts.append(text)
            text_scores = retriever.scores(text)
            ranks["popularity"].append(rank_of(popularity, target))
            ranks["text"].append(rank_of(text_scores, target))
            ranks["attributes"].append(rank_of(attribute_route(retriever, text, popularity), target))
            collaborative = bpr.scores(user)
            ranks["bpr"].append(rank_of(collaborative, target))
            prior = (collaborative - collaborative.mean()) / (collaborative.std() + 1e-12)
            for t in TEMPERATURES:
                # Same as prior + retriever.text_log_likelihood(text, t), without embedding again.
                ranks[f"text+bpr@{t}"].append(rank_of(prior + log_softmax(text_scores / t), target))
        timings = time_queries(retriever, texts[:200], seed)
        collection_items = retriever.index.collection.count()
    rows = []
    for method in methods:
        r = np.asarray(ranks[method])
        rows.append(
            {
                "dataset": name,
                "method": method,
                "pairs": len(r),
                "mean_rank": float(r.mean()),
                "median_rank": float(np.median(r)),
                "recall@10": float((r <= 10).mean()),
                "recall@100": float((r <= 100).mean()),
                "mrr": float((1.0 / r).mean()),
            }
        )
    timing = {
        "dataset": name,
        "items": dataset.catalog.n_items,
        "attributes": dataset.catalog.n_attributes,
        "collection_items": collection_items,
        "build_seconds": build_seconds,
        "open_seconds": open_seconds,
        "example_openings": texts[:5],
        **timings,
    }
    return rows, timing


def time_queries(retriever: Retriever, texts: list[str], seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    n = retriever.catalog.n_items
    subset = np.sort(rng.choice(n, size=max(1, n // 10), replace=False))
    for text in texts[:5]:
        retriever.rank(text, k=10, backend="chroma")  # warm-up: first queries load the HNSW index
    results: dict[str, Any] = {}
    cases: list[tuple[str, Any]] = [
        ("embed", lambda t: retriever.embed(t)),
        ("rank_numpy_all", lambda t: retriever.rank(t, k=10, backend="numpy")),
        ("rank_chroma_all", lambda t: retriever.rank(t, k=10, backend="chroma")),
        ("rank_numpy_10pct", lambda t: retriever.rank(t, subset, k=10, backend="numpy")),
        ("rank_chroma_10pct", lambda t: retriever.rank(t, subset, k=10, backend="chroma")),
    ]
    for label, call in cases:
        seconds = []
        for text in texts:
            started = time.perf_counter()
            call(text)
            seconds.append(time.perf_counter() - started)
        results[label] = percentiles(seconds)
    # Exactness of the approximate index against the exact product, whole catalog, top 10.
    overlap = [
        len(
            {i for i, _ in retriever.rank(t, k=10, backend="chroma")}
            & {i for i, _ in retriever.rank(t, k=10)}
        )
        / 10
        for t in texts
    ]
    results["chroma_top10_overlap_with_exact"] = float(np.mean(overlap))
    return results


def format_rows(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    lines = [[title for _, title in columns]]
    for row in rows:
        lines.append(
            [
                fmt.format(row[key]) if fmt else str(row[key])
                for (key, _), fmt in zip(columns, _formats(columns), strict=True)
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    rendered = [
        "| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) + " |"
        for line in lines
    ]
    rendered.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(rendered)


def _formats(columns: list[tuple[str, str]]) -> list[str]:
    return [
        ""
        if key in ("dataset", "method", "pairs")
        else "{:.3f}"
        if key in ("recall@10", "recall@100", "mrr")
        else "{:.1f}"
        for key, _ in columns
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["movielens", "lastfm_star"])
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    timings: list[dict[str, Any]] = []
    for name in args.datasets:
        dataset_rows, timing = measure_dataset(name, args.data_dir, args.limit, args.seed)
        rows += dataset_rows
        timings.append(timing)
        print(f"{name}: done", file=sys.stderr)
    print(
        format_rows(
            rows,
            [
                ("dataset", "dataset"),
                ("method", "method"),
                ("pairs", "pairs"),
                ("mean_rank", "mean rank"),
                ("median_rank", "median rank"),
                ("recall@10", "R@10"),
                ("recall@100", "R@100"),
                ("mrr", "MRR"),
            ],
        )
    )
    print()
    for t in timings:
        print(
            f"{t['dataset']}: {t['items']} items, build {t['build_seconds']:.1f} s, "
            f"open {t['open_seconds']:.2f} s; "
            f"query p50/p95 ms: embed {t['embed']['p50_ms']:.1f}/{t['embed']['p95_ms']:.1f}, "
            f"numpy all {t['rank_numpy_all']['p50_ms']:.1f}/{t['rank_numpy_all']['p95_ms']:.1f}, "
            f"chroma all {t['rank_chroma_all']['p50_ms']:.1f}/{t['rank_chroma_all']['p95_ms']:.1f}, "
            f"numpy 10% {t['rank_numpy_10pct']['p50_ms']:.1f}/{t['rank_numpy_10pct']['p95_ms']:.1f}, "
            f"chroma 10% {t['rank_chroma_10pct']['p50_ms']:.1f}/{t['rank_chroma_10pct']['p95_ms']:.1f}; "
            f"chroma top-10 overlap with exact {t['chroma_top10_overlap_with_exact']:.3f}"
        )
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "limit": args.limit,
        "seed": args.seed,
        "rows": rows,
        "timings": timings,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "retrieval.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.out / 'retrieval.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
