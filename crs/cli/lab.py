"""`crs compare` and `crs sweep`: policy configurations on the same simulated conversations."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crs.cli.common import (
    CliError,
    add_data_flags,
    default_folder,
    load_data,
    progress_bars,
    resumed_with_flags,
    settings_from_args,
)
from crs.cli.evaluate import EXIT_INTERRUPTED, add_engine_flags, stop_on_sigterm
from crs.evaluation.run_folder import RunFolderError
from crs.settings import Settings

if TYPE_CHECKING:
    from crs.lab.report import ReportFolder

DEFAULT_LIMIT = 1000
DISAGREEMENTS = 10
FLAGS = {
    "data.dir": "data_dir",
    "data.dataset": "dataset",
    "data.split": "split",
    "evaluate.limit": "limit",
    "evaluate.offset": "offset",
    "evaluate.seed": "seed",
    "evaluate.workers": "workers",
    "evaluate.engine": "engine",
    "evaluate.ray_address": "ray_address",
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
        nargs="*",
        metavar="CONFIG",
        help="policy configuration files; the first is the baseline (--resume: checked against the saved)",
    )
    _add_run_flags(compare)
    compare.set_defaults(handler=run_compare)

    sweep = commands.add_parser("sweep", help="run a policy configuration for each value of one parameter")
    # Not "config": that is --config, the crs settings file.
    sweep.add_argument(
        "policy_config", type=Path, nargs="?", metavar="CONFIG", help="a policy configuration file"
    )
    sweep.add_argument(
        "--param",
        metavar="NAME=v1,v2,...",
        help="the parameter and its values, e.g. gain_weight=10,30,60 or questions.max_questions=2,4,8",
    )
    _add_run_flags(sweep)
    sweep.set_defaults(handler=run_sweep)


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    add_data_flags(parser)
    parser.add_argument("--dataset", help="lastfm | lastfm_star | movielens | a catalog folder")
    parser.add_argument("--split", help="evaluation split (default: valid)")
    parser.add_argument("--limit", type=int, help=f"conversations (default: {DEFAULT_LIMIT})")
    parser.add_argument(
        "--offset",
        type=int,
        help="skip the first N shuffled pairs; 4000 = only the pairs policies may be tuned on",
    )
    parser.add_argument("--seed", type=int, help="seed of every random choice (default: 0)")
    parser.add_argument("--workers", type=int, help="processes (results do not depend on it)")
    add_engine_flags(parser)
    parser.add_argument(
        "--disagreements",
        type=int,
        metavar="N",
        help=f"conversations in disagreements.md (default: {DISAGREEMENTS})",
    )
    parser.add_argument("--out", type=Path, help="report folder (default: runs/compare-DATASET-TIME)")
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="REPORT",
        help="finish an interrupted report in its folder, with its saved settings (--workers may change)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


# Flags a resumed report may change: where things are and how many processes, not what is measured.


def _new_report(args: argparse.Namespace, command: str, kind: str) -> tuple[Settings, ReportFolder]:
    """The settings of a new report and its folder (runs/KIND-DATASET-TIME by default), locked:
    fails before any work is done."""
    from crs.lab.report import ReportFolder

    if args.limit is None:
        args.limit = DEFAULT_LIMIT
    if args.disagreements is None:
        args.disagreements = DISAGREEMENTS
    _check_counts(args)
    settings = settings_from_args(args, FLAGS)
    folder = args.out or default_folder(kind, settings.data.dataset)
    try:
        return settings, ReportFolder.create(folder, f"crs {command} --resume {folder}")
    except RunFolderError as error:
        raise CliError(str(error)) from None


def _check_counts(args: argparse.Namespace) -> None:
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    if args.disagreements is not None and args.disagreements < 0:
        raise CliError(f"--disagreements must be 0 or more, got {args.disagreements}")


def _resumed_report(
    args: argparse.Namespace, kind: str, check: Callable[[Mapping[str, Any]], None]
) -> tuple[Settings, ReportFolder, dict[str, Any]]:
    """An interrupted report's folder, locked, with its saved settings; a flag that would change
    what it measures is refused (one error line)."""
    from crs.lab.report import ReportFolder

    if args.out is not None or args.config is not None:
        raise CliError("--resume continues a report with its saved settings: drop --out and --config")
    _check_counts(args)
    try:
        report, saved = ReportFolder.resume(args.resume)
    except RunFolderError as error:
        raise CliError(str(error)) from None
    try:
        if saved.get("command") != kind:
            raise CliError(
                f"{args.resume} is a `crs {saved.get('command')}` report: "
                f"resume it with `crs {saved.get('command')} --resume {args.resume}`"
            )
        try:
            settings = Settings.from_dict(saved["settings"], where=str(args.resume / "comparison.json"))
        except ValueError as error:
            raise CliError(str(error)) from None
        settings = resumed_with_flags(settings, args, FLAGS, "report")
        if args.disagreements is not None and args.disagreements != saved.get("disagreements"):
            raise CliError(
                f"--disagreements {args.disagreements} differs from the report's saved "
                f"{saved.get('disagreements')!r}: a resumed report keeps its settings"
            )
        check(saved)
    except CliError:
        report.close()
        raise
    return settings, report, saved


def _check_configs(given: Sequence[Any], saved: Mapping[str, Any], what: Sequence[str]) -> None:
    """Configurations named on a resumed command line must be the ones the report runs."""
    from crs.lab.report import saved_config

    kept = saved.get("configs", [])
    if len(given) != len(kept):
        raise CliError(f"the report runs {len(kept)} configurations, {len(given)} were given")
    for config, name, old in zip(given, what, kept, strict=True):
        if saved_config(config) != old:
            raise CliError(
                f"{name} differs from the report's configuration {old.get('label')!r}: "
                "a resumed report keeps its configurations"
            )


def _flags(args: argparse.Namespace) -> str:
    flags = [("--dataset", args.dataset), ("--split", args.split), ("--limit", args.limit)]
    flags += [("--offset", args.offset), ("--seed", args.seed), ("--workers", args.workers)]
    flags += [("--engine", args.engine), ("--ray-address", args.ray_address)]
    return "".join(f" {flag} {shlex.quote(str(value))}" for flag, value in flags if value is not None)


def run_compare(args: argparse.Namespace) -> int:
    from crs.lab.report import SavedConfig, saved_config
    from crs.policy_config import load_policy_config

    configs: list[Any] = [load_policy_config(path) for path in args.configs]  # all checked before any work
    if args.resume is None:
        if not configs:
            raise CliError("give the policy configuration files to compare (or --resume REPORT)")
        settings, report = _new_report(args, "compare", "compare")
        command = "crs compare " + " ".join(shlex.quote(str(path)) for path in args.configs) + _flags(args)
        saved = {
            "command": "compare",
            "command_line": command,
            "configs": [saved_config(config) for config in configs],
            "disagreements": args.disagreements,
        }
    else:

        def check(saved: Mapping[str, Any]) -> None:
            if configs:
                _check_configs(configs, saved, [str(path) for path in args.configs])

        settings, report, saved = _resumed_report(args, "compare", check)
        configs = [SavedConfig(**config) for config in saved["configs"]]
    return _run_report(args, settings, report, saved, configs)


def run_sweep(args: argparse.Namespace) -> int:
    from crs.lab.report import SavedConfig, saved_config
    from crs.lab.sweep import parse_sweep, with_parameter
    from crs.policy_config import load_policy_config

    configs: list[Any] = []
    name, values = "", list[Any]()
    if args.policy_config is not None or args.resume is None:
        if args.policy_config is None or args.param is None:
            raise CliError("give a policy configuration file and --param NAME=v1,v2,... (or --resume REPORT)")
        config = load_policy_config(args.policy_config)
        try:
            name, values = parse_sweep(args.param)
            # A bad name or value fails here, before any data is loaded.
            configs = [with_parameter(config, name, value) for value in values]
        except ValueError as error:
            raise CliError(str(error)) from None
    elif args.param is not None:
        raise CliError("--param with --resume: give the configuration file too, or neither")
    sweep_param: str = args.param or ""
    args.param = ()  # the sweep's NAME=v1,v2 is not a policy parameter of the base settings
    if args.resume is None:
        command = f"crs sweep {shlex.quote(str(args.policy_config))} --param {shlex.quote(sweep_param)}"
        settings, report = _new_report(args, "sweep", f"sweep-{name.replace('.', '_')}")
        saved = {
            "command": "sweep",
            "command_line": command + _flags(args),
            "configs": [saved_config(config) for config in configs],
            "sweep": {"parameter": name, "values": values},
            "disagreements": args.disagreements,
        }
    else:

        def check(saved: Mapping[str, Any]) -> None:
            if configs:
                _check_configs(configs, saved, [f"--param {sweep_param}"] * len(configs))

        settings, report, saved = _resumed_report(args, "sweep", check)
        configs = [SavedConfig(**config) for config in saved["configs"]]
    return _run_report(args, settings, report, saved, configs)


def _run_report(
    args: argparse.Namespace,
    settings: Settings,
    report: ReportFolder,
    saved: Mapping[str, Any],
    configs: Sequence[Any],
) -> int:
    """Load the data, run (or finish) the comparison into the report folder, write the report."""
    from crs.lab.compare import compare
    from crs.lab.report import write_comparison
    from crs.lab.sweep import Sweep, write_sweep

    folder = report.path
    with report, stop_on_sigterm():
        try:
            if settings.evaluate.engine == "ray":  # Ray installed, its cluster there: known before any work
                from crs.evaluation.ray_engine import check_ray_engine

                check_ray_engine(settings.evaluate.ray_address)
            dataset = load_data(settings, split=settings.data.split)
            report.save(saved, settings)
            with progress_bars(args.quiet) as progress:
                comparison = compare(configs, dataset, settings, progress, store=report)
            written = {}
            if saved.get("sweep"):
                parameter, values = saved["sweep"]["parameter"], saved["sweep"]["values"]
                written = write_sweep(Sweep(parameter, tuple(values), comparison), folder)
            # Last: table.json marks the report complete.
            write_comparison(
                comparison, folder, settings, saved["command_line"], saved["disagreements"], runs_kept=True
            )
        except KeyboardInterrupt:
            print(f"\ninterrupted: {_interrupted_note(report, saved)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except (ValueError, RunFolderError) as error:  # bad parameters or rules, a damaged saved run
            raise CliError(str(error)) from None
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
    if written:
        print(f"against {saved['sweep']['parameter']}: " + ", ".join(path.name for path in written.values()))
    return 0


def _interrupted_note(report: ReportFolder, saved: Mapping[str, Any]) -> str:
    folder = report.path
    if report.empty:
        return f"before the first conversation; nothing was saved in {folder}"
    runs = sorted((folder / "runs").iterdir()) if (folder / "runs").is_dir() else []
    finished = sum((run / "metrics.json").exists() for run in runs)
    partial = sum(
        (run / "transcripts.jsonl").read_bytes().count(b"\n")
        for run in runs
        if not (run / "metrics.json").exists() and (run / "transcripts.jsonl").exists()
    )
    return (
        f"{finished} of {len(saved['configs'])} configurations finished and {partial} conversations of "
        f"the next are saved in {folder}; finish the report with `crs {saved['command']} --resume {folder}`"
    )
