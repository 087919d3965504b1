"""`crs evaluate`: simulated conversations, a table, and a run folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from crs.cli.common import (
    CliError,
    add_data_flags,
    add_policy_flags,
    default_folder,
    load_data,
    progress_bars,
    settings_from_args,
)

FLAGS = {
    "data.dir": "data_dir",
    "data.dataset": "dataset",
    "data.split": "split",
    "evaluate.policy": "policy",
    "evaluate.scorer": "scorer",
    "evaluate.simulator": "simulator",
    "evaluate.limit": "limit",
    "evaluate.offset": "offset",
    "evaluate.seed": "seed",
    "evaluate.workers": "workers",
    "evaluate.max_turns": "max_turns",
    "evaluate.answer_noise": "answer_noise",
    "evaluate.dont_know": "dont_know",
    "evaluate.patience": "patience",
    "paths.cache_dir": "cache_dir",
    "llm.backend": "llm_backend",
    "llm.url": "llm_url",
    "llm.model": "llm_model",
    "simulator.llm.mode": "llm_mode",
}


def add_parser(commands: Any) -> None:
    from crs.registry import SIMULATORS

    parser = commands.add_parser(
        "evaluate",
        help="run simulated conversations and report SR@k, AT, hDCG (redial: rank movies in real dialogues, "
        "Recall@1/10/50)",
    )
    add_data_flags(parser)
    parser.add_argument("--dataset", help="lastfm | lastfm_star | movielens | redial | a catalog folder")
    parser.add_argument("--split", help="evaluation split (default: valid)")
    add_policy_flags(parser)
    parser.add_argument("--scorer", help="ranks recommended items: bpr (default) | popularity")
    parser.add_argument(
        "--simulator", help=f"one of: {', '.join(SIMULATORS.names())}, or package.module:factory"
    )
    parser.add_argument(
        "--llm-backend", help="--simulator llm: local (default) | remote | none (templates only)"
    )
    parser.add_argument("--llm-url", help="--simulator llm, remote: base URL of an OpenAI-compatible server")
    parser.add_argument("--llm-model", help="--simulator llm, remote: model name sent with each request")
    parser.add_argument(
        "--llm-mode",
        help="--simulator llm: phrase (code decides, the model words it) | decide (the model decides)",
    )
    parser.add_argument(
        "--limit", type=int, help="first N shuffled target pairs (default: all; redial: first N dialogues)"
    )
    parser.add_argument(
        "--offset", type=int, help="skip the first N shuffled pairs (4000: tuning pairs only)"
    )
    parser.add_argument("--workers", type=int, help="processes (results do not depend on it)")
    parser.add_argument("--seed", type=int, help="seed of every random choice (default: 0)")
    parser.add_argument("--max-turns", type=int, help="turns per conversation, opening included")
    parser.add_argument("--answer-noise", type=float, help="flip each yes/no answer with probability P")
    parser.add_argument("--dont-know", type=float, help='answer "don\'t know" with probability P')
    parser.add_argument("--patience", type=int, help="the user quits after N turns (0: never)")
    parser.add_argument(
        "--without-retriever",
        action="store_true",
        help="--dataset redial: rank without the text retriever (no embedding model; weaker, faster)",
    )
    parser.add_argument("--out", type=Path, help="run folder (default: runs/DATASET-POLICY-TIME)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from crs.evaluation.report import check_new_run_folder, format_table, write_run
    from crs.evaluation.runner import evaluate
    from crs.factory import policy_for_run
    from crs.llm.base import LLMError
    from crs.settings import run_spec

    settings = settings_from_args(args, FLAGS)
    spec = run_spec(settings)
    folder = args.out or default_folder(spec.dataset, spec.policy)
    check_new_run_folder(folder)  # before any work: fail fast rather than after the run

    started = time.perf_counter()
    dataset = load_data(settings, split=spec.split)
    from crs.data.redial_dataset import DialogueDataset

    if isinstance(dataset, DialogueDataset):
        return run_dialogues(args, settings, dataset, spec.split, folder, started)
    if args.policy_config is not None:  # names the file in errors about the dataset's attributes
        from crs.policy_config import load_policy_config

        load_policy_config(args.policy_config).check(dataset)
    with progress_bars(args.quiet) as progress:
        try:
            policy = policy_for_run(spec, dataset, settings.cache_dir, progress)
            load_seconds = time.perf_counter() - started
            result = evaluate(spec, dataset, policy, progress, settings.cache_dir)
        except LLMError as error:  # the simulated user's model failed (unreachable, bad file)
            raise CliError(str(error)) from None
        except ValueError as error:
            raise CliError(str(error)) from None

    config = settings.as_dict()
    config["resolved"] = {
        "dataset_source": str(dataset.source),
        "conversations": len(result.records),
        "load_seconds": round(load_seconds, 3),
    }
    paths = write_run(result, folder, config)
    summary = result.summary()
    print(
        format_table(
            [{"policy": spec.policy, "dataset": dataset.name, **summary}], label_keys=("dataset", "policy")
        )
    )
    terminations = ", ".join(f"{k} {v}" for k, v in sorted(summary["terminations"].items()))
    print(f"\nterminations: {terminations}")
    print(f"run folder: {folder}  (transcripts, metrics.json, {paths['plot'].name}; `crs view {folder}`)")
    return 0


def run_dialogues(
    args: argparse.Namespace, settings: Any, dataset: Any, split: str, folder: Path, started: float
) -> int:
    """Real dialogues (ReDial): rank every movie at each recommendation, the standard protocol."""
    from crs.evaluation.redial_run import evaluate_redial, format_metrics, write_redial_run
    from crs.scoring.context_ranker import open_context_ranker

    if args.out is None:
        folder = default_folder(dataset.name, "context")
    ignored = [
        flag
        for flag, value in (
            ("--policy", args.policy),
            ("--simulator", args.simulator),
            ("--scorer", args.scorer),
            ("--max-turns", args.max_turns),
        )
        if value is not None
    ]
    if ignored:
        raise CliError(
            f"{', '.join(ignored)} do not apply to {dataset.name}: its conversations are real dialogues, "
            "ranked by the context ranker (see `crs evaluate --help`)"
        )
    with progress_bars(args.quiet) as progress:
        ranker = open_context_ranker(
            dataset, settings.cache_dir, use_retriever=not args.without_retriever, progress=progress
        )
        load_seconds = time.perf_counter() - started
        try:
            result = evaluate_redial(ranker, dataset, split, settings.evaluate.limit or None, progress)
        except ValueError as error:
            raise CliError(str(error)) from None
    config = settings.as_dict()
    config["resolved"] = {
        "dataset_source": str(dataset.source),
        "protocol": "redial (all / new items)",
        "ranker": "context",
        "retriever": not args.without_retriever,
        "weights": ranker.weights,
        "samples": len(result.rows),
        "load_seconds": round(load_seconds, 3),
        "rank_seconds": round(result.seconds, 3),
    }
    write_redial_run(result, folder, config)
    print(f"{dataset.name} {split}: {len(result.rows)} samples, ranked in {result.seconds:.1f} s")
    print(format_metrics(result.metrics))
    print(f"run folder: {folder}  (samples.jsonl, metrics.json; `crs view {folder}`)")
    return 0
