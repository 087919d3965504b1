"""Benchmark of every question policy on the LastFM benchmark's valid split (issue 3).

For each dataset, answer model (exact, 10 % wrong answers, 20 % "don't know") and policy it runs
the whole valid split once and reports SR@5/10/15, AT and hDCG on the first 4,000 shuffled pairs
(conversation i is seeded by i alone, so they are exactly a `--limit 4000` run) and on the full
split, with the policy's decision time per turn and the time its training took. The first 4,000
pairs are never learned from (see policy/learning.py); the full split includes the tuning pairs
the learned policies were fitted on, so it is reported for completeness, not as out-of-sample.

    python benchmarks/policies.py            # everything (~15 minutes on 2 cores)
    python benchmarks/policies.py --quick    # 1,000 pairs per run, a smoke test

Writes benchmarks/results/policies.json and benchmarks/results/policies_<dataset>.png (success
rate by turn of every policy, one panel per answer model).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from crs.data import load_dataset
from crs.evaluation.metrics import compute_metrics
from crs.evaluation.report import format_table
from crs.evaluation.runner import RunSpec, evaluate
from crs.factory import policy_for_run

DEFAULT_RUNS = (
    "belief:bpr",
    "max_entropy:popularity",
    "max_entropy:bpr",
    "scpr_walk:bpr",
    "scpr_rl:bpr",
    "fact_tree:bpr",
)
ANSWER_MODELS = {
    "exact": {},
    "10% wrong": {"answer_noise": 0.1},
    "20% don't know": {"dont_know": 0.2},
}
SUBSET = 4000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["lastfm_star", "lastfm"])
    parser.add_argument("--runs", nargs="+", default=list(DEFAULT_RUNS), metavar="POLICY:SCORER")
    parser.add_argument("--answers", nargs="+", default=list(ANSWER_MODELS), choices=list(ANSWER_MODELS))
    parser.add_argument("--quick", action="store_true", help="1,000 pairs per run instead of the full split")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    limit = 1000 if args.quick else None

    rows: list[dict[str, object]] = []
    curves: dict[str, dict[str, dict[str, list[float]]]] = {}
    for dataset_name in args.datasets:
        dataset = load_dataset(dataset_name, args.data_dir)
        curves[dataset_name] = {answers: {} for answers in args.answers}
        for run in args.runs:
            policy_name, _, scorer = run.partition(":")
            base = RunSpec(dataset=dataset_name, policy=policy_name, scorer=scorer or "bpr")
            started = time.perf_counter()
            policy = policy_for_run(base, dataset)
            setup_seconds = time.perf_counter() - started
            trained = getattr(policy, "trained", None)
            train_seconds = trained.train_seconds if trained is not None else 0.0
            for answers in args.answers:
                spec = RunSpec(
                    dataset=dataset_name,
                    policy=policy_name,
                    scorer=scorer or "bpr",
                    limit=limit,
                    workers=args.workers,
                    **ANSWER_MODELS[answers],  # type: ignore[arg-type]
                )
                result = evaluate(spec, dataset, policy)
                result.raise_for_errors()
                curves[dataset_name][answers][run] = list(
                    compute_metrics([r.outcome for r in result.records[:SUBSET]]).success_by_turn
                )
                timing = {
                    "conversations_per_second": result.conversations_per_second,
                    "decision_ms_p50": result.decision_ms_p50,
                    "decision_ms_p95": result.decision_ms_p95,
                    "train_seconds": train_seconds,
                    "setup_seconds": setup_seconds,
                }
                subsets = [(f"first {SUBSET}", result.records[:SUBSET])]
                if len(result.records) > SUBSET:
                    subsets.append(("full", result.records))
                for label, records in subsets:
                    metrics = compute_metrics([r.outcome for r in records]).as_dict()
                    metrics.pop("success_by_turn")
                    rows.append(
                        {"dataset": dataset_name, "answers": answers, "pairs": label, "policy": run}
                        | metrics
                        | timing
                    )
                print(format_table(rows[-len(subsets) :], LABELS), file=sys.stderr, flush=True)
        plot_panels(curves[dataset_name], args.out / f"policies_{dataset_name}.png", dataset_name)

    ordered = sorted(rows, key=lambda r: (str(r["dataset"]), str(r["pairs"]) != f"first {SUBSET}"))
    print(format_table(ordered, LABELS))
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "workers": args.workers,
        "rows": rows,
        "success_by_turn_first_4000": curves,
    }
    (args.out / "policies.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.out / 'policies.json'}")
    return 0


LABELS = ("dataset", "answers", "pairs", "policy")


def plot_panels(curves: dict[str, dict[str, list[float]]], path: Path, dataset_name: str) -> None:
    """Success rate by turn, one panel per answer model, one line per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 4.2), dpi=110, sharey=True)
    axes = axes if len(curves) > 1 else [axes]
    for panel, (answers, runs) in zip(axes, curves.items(), strict=True):
        for label, curve in runs.items():
            panel.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label=label)
        panel.set_title(f"{dataset_name} valid (first {SUBSET}), {answers}")
        panel.set_xlabel("turn (t + 1, as counted by SR@k and AT)")
        panel.set_ylim(0, 1.02)
        panel.grid(alpha=0.3)
    axes[0].set_ylabel("success rate (cumulative)")
    axes[-1].legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
