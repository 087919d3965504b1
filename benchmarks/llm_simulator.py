"""Rule simulator vs LLM simulator on the same targets and seeds (issue 5).

For each dataset it evaluates the default (belief) policy twice on the first `--limit` shuffled
valid pairs: once against the rule-based user of the standard protocol (policy and state only),
once against the LLM user (local gemma-3-270m, phrase mode) talking with the whole chat (words ->
understanding -> state -> policy -> words). One table: SR@5/10/15, AT, hDCG, first-draft and
final agreement, regenerated and template shares, tokens and seconds per conversation,
conversations per minute.

    python benchmarks/llm_simulator.py                 # 200 pairs of lastfm_star and of movielens
    python benchmarks/llm_simulator.py --limit 10      # a smoke test
    python benchmarks/llm_simulator.py --speed         # conversations per minute, workers 1 and 2

The LLM runs use the model without the response cache (`[llm] cache = false`), so the seconds are
the model's own; the words are the same either way. Writes benchmarks/results/llm_simulator_BEHAVIOUR.json
(or llm_simulator_speed.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from crs.data import load_dataset
from crs.evaluation.report import format_table
from crs.evaluation.runner import RunSpec, evaluate
from crs.factory import policy_for_run
from crs.settings import LLMSettings, LLMUserSettings

LABELS = ("dataset", "simulator")
# The local model, every reply generated afresh (no response cache), so the times are real.
LLM = LLMSettings(backend="local", cache=False)
KEYS = (
    "conversations",
    "SR@5",
    "SR@10",
    "SR@15",
    "AT",
    "hDCG",
    "conversations_per_second",
    "decision_ms_p50",
    "decision_ms_p95",
    "first_draft_agreement",
    "agreement",
    "regenerated_rate",
    "template_rate",
    "tokens_per_conversation",
    "seconds_per_conversation",
    "conversations_per_minute",
    "clarifications_per_conversation",
    "title_leaks_dropped",
    "terminations",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["lastfm_star", "movielens"])
    parser.add_argument("--limit", type=int, default=200, help="valid pairs per dataset")
    parser.add_argument(
        "--workers", type=int, default=1, help="1 is fastest on 2 cores (each worker loads its own model)"
    )
    parser.add_argument("--behaviour", choices=["persona", "protocol"], default="persona")
    parser.add_argument("--speed", action="store_true", help="conversations per minute, workers 1 and 2")
    parser.add_argument("--speed-limit", type=int, default=20, help="conversations of the speed runs")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    user = LLMUserSettings(mode="phrase", behaviour=args.behaviour)
    rows: list[dict[str, Any]] = []
    if args.speed:
        dataset_name = args.datasets[0]
        dataset = load_dataset(dataset_name, args.data_dir)
        base = RunSpec(dataset=dataset_name, policy="belief", scorer="bpr", limit=args.speed_limit)
        policy = policy_for_run(base, dataset)
        for workers in (1, 2):
            spec = replace(base, simulator="llm", workers=workers, llm=LLM, llm_user=user)
            started = time.perf_counter()
            result = evaluate(spec, dataset, policy)
            summary = result.summary()
            rows.append(
                {"dataset": dataset_name, "simulator": f"llm, {workers} worker(s)"}
                | {k: summary.get(k) for k in KEYS}
                | {"wall_seconds": time.perf_counter() - started}
            )
            print(format_table(rows[-1:], LABELS), file=sys.stderr, flush=True)
        name = "llm_simulator_speed.json"
    else:
        for dataset_name in args.datasets:
            dataset = load_dataset(dataset_name, args.data_dir)
            base = RunSpec(
                dataset=dataset_name, policy="belief", scorer="bpr", limit=args.limit, workers=args.workers
            )
            policy = policy_for_run(base, dataset)
            for label, spec in (
                ("rule", base),
                (f"llm ({args.behaviour})", replace(base, simulator="llm", llm=LLM, llm_user=user)),
            ):
                result = evaluate(spec, dataset, policy)
                summary = result.summary()
                if spec.simulator == "rule":
                    summary["seconds_per_conversation"] = result.seconds / max(len(result.records), 1)
                    summary["conversations_per_minute"] = 60.0 * result.conversations_per_second
                rows.append({"dataset": dataset_name, "simulator": label} | {k: summary.get(k) for k in KEYS})
                print(format_table(rows[-1:], LABELS), file=sys.stderr, flush=True)
        name = f"llm_simulator_{args.behaviour}.json"
    print(format_table(rows, LABELS))
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "limit": args.speed_limit if args.speed else args.limit,
        "workers": args.workers,
        "simulator": {"llm": asdict(LLM), "llm_user": asdict(user)},
        "rows": rows,
    }
    (args.out / name).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
