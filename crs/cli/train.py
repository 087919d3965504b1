"""`crs train`: the collaborative scorer, and what a policy learns, trained once and cached."""

from __future__ import annotations

import argparse
import time
from typing import Any

from crs.cli.common import CliError, add_data_flags, load_data, progress_bars, settings_from_args

FLAGS = {"data.dir": "data_dir", "data.dataset": "dataset", "paths.cache_dir": "cache_dir"}


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "train", help="train the collaborative scorer, or what a policy learns, and save it to the cache"
    )
    add_data_flags(parser)
    parser.add_argument("--dataset", help="dataset to train on (default: lastfm_star)")
    parser.add_argument("--scorer", choices=["bpr"], default="bpr")
    parser.add_argument(
        "--policy",
        help="also train what this policy learns (e.g. belief: its prior; on train and tuning pairs only)",
    )
    parser.add_argument("--retrain", action="store_true", help="train the policy even when a cached one fits")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from crs.factory import build_policy, build_scorer
    from crs.scoring import default_cache_dir, make_scorer, ranking_metrics
    from crs.settings import EvaluateSettings, check_value

    settings = settings_from_args(args, FLAGS)
    if args.policy is not None:
        check_value(EvaluateSettings, "policy", args.policy, "--policy")
    dataset = load_data(settings)
    cache_dir = settings.cache_dir or default_cache_dir()
    params = settings.scorer_params(args.scorer)
    started = time.perf_counter()
    with progress_bars(args.quiet) as progress:
        scorer = build_scorer(args.scorer, params, dataset, cache_dir, progress)
    print(
        f"{args.scorer} scorer for {dataset.name} ready in {time.perf_counter() - started:.1f} s "
        f"(cache: {cache_dir})"
    )
    if args.policy:
        started = time.perf_counter()
        policy_params = settings.policy_params(args.policy)
        with progress_bars(args.quiet) as progress:
            try:
                policy = build_policy(
                    args.policy, policy_params, dataset, scorer, cache_dir, progress, args.retrain
                )
            except ValueError as error:
                raise CliError(str(error)) from None
        trained = getattr(policy, "trained", None)
        if trained is None:
            print(f"policy {args.policy} learns nothing: ready in {time.perf_counter() - started:.1f} s")
        else:
            how = "loaded from the cache" if trained.loaded else "trained"
            print(f"policy {args.policy} {how} (training took {trained.train_seconds:.1f} s): {trained.path}")
    if "valid" in dataset.splits:
        for name, candidate in (
            ("popularity", make_scorer("popularity", dataset, None)),
            (args.scorer, scorer),
        ):
            metrics = ranking_metrics(candidate, dataset, split="valid")
            print(f"  valid {name:<10} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return 0
