"""How each cost grows with the catalog: synthetic catalogs of 10k, 100k and 1M items (issue 15).

For each catalog size (and number of attributes) a synthetic catalog in the generic format is
written once (`crs data synth`, kept in the work folder), then a fresh process measures, with an
empty model cache so that training is timed too:
- load: reading the files and building the item-attribute index;
- training: BPR (the collaborative scorer) and the belief policy's prior;
- conversations on the valid split with the rule-based user, for `belief` and `max_entropy`:
  decision time per turn (p50/p95; the first decision of a conversation, which builds the user's
  prior and, above `max_candidates` items, the conversation's candidate pool, also on its own),
  conversations/s and SR@15;
- peak memory (the process's peak RSS, everything above included).

Every measurement is a run of its own process, one after the other, so they do not share a core
or memory. The growth exponent of each cost is the slope of a least-squares line through
log(cost) against log(items): 1 is linear growth, 0 is a cost that does not grow.

    python benchmarks/scale.py                          # 10k, 100k, 1M items, 1,000 attributes (~6 min)
    python benchmarks/scale.py --attributes 1000 10000  # both attribute counts (~12 min on a quiet machine)
    python benchmarks/scale.py --items 10000 100000 --conversations 50   # a quick look

Writes benchmarks/results/scale.json and docs/images/scale.png (log-log plot of each cost).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ("belief", "max_entropy")
DEFAULT_ITEMS = (10_000, 100_000, 1_000_000)
TARGETS = {"belief decision p95 (ms)": 25.0, "peak memory (GB)": 4.0, "load + training (s)": 120.0}


def measure(folder: Path, conversations: int, belief_params: dict[str, Any]) -> dict[str, Any]:
    """One catalog in this process (run it in a fresh one): load, train, converse, peak memory."""
    from crs.data import load_dataset
    from crs.evaluation.runner import RunSpec, evaluate
    from crs.factory import build_policy, build_scorer

    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="crs-scale-cache-") as cache:
        cache_dir = Path(cache)
        started = time.perf_counter()
        dataset = load_dataset(str(folder))
        dataset.catalog.index  # noqa: B018 - built here, so that it counts as loading
        result["load_s"] = time.perf_counter() - started
        result["items"] = dataset.catalog.n_items
        result["attributes"] = dataset.catalog.n_attributes
        result["users"] = len(dataset.users)
        result["train_interactions"] = sum(len(items) for items in dataset.train.by_user.values())

        started = time.perf_counter()
        scorer = build_scorer("bpr", {}, dataset, cache_dir)
        result["bpr_s"] = time.perf_counter() - started
        started = time.perf_counter()
        belief = build_policy("belief", belief_params, dataset, scorer, cache_dir)
        result["prior_s"] = time.perf_counter() - started
        result["rss_after_training_gb"] = _peak_rss_gb()
        policies = {"belief": belief, "max_entropy": build_policy("max_entropy", {}, dataset, scorer)}

        for name in POLICIES:
            spec = RunSpec(dataset=str(folder), split="valid", policy=name, limit=conversations, seed=0)
            run = evaluate(spec, dataset, policies[name])
            run.raise_for_errors()
            first = [record.decision_ms[0] for record in run.records if record.decision_ms]
            later = [ms for record in run.records for ms in record.decision_ms[1:]]
            result[name] = {
                "conversations": len(run.records),
                "sr15": run.metrics.sr[15],
                "average_turns": run.metrics.average_turns,
                "decision_ms_p50": run.decision_ms_p50,
                "decision_ms_p95": run.decision_ms_p95,
                "first_decision_ms_p50": float(np.percentile(first, 50)),
                "later_decision_ms_p50": float(np.percentile(later, 50)) if later else None,
                "later_decision_ms_p95": float(np.percentile(later, 95)) if later else None,
                "conversations_per_second": run.conversations_per_second,
            }
    result["peak_rss_gb"] = _peak_rss_gb()
    return result


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def _catalog(work: Path, items: int, attributes: int, seed: int) -> tuple[Path, float | None]:
    """The synthetic catalog of this size (written unless already there) and the seconds writing took."""
    from crs.data.synth import SynthSpec, synthesize

    folder = work / f"synth-{items}-{attributes}-s{seed}"
    if (folder / "synth.json").is_file():
        return folder, None
    summary = synthesize(folder, SynthSpec(items=items, attributes=attributes, seed=seed))
    return folder, summary.seconds


def _run_child(folder: Path, conversations: int, belief_params: dict[str, Any]) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--measure",
        str(folder),
        "--conversations",
        str(conversations),
        "--belief-params",
        json.dumps(belief_params),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"measuring {folder} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def growth_exponent(sizes: list[float], values: list[float | None]) -> float | None:
    """Slope of log(value) against log(size), over the sizes with a positive value."""
    points = [(s, v) for s, v in zip(sizes, values, strict=True) if v is not None and v > 0]
    if len(points) < 2:
        return None
    x, y = np.log10([p[0] for p in points]), np.log10([p[1] for p in points])
    return float(np.polyfit(x, y, 1)[0])


COSTS: dict[str, Any] = {
    "load (s)": lambda r: r["load_s"],
    "training (s)": lambda r: r["bpr_s"] + r["prior_s"],
    "load + training (s)": lambda r: r["load_s"] + r["bpr_s"] + r["prior_s"],
    "peak memory (GB)": lambda r: r["peak_rss_gb"],
    "belief decision p50 (ms)": lambda r: r["belief"]["decision_ms_p50"],
    "belief decision p95 (ms)": lambda r: r["belief"]["decision_ms_p95"],
    "belief later decisions p95 (ms)": lambda r: r["belief"]["later_decision_ms_p95"],
    "belief first decision p50 (ms)": lambda r: r["belief"]["first_decision_ms_p50"],
    "max_entropy decision p50 (ms)": lambda r: r["max_entropy"]["decision_ms_p50"],
    "max_entropy decision p95 (ms)": lambda r: r["max_entropy"]["decision_ms_p95"],
    "belief conversations/s": lambda r: r["belief"]["conversations_per_second"],
    "max_entropy conversations/s": lambda r: r["max_entropy"]["conversations_per_second"],
}


def _table(results: list[dict[str, Any]]) -> str:
    from crs.evaluation.report import markdown_table

    headers = ["items", "attributes", "load s", "BPR s", "prior s", "peak GB"]
    for name in POLICIES:
        headers += [f"{name} p50 ms", f"{name} p95 ms", f"{name} conv/s", f"{name} SR@15"]
    rows = []
    for r in results:
        row = [
            f"{r['items']:,}",
            f"{r['attributes']:,}",
            f"{r['load_s']:.1f}",
            f"{r['bpr_s']:.1f}",
            f"{r['prior_s']:.1f}",
            f"{r['peak_rss_gb']:.2f}",
        ]
        for name in POLICIES:
            p = r[name]
            row += [
                f"{p['decision_ms_p50']:.1f}",
                f"{p['decision_ms_p95']:.1f}",
                f"{p['conversations_per_second']:.2f}",
                f"{p['sr15']:.3f}",
            ]
        rows.append(row)
    return markdown_table(headers, rows)


def _plot(results: list[dict[str, Any]], exponents: dict[str, dict[str, float | None]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("seconds", ("load (s)", "training (s)")),
        ("GB", ("peak memory (GB)",)),
        (
            "ms per decision",
            (
                "belief decision p50 (ms)",
                "belief decision p95 (ms)",
                "belief later decisions p95 (ms)",
                "max_entropy decision p95 (ms)",
            ),
        ),
        ("conversations / s", ("belief conversations/s", "max_entropy conversations/s")),
    )
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 5.4))
    for axis, (unit, names) in zip(axes, panels, strict=True):
        for attributes, runs in sorted(_by_attributes(results).items()):
            sizes = [r["items"] for r in runs]
            for name in names:
                slope = exponents[str(attributes)].get(name)
                label = f"{name.split(' (')[0]}, {attributes:,} attr." + (
                    f" (x^{slope:.2f})" if slope is not None else ""
                )
                axis.plot(sizes, [COSTS[name](r) for r in runs], marker="o", label=label)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("items in the catalog")
        axis.set_ylabel(unit)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.16))  # below: no line hidden
    figure.suptitle("Cost against catalog size (2 cores; slope of the log-log line in brackets)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _by_attributes(results: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    groups: dict[int, list[dict[str, Any]]] = {}
    for r in sorted(results, key=lambda r: r["items"]):
        groups.setdefault(r["attributes"], []).append(r)
    return groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, nargs="+", default=list(DEFAULT_ITEMS))
    parser.add_argument("--attributes", type=int, nargs="+", default=[1_000])
    parser.add_argument(
        "--conversations", type=int, default=100, help="valid conversations per policy and size"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic catalogs")
    parser.add_argument(
        "--belief-params", default="{}", help="belief parameters as JSON, e.g. '{\"max_candidates\": 0}'"
    )
    parser.add_argument(
        "--work", type=Path, default=None, help="where the catalogs are kept (default: cache)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "images" / "scale.png")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--replot", action="store_true", help="redraw the plot from --out's scale.json only")
    args = parser.parse_args(argv)
    belief_params = json.loads(args.belief_params)
    if args.replot:
        saved = json.loads((args.out / "scale.json").read_text())
        _plot(saved["results"], saved["growth_exponents"], args.plot)
        print(f"wrote {args.plot}")
        return 0
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.conversations, belief_params)))
        return 0

    from crs.scoring import default_cache_dir

    work = args.work or default_cache_dir() / "scale"
    results = []
    for attributes in args.attributes:
        for items in args.items:
            folder, synth_s = _catalog(work, items, attributes, args.seed)
            print(f"{items:,} items, {attributes:,} attributes ({folder}) ...", file=sys.stderr, flush=True)
            load_before = os.getloadavg()[0]
            result = _run_child(folder, args.conversations, belief_params)
            result["synth_s"] = synth_s
            # The machine is shared: how busy it was says how far to trust the times.
            result["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)

    exponents = {
        str(attributes): {
            name: growth_exponent([r["items"] for r in runs], [cost(r) for r in runs])
            for name, cost in COSTS.items()
        }
        for attributes, runs in _by_attributes(results).items()
    }
    largest = max(results, key=lambda r: (r["items"], -r["attributes"]))
    targets = {
        name: {"limit": limit, "measured": COSTS[name](largest), "met": COSTS[name](largest) <= limit}
        for name, limit in TARGETS.items()
    }
    print(_table(results))
    print()
    for attributes, slopes in exponents.items():
        shown = ", ".join(f"{name} {slope:.2f}" for name, slope in slopes.items() if slope is not None)
        print(f"growth exponents, {int(attributes):,} attributes: {shown}")
    print(
        f"targets at {largest['items']:,} items: "
        + ", ".join(
            f"{name} {t['measured']:.1f} (<= {t['limit']:g}: {'met' if t['met'] else 'not met'})"
            for name, t in targets.items()
        )
    )
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "conversations": args.conversations,
        "belief_params": belief_params,
        "results": results,
        "growth_exponents": exponents,
        "targets": targets,
    }
    (args.out / "scale.json").write_text(json.dumps(payload, indent=2) + "\n")
    _plot(results, exponents, args.plot)
    print(f"wrote {args.out / 'scale.json'} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
