"""`crs evaluate`: simulated conversations, a table, and a run folder. A run with the LLM user
also shows how human its users talk (`crs simulate-check`'s comparison with real seekers), so its
scores are never read without it."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crs.cli.common import (
    CliError,
    add_data_flags,
    add_policy_flags,
    default_folder,
    load_data,
    progress_bars,
    resumed_with_flags,
    settings_from_args,
)

if TYPE_CHECKING:
    from crs.data import Dataset
    from crs.evaluation.fidelity import RunFidelity, Source
    from crs.evaluation.records import ConversationRecord
    from crs.evaluation.run_folder import RunFolder
    from crs.evaluation.runner import RunResult
    from crs.settings import Settings

EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl+C

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
    "evaluate.engine": "engine",
    "evaluate.ray_address": "ray_address",
    "evaluate.max_turns": "max_turns",
    "evaluate.answer_noise": "answer_noise",
    "evaluate.dont_know": "dont_know",
    "evaluate.patience": "patience",
    "paths.cache_dir": "cache_dir",
    "llm.backend": "llm_backend",
    "llm.url": "llm_url",
    "llm.model": "llm_model",
    "simulator.llm.mode": "llm_mode",
    "simulator.llm.phrasing": "llm_phrasing",
}


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="run simulated conversations and report SR@k, AT, hDCG (redial: rank movies in real dialogues, "
        "Recall@1/10/50)",
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crs.evaluation.fidelity import DEFAULT_REAL
    from crs.registry import SIMULATORS

    add_data_flags(parser)
    parser.add_argument("--dataset", help="lastfm | lastfm_star | movielens | redial | a catalog folder")
    parser.add_argument("--split", help="evaluation split (default: valid)")
    add_policy_flags(parser)
    parser.add_argument("--scorer", help="ranks recommended items: bpr (default) | popularity")
    parser.add_argument(
        "--simulator", help=f"one of: {', '.join(SIMULATORS.names())}, or package.module:factory"
    )
    add_llm_flags(parser)
    parser.add_argument(
        "--limit", type=int, help="first N shuffled target pairs (default: all; redial: first N dialogues)"
    )
    parser.add_argument(
        "--offset", type=int, help="skip the first N shuffled pairs (4000: tuning pairs only)"
    )
    parser.add_argument("--workers", type=int, help="processes (results do not depend on it)")
    add_engine_flags(parser)
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
    parser.add_argument(
        "--fidelity-against",
        choices=("redial", "inspired", "none"),
        default="redial",
        help="--simulator llm: after the run, compare the users' words with these real seekers' "
        "(as `crs simulate-check`; default redial; none: skip)",
    )
    parser.add_argument(
        "--fidelity-real",
        type=int,
        default=DEFAULT_REAL,
        metavar="N",
        help=f"--simulator llm: real messages sampled for that comparison (default {DEFAULT_REAL})",
    )
    parser.add_argument("--out", type=Path, help="run folder (default: runs/DATASET-POLICY-TIME)")
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="RUN",
        help="finish an interrupted run in its folder, with its saved settings (--workers may change)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_engine_flags(parser: argparse.ArgumentParser) -> None:
    """Where the conversations run (`crs evaluate`, `crs compare`, `crs sweep`)."""
    parser.add_argument(
        "--engine",
        help='local: a pool of --workers processes (default) | ray: Ray tasks (pip install -e ".[ray]"); '
        "results do not depend on it",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help='--engine ray: "" starts a local Ray instance with --workers CPUs (default) | auto: the '
        "cluster this machine is part of | HOST:PORT (a head node) | ray://HOST:PORT (Ray Client)",
    )


def add_llm_flags(parser: argparse._ActionsContainer) -> None:
    """The LLM user's model (`crs evaluate`, and `crs simulate-check` when it runs the conversations)."""
    parser.add_argument(
        "--llm-backend", help="--simulator llm: local (default) | remote | none (templates only)"
    )
    parser.add_argument(
        "--llm-url",
        help="--simulator llm, remote: base URL of an OpenAI-compatible server, or several of one model "
        "separated by commas (requests are spread over them)",
    )
    parser.add_argument("--llm-model", help="--simulator llm, remote: model name sent with each request")
    parser.add_argument(
        "--llm-mode",
        help="--simulator llm: phrase (code decides, the model words it) | decide (the model decides)",
    )
    parser.add_argument(
        "--llm-phrasing",
        help="--simulator llm, phrase mode: fixed (one fixed prompt, default) | seekers (in the manner of "
        "real ReDial seekers: retrieved examples, sampled words, their greetings, titles and thanks)",
    )


