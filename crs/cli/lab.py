"""`crs compare` and `crs sweep`: policy configurations on the same simulated conversations."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from crs.cli.common import (
    CliError,
    add_data_flags,
    default_folder,
    load_data,
    progress_bars,
    settings_from_args,
)
from crs.settings import Settings

DEFAULT_LIMIT = 1000
FLAGS = {
    "data.dir": "data_dir",
    "data.dataset": "dataset",
    "data.split": "split",
    "evaluate.limit": "limit",
    "evaluate.offset": "offset",
    "evaluate.seed": "seed",
    "evaluate.workers": "workers",
    "paths.cache_dir": "cache_dir",
}


def add_parsers(commands: Any) -> None:
    compare = commands.add_parser(
        "compare",
        help="run policy configurations on the same simulated conversations and report the differences",
    )
    compare.add_argument(
        "configs",
        type=Path,
        nargs="+",
        metavar="CONFIG",
        help="policy configuration files; the first is the baseline",
    )
    _add_run_flags(compare)
    compare.set_defaults(handler=run_compare)

    sweep = commands.add_parser("sweep", help="run a policy configuration for each value of one parameter")
    # Not "config": that is --config, the crs settings file.
    sweep.add_argument("policy_config", type=Path, metavar="CONFIG", help="a policy configuration file")
    sweep.add_argument(
        "--param",
        required=True,
        metavar="NAME=v1,v2,...",
        help="the parameter and its values, e.g. gain_weight=10,30,60 or questions.max_questions=2,4,8",
    )
    _add_run_flags(sweep)
    sweep.set_defaults(handler=run_sweep)


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    add_data_flags(parser)
    parser.add_argument("--dataset", help="lastfm | lastfm_star | movielens | a catalog folder")
    parser.add_argument("--split", help="evaluation split (default: valid)")
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"conversations (default: {DEFAULT_LIMIT})"
    )
    parser.add_argument(
        "--offset",
        type=int,
        help="skip the first N shuffled pairs; 4000 = only the pairs policies may be tuned on",
    )
    parser.add_argument("--seed", type=int, help="seed of every random choice (default: 0)")
    parser.add_argument("--workers", type=int, help="processes (results do not depend on it)")
    parser.add_argument(
        "--disagreements",
        type=int,
        default=10,
        metavar="N",
        help="conversations in disagreements.md (default: 10)",
    )
    parser.add_argument("--out", type=Path, help="report folder (default: runs/compare-DATASET-TIME)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _prepare(args: argparse.Namespace, kind: str) -> tuple[Settings, Any, Path]:
    from crs.evaluation.report import check_new_run_folder

    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    if args.disagreements < 0:
        raise CliError(f"--disagreements must be 0 or more, got {args.disagreements}")
    settings = settings_from_args(args, FLAGS)
    folder = args.out or default_folder(kind, settings.data.dataset)
    check_new_run_folder(folder)  # before any work: fail fast rather than after the run
    dataset = load_data(settings, split=settings.data.split)
    return settings, dataset, folder


def _flags(args: argparse.Namespace) -> str:
    flags = [("--dataset", args.dataset), ("--split", args.split), ("--limit", args.limit)]
    flags += [("--offset", args.offset), ("--seed", args.seed), ("--workers", args.workers)]
    return "".join(f" {flag} {shlex.quote(str(value))}" for flag, value in flags if value is not None)


def run_compare(args: argparse.Namespace) -> int:
    from crs.lab.compare import compare
    from crs.policy_config import load_policy_config

    configs = [load_policy_config(path) for path in args.configs]  # every file checked before any work
    settings, dataset, folder = _prepare(args, "compare")
    command = "crs compare " + " ".join(shlex.quote(str(path)) for path in args.configs) + _flags(args)
    with progress_bars(args.quiet) as progress:
        try:
            comparison = compare(configs, dataset, settings, progress)
        except ValueError as error:  # bad parameters or question rules, found while building
            raise CliError(str(error)) from None
    _report(comparison, folder, settings, command, args)
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    from crs.lab.sweep import parse_sweep, sweep, with_parameter, write_sweep
    from crs.policy_config import load_policy_config

    config = load_policy_config(args.policy_config)
    try:
        name, values = parse_sweep(args.param)
        for value in values:  # a bad name or value fails here, before any data is loaded
            with_parameter(config, name, value)
    except ValueError as error:
        raise CliError(str(error)) from None
    command = f"crs sweep {shlex.quote(str(args.policy_config))} --param {shlex.quote(args.param)}"
    args.param = ()  # the sweep's NAME=v1,v2 is not a policy parameter of the base settings
    settings, dataset, folder = _prepare(args, f"sweep-{name.replace('.', '_')}")
    with progress_bars(args.quiet) as progress:
        try:
            result = sweep(config, name, values, dataset, settings, progress)
        except ValueError as error:
            raise CliError(str(error)) from None
    _report(result.comparison, folder, settings, command + _flags(args), args)
    written = write_sweep(result, folder)
    print(f"against {name}: " + ", ".join(path.name for path in written.values()))
    return 0


def _report(
    comparison: Any, folder: Path, settings: Settings, command: str, args: argparse.Namespace
) -> None:
    from crs.lab.report import write_comparison

    write_comparison(comparison, folder, settings, command, args.disagreements)
    print(comparison.table())
    note = comparison.interval_note()
    if note:
        print(note)
    if comparison.tests:
        print(f"\nagainst {comparison.runs[0].label} (paired, same conversations):")
        print(comparison.tests_table())
    timings = ", ".join(f"{run.label} {run.result.seconds:.1f} s" for run in comparison.runs)
    print(f"\nconversations: {timings}; all in {comparison.seconds:.1f} s")
    print(
        f"report folder: {folder}  (table.md, table.json, success_by_turn.png, turns_histogram.png, "
        "questions_asked.png, disagreements.md, runs/)"
    )
