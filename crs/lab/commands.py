"""The `crs compare` and `crs sweep` commands (registered by crs/cli.py, which stays small).

Like the rest of the CLI they print, show progress bars on stderr, and turn every expected
failure into one `error:` line (a `CliError` or `ConfigError` caught by `crs.cli.main`).
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from crs.config import load_config

DEFAULT_LIMIT = 1000


def add_parsers(commands: Any, positive_int: Callable[[str], int]) -> None:
    """Add `compare` and `sweep` to the CLI's sub-command parsers."""
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
    _add_run_flags(compare, positive_int)

    sweep = commands.add_parser("sweep", help="run a policy configuration for each value of one parameter")
    # Not "config": that is --config, the crs settings file.
    sweep.add_argument("policy_config", type=Path, metavar="CONFIG", help="a policy configuration file")
    sweep.add_argument(
        "--param",
        required=True,
        metavar="NAME=v1,v2,...",
        help="the parameter and its values, e.g. gain_weight=10,30,60 or questions.max_questions=2,4,8",
    )
    _add_run_flags(sweep, positive_int)


def _add_run_flags(parser: argparse.ArgumentParser, positive_int: Callable[[str], int]) -> None:
    parser.add_argument("--dataset", help="lastfm | lastfm_star | movielens | a catalog folder")
    parser.add_argument("--split", help="evaluation split (default: valid)")
    parser.add_argument(
        "--limit", type=positive_int, default=DEFAULT_LIMIT, help=f"conversations (default: {DEFAULT_LIMIT})"
    )
    parser.add_argument(
        "--offset",
        type=int,
        help="skip the first N shuffled pairs; 4000 = only the pairs policies may be tuned on (default: 0)",
    )
    parser.add_argument("--seed", type=int, help="seed of every random choice (default: 0)")
    parser.add_argument("--workers", type=positive_int, help="processes (results do not depend on it)")
    parser.add_argument(
        "--disagreements",
        type=int,
        default=10,
        metavar="N",
        help="conversations in disagreements.md (default: 10)",
    )
    parser.add_argument("--out", type=Path, help="report folder (default: runs/compare-DATASET-TIME)")
    parser.add_argument("--data-dir", help="data directory (default: $CRS_DATA_DIR, then ../shared/data)")
    parser.add_argument(
        "--config", type=Path, help="a TOML file overriding crs/defaults.toml (scorer, simulator)"
    )
    parser.add_argument("--cache-dir", help="where trained models are kept (default: ~/.cache/crs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_compare(args: argparse.Namespace) -> int:
    from crs.lab.compare import compare
    from crs.lab.config import load_policy_config

    configs = [load_policy_config(path) for path in args.configs]  # every file checked before any work
    settings, dataset, folder = _prepare(args, "compare")
    command = "crs compare " + " ".join(shlex.quote(str(path)) for path in args.configs) + _flags(args)
    comparison = _run(args, lambda progress: compare(configs, dataset, **_options(args, settings, progress)))
    _report(comparison, folder, settings, command, args)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from crs.cli import CliError
    from crs.lab.config import load_policy_config
    from crs.lab.sweep import parse_sweep, sweep, with_parameter, write_sweep

    config = load_policy_config(args.policy_config)
    try:
        name, values = parse_sweep(args.param)
        for value in values:  # a bad name or value fails here, before any data is loaded
            with_parameter(config, name, value)
    except ValueError as error:
        raise CliError(str(error)) from None
    settings, dataset, folder = _prepare(args, f"sweep-{name}")
    command = f"crs sweep {shlex.quote(str(args.policy_config))} --param {shlex.quote(args.param)}" + _flags(
        args
    )
    result = _run(
        args, lambda progress: sweep(config, name, values, dataset, **_options(args, settings, progress))
    )
    _report(result.comparison, folder, settings, command, args)
    written = write_sweep(result, folder)
    print(f"against {name}: " + ", ".join(path.name for path in written.values()))
    return 0


def _prepare(args: argparse.Namespace, kind: str) -> tuple[dict[str, Any], Any, Path]:
    from crs.cli import CliError
    from crs.data import load_dataset
    from crs.evaluation.report import check_new_run_folder

    settings = load_config(
        args.config,
        {
            "data.dir": args.data_dir,
            "data.dataset": args.dataset,
            "data.split": args.split,
            "evaluate.seed": args.seed,
            "evaluate.workers": args.workers,
            "evaluate.limit": args.limit,
            "evaluate.offset": args.offset,
            "paths.cache_dir": args.cache_dir,
        },
    )
    data = settings["data"]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = str(data["dataset"]).replace("/", "_")
    folder = args.out or Path("runs") / f"{kind.replace('/', '_').replace('.', '_')}-{safe}-{stamp}"
    check_new_run_folder(folder)  # before any work: fail fast rather than after the run
    if args.disagreements < 0:
        raise CliError(f"--disagreements must be 0 or more, got {args.disagreements}")
    dataset = load_dataset(data["dataset"], data["dir"] or None, split_seed=data["split_seed"])
    dataset.split(data["split"])  # fail before any training when the split is absent
    return settings, dataset, folder


def _options(args: argparse.Namespace, settings: dict[str, Any], progress: Any) -> dict[str, Any]:
    cache = settings["paths"]["cache_dir"]
    return {
        "split": settings["data"]["split"],
        "limit": args.limit,
        "offset": settings["evaluate"]["offset"],
        "seed": settings["evaluate"]["seed"],
        "workers": settings["evaluate"]["workers"],
        "progress": progress,
        "cache_dir": Path(cache) if cache else None,
        "settings": settings,
    }


def _flags(args: argparse.Namespace) -> str:
    flags = [("--dataset", args.dataset), ("--split", args.split), ("--limit", args.limit)]
    flags += [("--offset", args.offset), ("--seed", args.seed), ("--workers", args.workers)]
    return "".join(f" {flag} {shlex.quote(str(value))}" for flag, value in flags if value is not None)


def _run(args: argparse.Namespace, work: Callable[[Any], Any]) -> Any:
    from crs.cli import CliError

    with _progress_bars(args.quiet) as progress:
        try:
            return work(progress)
        except ValueError as error:  # bad parameters or question rules, found while building
            raise CliError(str(error)) from None


@contextlib.contextmanager
def _progress_bars(quiet: bool) -> Iterator[Callable[[Any], None]]:
    """One bar per configuration and stage (training, conversations), opened when it has progress."""
    from crs.cli import _progress_bar

    current: dict[str, Any] = {}

    def on_progress(event: Any) -> None:
        key = (event.index, event.stage)
        if current.get("key") != key:
            if "bar" in current:
                current["bar"].close()
            unit = "conv" if event.stage == "conversations" else ("epoch" if "scorer" in event.stage else "%")
            current.update(key=key, bar=_progress_bar(event.total, event.describe(), quiet, unit=unit))
        bar = current["bar"]
        bar.total = event.total
        bar.update(event.done - bar.n)

    try:
        yield on_progress
    finally:
        if "bar" in current:
            current["bar"].close()


def _report(
    comparison: Any, folder: Path, settings: dict[str, Any], command: str, args: argparse.Namespace
) -> None:
    from crs.lab.report import write_comparison

    write_comparison(comparison, folder, settings, command, args.disagreements)
    print(comparison.table())
    if comparison.tests:
        print(f"\nagainst {comparison.runs[0].label} (paired, same conversations):")
        print(comparison.tests_table())
    timings = ", ".join(f"{run.label} {run.result.seconds:.1f} s" for run in comparison.runs)
    print(f"\nconversations: {timings}; all in {comparison.seconds:.1f} s")
    print(
        f"report folder: {folder}  (table.md, table.json, success_by_turn.png, turns_histogram.png, "
        "questions_asked.png, disagreements.md, runs/)"
    )
