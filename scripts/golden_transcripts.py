"""Behaviour you do not mean to change must not change: run one fixed set of evaluations with two
versions of the code and compare their transcripts conversation by conversation.

    # 1. a checkout of the version to compare against, e.g. the last commit
    git worktree add /tmp/crs-before HEAD
    # 2. the same runs with both (each ~12 minutes on 2 cores; LLM runs included)
    .venv/bin/python scripts/golden_transcripts.py run /tmp/crs-before /tmp/golden/before
    .venv/bin/python scripts/golden_transcripts.py run . /tmp/golden/after
    # 3. every transcript and every metric compared (timings left out)
    .venv/bin/python scripts/golden_transcripts.py diff /tmp/golden/before /tmp/golden/after

The runs cover every policy under every answer model on the three datasets, several workers,
an offset, policy configurations, the LLM user in both behaviours, a comparison and a sweep.
Each run goes through the `crs` command line of the given code folder (PYTHONPATH) with its own
model cache, so nothing trained by one version is reused by the other.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

VOLATILE = {"decision_ms", "seconds", "llm_seconds", "wall_seconds"}
ANSWERS = {
    "exact": [],
    "noise": ["--answer-noise", "0.1"],
    "dk": ["--dont-know", "0.2"],
    "pat": ["--patience", "6"],
}
POLICIES = ("belief", "max_entropy", "scpr_walk", "scpr_rl", "fact_tree", "random")


def jobs(out: Path) -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for dataset, limit in (("lastfm_star", 400), ("lastfm", 300), ("movielens", 300)):
        for policy in POLICIES:
            for answers, flags in ANSWERS.items():
                evaluate = ["evaluate", "--dataset", dataset, "--policy", policy, "--limit", str(limit)]
                found.append((f"{dataset}-{policy}-{answers}", [*evaluate, *flags]))
        found.append(
            (
                f"{dataset}-max_entropy_pop-exact",
                ["evaluate", "--dataset", dataset, "--policy", "max_entropy", "--scorer", "popularity"]
                + ["--limit", str(limit)],
            )
        )
    found += [
        (
            "lastfm_star-belief-mixed-w2",
            ["evaluate", "--dataset", "lastfm_star", "--limit", "300", "--workers", "2"]
            + ["--answer-noise", "0.1", "--dont-know", "0.1", "--seed", "3"],
        ),
        (
            "lastfm_star-belief-offset",
            ["evaluate", "--dataset", "lastfm_star", "--limit", "200", "--offset", "4000"],
        ),
        (
            "movielens-genres-only",
            [
                "evaluate",
                "--dataset",
                "movielens",
                "--limit",
                "300",
                "--policy-config",
                "configs/belief-genres-only.toml",
            ],
        ),
        (
            "movielens-early",
            ["evaluate", "--dataset", "movielens", "--limit", "300"]
            + ["--policy-config", "configs/belief-early-recommend.toml"],
        ),
    ]
    for dataset in ("movielens", "lastfm_star"):
        for behaviour in ("persona", "protocol"):
            config = out / f"llm-{behaviour}.toml"
            config.write_text(
                f'[llm]\ncache = false\n[simulator.llm]\nbehaviour = "{behaviour}"\n', encoding="utf-8"
            )
            found.append(
                (
                    f"llm-{dataset}-{behaviour}",
                    [
                        "evaluate",
                        "--dataset",
                        dataset,
                        "--simulator",
                        "llm",
                        "--limit",
                        "15",
                        "--config",
                        str(config),
                    ],
                )
            )
    found += [
        (
            "compare-movielens",
            ["compare", "configs/belief.toml", "configs/belief-genres-only.toml", "--dataset", "movielens"]
            + ["--limit", "300"],
        ),
        (
            "sweep-lastfm_star",
            [
                "sweep",
                "configs/belief.toml",
                "--param",
                "gain_weight=10,30",
                "--dataset",
                "lastfm_star",
                "--limit",
                "200",
            ],
        ),
    ]
    return found


def run(code: Path, out: Path, only: str) -> int:
    out.mkdir(parents=True, exist_ok=True)
    environment = dict(
        os.environ, PYTHONPATH=str(code), CRS_CACHE_DIR=str(out / ".cache"), GRADIO_ANALYTICS_ENABLED="False"
    )
    failures = 0
    for name, args in jobs(out):
        folder = out / name
        if (only and not name.startswith(only)) or folder.exists():
            continue
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "crs", *args, "--out", str(folder), "--quiet"],
            cwd=code,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        print(f"{name}: exit {done.returncode}, {time.perf_counter() - started:.1f} s", flush=True)
        if done.returncode:
            failures += 1
            print(done.stderr[-2000:], flush=True)
    return 1 if failures else 0


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _records(path: Path) -> list[Any]:
    return [
        _clean(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def diff(before: Path, after: Path) -> int:
    same = different = missing = 0
    for folder in sorted(p for p in before.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for transcripts in sorted(folder.rglob("transcripts.jsonl")):
            relative = transcripts.relative_to(before)
            other = after / relative
            if not other.exists():
                missing += 1
                print(f"missing {relative}")
                continue
            a, b = _records(transcripts), _records(other)
            if a == b:
                same += 1
                continue
            different += 1
            changed = sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))
            print(f"DIFFERENT {relative}: {changed} of {len(a)} conversations")
        metrics, other_metrics = folder / "metrics.json", after / folder.name / "metrics.json"
        if metrics.exists() and other_metrics.exists():
            a_metrics = json.loads(metrics.read_text(encoding="utf-8"))
            b_metrics = json.loads(other_metrics.read_text(encoding="utf-8"))
            keys = [
                k
                for k in a_metrics
                if k.startswith(("SR@", "AT", "hDCG", "agreement", "first_draft", "template"))
            ]
            changed_keys = [k for k in keys if a_metrics.get(k) != b_metrics.get(k)]
            if changed_keys:
                print(
                    f"METRICS {folder.name}: "
                    + ", ".join(f"{k} {a_metrics[k]} -> {b_metrics.get(k)}" for k in changed_keys)
                )
    print(f"transcripts: {same} identical, {different} different, {missing} missing")
    return 0 if different == missing == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run the fixed evaluations with one code folder")
    run_parser.add_argument("code", type=Path, help="a checkout of crs (its crs/ is what runs)")
    run_parser.add_argument("out", type=Path)
    run_parser.add_argument("--only", default="", help="only runs whose name starts with this")
    diff_parser = commands.add_parser("diff", help="compare two run folders; exit 1 on any difference")
    diff_parser.add_argument("before", type=Path)
    diff_parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.code.resolve(), args.out.resolve(), args.only)
    return diff(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
