"""`crs data validate|info|synth`: check a catalog, count what a dataset holds, write a synthetic
catalog."""

from __future__ import annotations

import argparse
from typing import Any

from crs.cli.common import CliError, flag_name, progress_bars


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("data", help="inspect and validate datasets")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    validate = actions.add_parser("validate", help="check a catalog folder or a named dataset")
    validate.add_argument("path", help="a folder in the generic format, or lastfm | lastfm_star | movielens")
    validate.add_argument("--data-dir")
    info = actions.add_parser("info", help="counts of a dataset")
    info.add_argument("dataset")
    info.add_argument("--data-dir")
    synth = actions.add_parser(
        "synth",
        help="write a synthetic catalog in the generic format (crs/data/synth.py describes its structure)",
    )
    synth.add_argument(
        "out", metavar="OUT", help="the folder to write (created; must be empty unless --force)"
    )
    # Defaults live in crs.data.synth.SynthSpec: a flag left out keeps the spec's default.
    synth.add_argument("--items", type=int, help="number of items (default 10000)")
    synth.add_argument("--attributes", type=int, help="number of attributes (default 1000)")
    synth.add_argument("--users", type=int, help="number of users (default: items / 10, at least 20)")
    synth.add_argument(
        "--seed", type=int, help="random seed: the same seed writes the same bytes (default 0)"
    )
    synth.add_argument(
        "--interactions-per-user", type=int, help="mean interactions drawn per user (default 20)"
    )
    synth.add_argument(
        "--friends-per-user", type=int, help="mean friendships each user starts; mutual (default 3)"
    )
    synth.add_argument("--force", action="store_true", help="write into OUT even when it holds files")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.data_command == "validate":
        from crs.data.validate import format_report, validate_path

        problems = validate_path(args.path, args.data_dir)
        print(format_report(problems, args.path))
        return 1 if problems else 0
    if args.data_command == "info":
        from crs.data import load_dataset

        dataset = load_dataset(args.dataset, args.data_dir)
        catalog = dataset.catalog
        per_item = sum(len(item.attributes) for item in catalog.items) / max(catalog.n_items, 1)
        print(f"{dataset.name} ({dataset.source})")
        print(
            f"  items {catalog.n_items}, attributes {catalog.n_attributes} ({per_item:.2f} per item), "
            f"users {len(dataset.users)}"
        )
        for name, split in dataset.splits.items():
            print(f"  split {name}: {len(split.pairs())} interactions of {len(split.by_user)} users")
        for name, path in dataset.missing_splits.items():
            print(f"  split {name}: absent ({path})")
        coverage = getattr(dataset, "coverage", None)
        if coverage:  # a catalog linked from several sources (redial): how much each link covers
            movies = coverage["movies"]

            def share(key: str) -> str:
                return f"{coverage[key]:,} ({100 * coverage[key] / max(movies, 1):.0f} %)"

            print(f"  movies {movies:,}: with a year {share('with_year')}")
            print(f"    linked to MovieLens (genres, ratings): {share('linked_movielens')}")
            print(
                f"    linked to a description (director, cast, plot): {share('linked_descriptions')} "
                f"of {coverage['description_lines']:,} description lines"
            )
            print(f"    with genres {share('with_genres')}, with people {share('with_people')}")
        return 0
    if args.data_command == "synth":
        return _synth(args)
    raise CliError("choose a data action: validate, info or synth (see `crs data --help`)")


SYNTH_FLAGS = ("items", "attributes", "users", "seed", "interactions_per_user", "friends_per_user")


def _synth(args: argparse.Namespace) -> int:
    from pathlib import Path

    from crs.data.synth import CATALOG_FILES, SynthSpec, SynthSpecError, synthesize

    try:
        spec = SynthSpec(
            **{name: getattr(args, name) for name in SYNTH_FLAGS if getattr(args, name) is not None}
        )
    except SynthSpecError as error:
        raise CliError(f"{flag_name(error.field)} {error.reason}") from None
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise CliError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise CliError(
            f"{out} is not empty: pass --force to write the catalog into it "
            f"(replacing {', '.join(CATALOG_FILES)})"
        )
    try:
        with progress_bars(args.quiet) as progress:
            summary = synthesize(out, spec, progress)
    except OSError as error:
        raise CliError(f"cannot write {out}: {error.strerror or error}") from None
    splits = " / ".join(f"{name} {count:,}" for name, count in summary.interactions.items())
    size = sum(summary.bytes.values()) / 1e6
    print(
        f"{out}: {summary.items:,} items, {summary.attributes:,} attributes, {summary.users:,} users, "
        f"interactions {splits}, {summary.friendships:,} friendships; "
        f"{size:,.1f} MB in {summary.seconds:.1f} s"
    )
    return 0
