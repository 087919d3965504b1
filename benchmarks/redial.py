"""Recommending from real dialogues: the ReDial protocol on the `valid` split (300 dialogues carved
from the half the language rules were never tuned on; see crs/data/redial_dataset.py).

In one run, everything fitted on `train` (1,101 dialogues) only:
- baselines: popularity (train mentions); co-mention item-kNN (P(movie | movies named so far),
  from train dialogues); MovieLens item-kNN through the links; the text retriever alone (MiniLM
  cosine between the last messages and each movie's text);
- the full context ranker (crs/scoring/context_ranker.py, what `crs evaluate --dataset redial`
  runs), and the full ranker refitted with each signal removed (ablation);
- speed: ranking one sample as a chat would (read, embed, score all 6,924 movies; the seeker's
  earlier messages are embedded once, as a chat keeps them from their turn), p50/p95 over 200
  samples and per step, and the whole valid split as `crs evaluate` runs it (batched embedding).

Published numbers are on ReDial's test split with models trained on the full 10,006-dialogue
train split (ten times what is here); they are shown beside ours, not measured here.

Run: .venv/bin/python benchmarks/redial.py [--data-dir DIR]   (~6 minutes on 2 cores)
Writes benchmarks/results/redial.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from crs.data import load_dataset
from crs.data.location import resolve_data_dir
from crs.evaluation.redial_protocol import extract_all, summarise
from crs.evaluation.redial_run import evaluate_redial
from crs.evaluation.report import markdown_table
from crs.language.understanding import Understander
from crs.retrieval.retriever import open_retriever
from crs.scoring.context_ranker import (
    FEATURES,
    SIGNALS,
    ContextRanker,
    fit_on,
    rank_of,
    read_contexts,
    training_set,
)

ROOT = Path(__file__).resolve().parent.parent
TIE_BREAK = 1e-6  # a baseline's ties are broken by popularity, as any sensible kNN would
PUBLISHED = [
    # system, R@1, R@10, R@50, setting, source
    ("KBRD", 0.031, 0.150, 0.336, "all", "Chen et al. 2019"),
    ("KGSF", 0.039, 0.183, 0.378, "all", "Zhou et al. 2020"),
    ("UniCRS", 0.051, 0.224, 0.428, "all", "Wang et al. 2022 (reruns: ~.03/.17/.37)"),
    ("ChatGPT zero-shot (iEvaLM)", 0.037, 0.174, None, "all", "Wang et al. 2023"),
    ("GPT-4 zero-shot", None, 0.201, None, "new", "He et al. 2023"),
]
TARGETS = {"all R@10": 0.25, "all R@50": 0.45, "new R@10": 0.22}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "redial.json"))
    args = parser.parse_args(argv)
    started = time.perf_counter()

    dataset = load_dataset("redial", resolve_data_dir(args.data_dir))
    retriever = open_retriever(dataset.catalog, dataset.name)
    understander = Understander(dataset.catalog, popularity=dataset.popularity)
    ranker = ContextRanker(dataset, understander, retriever)  # type: ignore[arg-type]
    training = training_set(ranker)
    cache: dict[int, Any] = {}
    full = fit_on(training, cache=cache)
    ablations = {
        signal: fit_on(training, use=[f for f in FEATURES if f not in removed], cache=cache)
        for signal, removed in SIGNALS.items()
    }
    del cache

    # Valid features once; every model below is a weight vector over them.
    valid = extract_all(dataset.dialogues_of("valid"), dataset.catalog)  # type: ignore[attr-defined]
    evidences = read_contexts(
        understander, [(s.conversation_id, [(m.text, m.seeker) for m in s.context]) for s in valid]
    )
    queries = ranker.embed(evidences)
    features = [ranker.features(e, q) for e, q in zip(evidences, queries, strict=True)]

    def measure(weights: dict[str, float]) -> dict[str, Any]:
        vector = ranker.weight_vector(weights)
        ranks, ranks_new = [], []
        for sample, matrix in zip(valid, features, strict=True):
            scores = (matrix @ vector).astype(np.float64)
            ranks.append(rank_of(scores, sample.target))
            ranks_new.append(
                None if sample.repeat else rank_of(scores, sample.target, sorted(sample.mentioned_before))
            )
        return {"all": summarise(ranks), "new": summarise(ranks_new)}

    models: list[tuple[str, str, dict[str, float]]] = [
        ("popularity", "baseline", {"popularity": 1.0}),
        ("co-mention item-kNN", "baseline", {"co_mention": 1.0, "popularity": TIE_BREAK}),
        ("MovieLens item-kNN (links)", "baseline", {"movielens": 1.0, "popularity": TIE_BREAK}),
        ("text retriever alone", "baseline", {"text_recent": 1.0}),
        ("context ranker (full)", "full", full),
        *((f"without {signal}", "ablation", weights) for signal, weights in ablations.items()),
    ]
    rows = [
        {"model": name, "kind": kind, **measure(weights), "weights": weights}
        for name, kind, weights in models
    ]

    # Speed: one sample at a time as the chat would, then the whole split as `crs evaluate` does.
    # Each sample's messages are embedded afresh except the seeker's earlier ones, which a chat
    # keeps from the turn they were typed in (the valid pass above kept them all: forgotten here).
    ranker.weights = full
    ranker.forget_messages()
    steps: dict[str, list[float]] = {"read": [], "embed": [], "score": [], "total": []}
    for sample in valid[:200]:
        began = time.perf_counter()
        evidence = ranker.read((m.text, m.seeker) for m in sample.context)
        read = time.perf_counter()
        query = ranker.embed([evidence])[0]
        embedded = time.perf_counter()
        ranker.scores(evidence, query)
        done = time.perf_counter()
        for step, seconds in (
            ("read", read - began),
            ("embed", embedded - read),
            ("score", done - embedded),
            ("total", done - began),
        ):
            steps[step].append(1000 * seconds)
    split_started = time.perf_counter()
    run = evaluate_redial(ranker, dataset, "valid")  # type: ignore[arg-type]
    split_seconds = time.perf_counter() - split_started
    assert run.metrics["all"] == rows[4]["all"], "crs evaluate and the benchmark must agree"

    result = {
        "split": "valid",
        "dialogues": {
            "train": len(dataset.dialogues_of("train")),
            "valid": len(dataset.dialogues_of("valid")),
        },  # type: ignore[attr-defined]
        "samples": len(valid),
        "repeats": sum(s.repeat for s in valid),
        "coverage": dict(dataset.coverage),  # type: ignore[attr-defined]
        "rows": rows,
        "published": [
            {"system": s, "R@1": r1, "R@10": r10, "R@50": r50, "setting": setting, "source": source}
            for s, r1, r10, r50, setting, source in PUBLISHED
        ],
        "targets": TARGETS,
        "speed": {
            "one_sample_ms_p50": round(float(np.percentile(steps["total"], 50)), 1),
            "one_sample_ms_p95": round(float(np.percentile(steps["total"], 95)), 1),
            "steps_ms_p50_p95": {
                step: [round(float(np.percentile(ms, q)), 1) for q in (50, 95)] for step, ms in steps.items()
            },
            "valid_split_seconds": round(split_seconds, 1),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    print(
        markdown_table(
            ["model", "all R@1", "all R@10", "all R@50", "all MRR", "new R@10", "new R@50"],
            [
                [
                    r["model"],
                    cell(r["all"]["R@1"]),
                    cell(r["all"]["R@10"]),
                    cell(r["all"]["R@50"]),
                    cell(r["all"]["MRR"]),
                    cell(r["new"]["R@10"]),
                    cell(r["new"]["R@50"]),
                ]
                for r in rows
            ],
        )
    )
    print(f"\nvalid: {len(valid)} samples ({result['repeats']} repeats); speed: {result['speed']}")
    print(f"wrote {args.out} in {result['seconds']} s")


if __name__ == "__main__":
    main()
