"""Benchmark of the baseline policies on the LastFM benchmark's valid split.

For each dataset and policy it runs the whole valid split once and reports SR@5/10/15, AT and
hDCG on the first 4,000 shuffled pairs (conversation i is seeded by i alone, so the first 4,000
of the full run are exactly a `--limit 4000` run) and on the full split, with conversations per
second and the policy's decision time per turn. It then times max-entropy on lastfm_star again
with two workers, in the same process, to report the parallel speed-up as a ratio.

    python benchmarks/baselines.py                 # everything (a few minutes on 2 cores)
    python benchmarks/baselines.py --quick         # 1,000 pairs per dataset, for a smoke test

Writes benchmarks/results/baselines.json and a success-by-turn plot per dataset.
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
from crs.evaluation.report import format_table, plot_success_by_turn
from crs.evaluation.runner import RunSpec, evaluate
from crs.factory import policy_for_run

DEFAULT_RUNS = ("random:popularity", "max_entropy:popularity", "max_entropy:bpr", "scpr_walk:bpr")
SUBSET = 4000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["lastfm", "lastfm_star"])
    parser.add_argument("--runs", nargs="+", default=list(DEFAULT_RUNS), metavar="POLICY:SCORER")
    parser.add_argument(
        "--quick", action="store_true", help="1,000 pairs per dataset instead of the full split"
    )
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    limit = 1000 if args.quick else None

    rows: list[dict[str, object]] = []
    for dataset_name in args.datasets:
        dataset = load_dataset(dataset_name, args.data_dir)
        curves: dict[str, list[float]] = {}
        for run in args.runs:
            policy_name, _, scorer = run.partition(":")
            spec = RunSpec(
                dataset=dataset_name, policy=policy_name, scorer=scorer or "popularity", limit=limit
            )
            started = time.perf_counter()
            policy = policy_for_run(spec, dataset)
            setup_seconds = time.perf_counter() - started
            result = evaluate(spec, dataset, policy)
            result.raise_for_errors()
            curves[run] = list(result.metrics.success_by_turn)
            timing = {
                "conversations_per_second": result.conversations_per_second,
                "decision_ms_p50": result.decision_ms_p50,
                "decision_ms_p95": result.decision_ms_p95,
                "setup_seconds": setup_seconds,
            }
            subsets = [(f"first {SUBSET}", result.records[:SUBSET])]
            if len(result.records) > SUBSET:
                subsets.append(("full", result.records))
            for label, records in subsets:
                metrics = compute_metrics([r.outcome for r in records]).as_dict()
                metrics.pop("success_by_turn")
                rows.append({"dataset": dataset_name, "pairs": label, "policy": run, **metrics, **timing})
            print(format_table(rows[-len(subsets) :], ("dataset", "pairs", "policy")), file=sys.stderr)
        plot_success_by_turn(
            curves,
            args.out / f"success_by_turn_{dataset_name}.png",
            f"{dataset_name} valid, {'first 1,000' if limit else 'full split'}",
        )

    scaling = measure_worker_scaling(args.data_dir, limit or SUBSET)
    table = format_table(rows, ("dataset", "pairs", "policy"))
    print(table)
    print(
        f"\nmax_entropy on lastfm_star, {scaling['conversations']} conversations: "
        f"1 worker {scaling['workers_1']:.0f} conv/s, 2 workers {scaling['workers_2']:.0f} conv/s "
        f"(ratio {scaling['ratio']:.2f}; identical results: {scaling['identical']})"
    )
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "rows": rows,
        "worker_scaling": scaling,
    }
    (args.out / "baselines.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.out / 'baselines.json'}")
    return 0


def measure_worker_scaling(data_dir: str | None, conversations: int) -> dict[str, object]:
    dataset = load_dataset("lastfm_star", data_dir)
    results = {}
    for workers in (1, 2):
        spec = RunSpec(
            dataset="lastfm_star",
            policy="max_entropy",
            scorer="popularity",
            limit=conversations,
            workers=workers,
        )
        results[workers] = evaluate(spec, dataset, policy_for_run(spec, dataset))
    one, two = results[1], results[2]
    return {
        "conversations": conversations,
        "workers_1": one.conversations_per_second,
        "workers_2": two.conversations_per_second,
        "ratio": two.conversations_per_second / one.conversations_per_second,
        "identical": [r.to_json(timings=False) for r in one.records]
        == [r.to_json(timings=False) for r in two.records],
    }


if __name__ == "__main__":
    sys.exit(main())
