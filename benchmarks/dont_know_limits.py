"""What "don't know" answers cost the belief policy, split into their two causes (issue 3).

A "don't know" wastes the turn, and the protocol then never asks that attribute again, so the
information is lost for good. This script measures, on the first 4,000 valid pairs:

- exact answers;
- 20 % "don't know" under the protocol's rules;
- 20 % "don't know" with a diagnostic policy that may ask a "don't know" attribute again: an
  upper bound on what any choice of questions can recover, since only the wasted turns remain.
  It breaks the no-repeat rule, so it is never a registered policy.

    python benchmarks/dont_know_limits.py                # both datasets, ~2 minutes
    python benchmarks/dont_know_limits.py --datasets lastfm

Writes benchmarks/results/dont_know_limits.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crs.data import load_dataset
from crs.evaluation.report import format_table
from crs.evaluation.runner import RunSpec, evaluate
from crs.factory import policy_for_run
from crs.index import FloatArray
from crs.types import DialogueState
from policy.belief import BeliefPolicy, Decision


class ReaskingBelief(BeliefPolicy):
    """Diagnostic only: forgets which attributes got "don't know", so it may ask them again."""

    def decide(self, state: DialogueState, evidence: FloatArray | None = None) -> Decision:
        return super().decide(state.evolve(unknown_attributes=()), evidence)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["lastfm_star", "lastfm"])
    parser.add_argument("--limit", type=int, default=4000)
    parser.add_argument("--dont-know", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.datasets:
        dataset = load_dataset(name, args.data_dir)
        exact = RunSpec(dataset=name, policy="belief", scorer="bpr", limit=args.limit, workers=args.workers)
        unknown = RunSpec(
            dataset=name,
            policy="belief",
            scorer="bpr",
            limit=args.limit,
            workers=args.workers,
            dont_know=args.dont_know,
        )
        policy = policy_for_run(exact, dataset)
        assert isinstance(policy, BeliefPolicy)
        reasking = ReaskingBelief(dataset, policy.scorer)
        for label, spec, chosen in (
            ("exact answers", exact, policy),
            (f"{args.dont_know:.0%} don't know", unknown, policy),
            (f"{args.dont_know:.0%} don't know, may re-ask (bound)", unknown, reasking),
        ):
            result = evaluate(spec, dataset, chosen)
            result.raise_for_errors()
            rows.append({"dataset": name, "setting": label, **result.summary()})
            print(format_table(rows[-1:], ("dataset", "setting")), file=sys.stderr, flush=True)
    print(format_table(rows, ("dataset", "setting")))
    for row in rows:
        row.pop("success_by_turn", None)
    (args.out / "dont_know_limits.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.out / 'dont_know_limits.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
