"""`crs data validate|info`: check a catalog, count what a dataset holds."""

from __future__ import annotations

import argparse
from typing import Any

from crs.cli.common import CliError


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("data", help="inspect and validate datasets")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    validate = actions.add_parser("validate", help="check a catalog folder or a named dataset")
    validate.add_argument("path", help="a folder in the generic format, or lastfm | lastfm_star | movielens")
    validate.add_argument("--data-dir")
    info = actions.add_parser("info", help="counts of a dataset")
    info.add_argument("dataset")
    info.add_argument("--data-dir")
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
    raise CliError("choose a data action: validate or info (see `crs data --help`)")
