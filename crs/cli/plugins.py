"""`crs policies` lists the plug-ins; `crs check` runs the conformance check on a policy."""

from __future__ import annotations

import argparse
from typing import Any

from crs.cli.common import (
    CliError,
    add_data_flags,
    add_policy_flags,
    load_data,
    progress_bars,
    settings_from_args,
)

CHECK_FLAGS = {
    "data.dir": "data_dir",
    "data.dataset": "dataset",
    "data.split": "split",
    "evaluate.policy": "policy",
    "evaluate.scorer": "scorer",
    "paths.cache_dir": "cache_dir",
}


def add_parsers(commands: Any) -> None:
    policies = commands.add_parser("policies", help="list the registered policies, simulators and datasets")
    policies.set_defaults(handler=run_policies)

    check = commands.add_parser(
        "check", help="run the conformance check on a policy (built-in, plug-in, or package.module:Class)"
    )
    add_data_flags(check)
    check.add_argument("--dataset", help="lastfm | lastfm_star | movielens | a catalog folder")
    check.add_argument("--split", help="split whose pairs are the targets (default: valid)")
    add_policy_flags(check)
    check.add_argument("--scorer", help="bpr (default) | popularity")
    check.add_argument(
        "--conversations", type=int, default=40, help="targets per scenario (default 40; 4 scenarios)"
    )
    check.set_defaults(handler=run_check)


def run_policies(_: argparse.Namespace) -> int:
    from crs.registry import DATASETS, POLICIES, SIMULATORS

    for title, registry in (("policies", POLICIES), ("simulators", SIMULATORS), ("datasets", DATASETS)):
        print(f"{title}:")
        for entry in registry:
            origin = "" if entry.origin == "built-in" else f"  [{entry.origin}]"
            print(f"  {entry.name:<14} {entry.description}{origin}")
    print(
        "\nA plug-in outside crs is named package.module:Class, or installed with an entry point"
        " (docs/plugins.md)."
    )
    return 0


def run_check(args: argparse.Namespace) -> int:
    from crs.factory import policy_for_run
    from crs.settings import run_spec
    from policy.conformance import RULES, check_policy

    if args.conversations < 1:
        raise CliError(f"--conversations must be at least 1, got {args.conversations}")
    settings = settings_from_args(args, CHECK_FLAGS)
    spec = run_spec(settings)
    dataset = load_data(settings, split=spec.split)
    with progress_bars() as progress:
        try:
            policy = policy_for_run(spec, dataset, settings.cache_dir, progress)
        except ValueError as error:
            raise CliError(str(error)) from None
    list_size = int(spec.policy_params.get("list_size", 10))
    violations = check_policy(policy, dataset, spec.split, args.conversations, list_size=list_size)
    by_rule = {rule: [v for v in violations if v.rule == rule] for rule in RULES}
    print(
        f"conformance of {spec.policy} on {dataset.name}/{spec.split} "
        f"({args.conversations} targets x 4 scenarios):"
    )
    for rule, found in by_rule.items():
        print(f"  {'ok  ' if not found else 'FAIL'} {rule}" + (f": {len(found)} violations" if found else ""))
    for violation in violations[:20]:
        print(f"    {violation}")
    if len(violations) > 20:
        print(f"    ... and {len(violations) - 20} more")
    return 1 if violations else 0