def default_args() -> argparse.Namespace:
    """Every `crs evaluate` flag at its default: a run that another command starts and adjusts."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    return parser.parse_args([])


# Flags a resumed run may change: where things are and how many processes, not what is measured.


def run(args: argparse.Namespace, require_fidelity: bool = False) -> int:
    """`require_fidelity`: a missing source of real seekers is an error, not a note (`crs
    simulate-check` runs the conversations for that comparison)."""
    from crs.evaluation.fidelity import TooFewMessagesError
    from crs.evaluation.report import format_table
    from crs.evaluation.run_folder import RunFolder, RunFolderError
    from crs.settings import run_spec

    done: list[ConversationRecord] = []
    try:
        if args.resume is not None:
            folder = args.resume
            run_folder, saved, done = RunFolder.resume(folder)
            settings = resumed_settings(args, saved, run_folder)
        else:
            settings = settings_from_args(args, FLAGS)
            # ReDial's real dialogues are ranked, not simulated: its runs are named by the ranker.
            ranked_by = "context" if settings.data.dataset == "redial" else settings.evaluate.policy
            folder = args.out or default_folder(settings.data.dataset, ranked_by)
            run_folder = RunFolder.create(folder)  # before any work: fail fast, not after the run
    except RunFolderError as error:
        raise CliError(str(error)) from None
    with run_folder, stop_on_sigterm():
        spec = run_spec(settings)
        started = time.perf_counter()
        dataset = load_data(settings, split=spec.split)
        from crs.data.redial_dataset import DialogueDataset

        if isinstance(dataset, DialogueDataset):
            if args.resume is not None:
                raise CliError("a ReDial run takes about a minute: start it again instead of --resume")
            return run_dialogues(args, settings, dataset, spec.split, run_folder, started)
        real, unchecked = real_sample(args, settings, require_fidelity)  # before the run: fail fast
        try:
            result = simulate(args, settings, dataset, run_folder, done, started)
        except KeyboardInterrupt:
            print(f"\ninterrupted: {interrupted_note(folder)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        summary = result.summary()
        run_folder.write_metrics(summary)
        plot_run(result, run_folder.plot_path)
        print(
            format_table(
                [{"policy": spec.policy, "dataset": dataset.name, **summary}],
                label_keys=("dataset", "policy"),
            )
        )
        terminations = ", ".join(f"{k} {v}" for k, v in sorted(summary["terminations"].items()))
        print(f"\nterminations: {terminations}")
        if done:
            print(
                f"resumed: {len(done)} conversations were saved, {len(result.records) - len(done)} played now"
            )
        if real is not None:
            try:
                check = check_fidelity(
                    folder, args.fidelity_against, real, settings.data_dir, spec.seed, dataset
                )
            except TooFewMessagesError as error:
                if require_fidelity:
                    raise CliError(f"{error}: run more conversations (--limit)") from None
                print(f"\nfidelity: skipped, {error}")
            except ValueError as error:
                raise CliError(str(error)) from None
            except KeyboardInterrupt:  # the run itself is complete and saved
                print(f"\ninterrupted: check the run with `crs simulate-check {folder}`", file=sys.stderr)
                return EXIT_INTERRUPTED
            else:
                summary["fidelity"] = check.summary()
                run_folder.write_metrics(summary)
        elif unchecked:
            print(f"\nfidelity: skipped, {unchecked}")
    print(f"run folder: {folder}  (transcripts, metrics.json, success_by_turn.png; `crs view {folder}`)")
    return 0


def real_sample(
    args: argparse.Namespace, settings: Settings, required: bool
) -> tuple[list[str] | None, str | None]:
    """The real seekers' messages an LLM-user run is compared with, read before the run so that a
    missing source is known before the conversations, not after: (messages, None), or (None, why
    there are none). Other simulators write no words: (None, None)."""
    from crs.data.errors import DataNotFoundError
    from crs.data.location import resolve_data_dir
    from crs.evaluation.fidelity import MIN_MESSAGES, real_messages

    if settings.evaluate.simulator != "llm" or args.fidelity_against == "none":
        return None, None
    if args.fidelity_real < MIN_MESSAGES:
        raise CliError(f"--fidelity-real must be at least {MIN_MESSAGES}, got {args.fidelity_real}")
    try:
        data_dir = resolve_data_dir(settings.data_dir)
        sample = real_messages(
            data_dir, args.fidelity_against, limit=args.fidelity_real, seed=settings.evaluate.seed
        )
    except DataNotFoundError as error:
        if required:
            raise
        return None, str(error)
    return sample, None


def check_fidelity(
    folder: Path,
    against: Source,
    real: Sequence[str],
    data_dir: Path | str | None,
    seed: int,
    dataset: Dataset | None = None,
) -> RunFidelity:
    """What `crs simulate-check` shows of a run folder, and what `crs evaluate --simulator llm`
    shows after its run: the users' words against `real` seekers', printed and written into the
    folder (`crs.evaluation.fidelity.check_run`; its errors are the caller's to word)."""
    from crs.evaluation.fidelity import check_run, save_run_fidelity

    check = check_run(folder, against, real, seed=seed, dataset=dataset, data_dir=data_dir)
    data, plot = save_run_fidelity(check, folder)
    print(
        f"\nfidelity: {check.simulated.profile.messages} simulated messages against {len(real)} real "
        f"{against} seekers' (seed {seed}); classifier AUC 0.5: cannot be told apart, 1.0: always"
    )
    print(check.tables())
    print(f"\nwritten: {data}, {plot}")
    return check


def interrupted_note(folder: Path) -> str:
    if not (folder / "config.json").exists():
        return f"before the first conversation; nothing was saved in {folder}"
    transcripts = folder / "transcripts.jsonl"
    saved = transcripts.read_bytes().count(b"\n") if transcripts.exists() else 0
    return (
        f"{saved} finished conversations are saved in {folder}; "
        f"finish the run with `crs evaluate --resume {folder}`"
    )


def simulate(
    args: argparse.Namespace,
    settings: Settings,
    dataset: Dataset,
    run_folder: RunFolder,
    done: Sequence[ConversationRecord],
    started: float,
) -> RunResult:
    """Build the policy, save the config, then play the conversations into the run folder."""
    from crs.evaluation.runner import evaluate
    from crs.factory import policy_for_run
    from crs.llm.base import LLMError
    from crs.settings import run_spec

    spec = run_spec(settings)
    user = spec.llm_user
    if (
        spec.simulator == "llm"
        and spec.llm.backend != "none"
        and user.mode == "phrase"
        and user.phrasing == "seekers"
    ):
        from crs.chat import domain_of

        if domain_of(dataset) != "movies":
            raise CliError(
                f"--llm-phrasing seekers borrows the words of ReDial's movie seekers; {dataset.name} is "
                f"{domain_of(dataset)}: use --llm-phrasing fixed"
            )
    if args.policy_config is not None:  # names the file in errors about the dataset's attributes
        from crs.policy_config import load_policy_config

        load_policy_config(args.policy_config).check(dataset)
    with progress_bars(args.quiet) as progress:
        try:
            if spec.engine == "ray":  # Ray installed, its cluster there: known before any training
                from crs.evaluation.ray_engine import check_ray_engine

                check_ray_engine(spec.ray_address)
            policy = policy_for_run(spec, dataset, settings.cache_dir, progress)
            if not done:
                config = settings.as_dict()
                config["resolved"] = {
                    "dataset_source": str(dataset.source),
                    "load_seconds": round(time.perf_counter() - started, 3),
                }
                run_folder.write_config(config)
            return evaluate(
                spec, dataset, policy, progress, settings.cache_dir, on_record=run_folder.append, done=done
            )
        except LLMError as error:  # the simulated user's model failed (unreachable, bad file)
            raise CliError(str(error)) from None
        except ValueError as error:
            raise CliError(str(error)) from None


def resumed_settings(args: argparse.Namespace, saved: dict[str, Any], run_folder: RunFolder) -> Settings:
    """The interrupted run's own settings; a flag that would change what it measures is refused."""
    from crs.settings import Settings

    if args.out is not None or args.config is not None or args.policy_config is not None or args.param:
        run_folder.close()
        raise CliError(
            "--resume continues a run with its saved settings: drop --out, --config, "
            "--policy-config and --param"
        )
    try:
        settings = Settings.from_dict(saved, where=str(run_folder.path / "config.json"))
    except ValueError as error:
        run_folder.close()
        raise CliError(str(error)) from None
    try:
        return resumed_with_flags(settings, args, FLAGS, "run")
    except CliError:
        run_folder.close()
        raise


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM (a `kill`, a scheduler's stop) stops the run as Ctrl+C does: what finished is kept."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def plot_run(result: RunResult, path: Path) -> None:
    from crs.evaluation.report import plot_success_by_turn

    spec = result.spec
    plot_success_by_turn(
        {spec.policy: result.metrics.success_by_turn},
        path,
        f"{spec.dataset} / {spec.split}: {len(result.records)} conversations",
    )


def run_dialogues(
    args: argparse.Namespace,
    settings: Settings,
    dataset: Any,
    split: str,
    run_folder: RunFolder,
    started: float,
) -> int:
    """Real dialogues (ReDial): rank every movie at each recommendation, the standard protocol."""
    from crs.evaluation.redial_run import evaluate_redial, format_metrics, write_redial_run
    from crs.scoring.context_ranker import open_context_ranker

    folder = run_folder.path
    ignored = [
        flag
        for flag, value in (
            ("--policy", args.policy),
            ("--simulator", args.simulator),
            ("--scorer", args.scorer),
            ("--max-turns", args.max_turns),
            ("--engine", args.engine),
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
