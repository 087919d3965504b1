"""The `crs` command: evaluate, view, train, data, policies.

This is the only place that reads the command line and the environment, and the only place that
prints. Every expected failure (missing data, bad configuration, an existing run folder) ends
with one `error:` line and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from crs.config import ConfigError, load_config
from crs.data.errors import DataError
from crs.lab.commands import add_parsers as _add_lab_parsers
from crs.lab.commands import cmd_compare, cmd_sweep
from crs.llm.base import LLMError
from crs.registry import POLICIES, SIMULATORS, UnknownNameError

EXIT_USAGE = 2


class CliError(Exception):
    """An error whose message is shown to the user as is."""


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {text}")
    return value


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number of at least {minimum}, got {text}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _parse_param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    import tomllib

    try:  # TOML literal syntax: 0.5, true, "text"; anything else is taken as a string
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return name, value


def _add_data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (default: $CRS_DATA_DIR, then ../shared/data)")
    parser.add_argument("--config", type=Path, help="a TOML file overriding crs/defaults.toml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crs", description="Conversational recommender system.")
    parser.add_argument("--version", action="version", version=f"crs {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    evaluate = commands.add_parser("evaluate", help="run simulated conversations and report SR@k, AT, hDCG")
    _add_data_flags(evaluate)
    evaluate.add_argument("--dataset", help="lastfm | lastfm_star | movielens | a catalog folder")
    evaluate.add_argument("--split", help="evaluation split (default: valid)")
    evaluate.add_argument("--policy", help=f"one of: {', '.join(POLICIES.names())}")
    evaluate.add_argument(
        "--param",
        action="append",
        type=_parse_param,
        default=[],
        metavar="NAME=VALUE",
        help="a policy parameter (repeatable), e.g. --param list_size=5",
    )
    evaluate.add_argument(
        "--policy-config",
        type=Path,
        metavar="FILE",
        help="a policy configuration (policy, [params], [questions]); see configs/policy.example.toml",
    )
    evaluate.add_argument("--scorer", choices=["popularity", "bpr"], help="ranks recommended items")
    evaluate.add_argument("--simulator", help=f"one of: {', '.join(SIMULATORS.names())}")
    evaluate.add_argument(
        "--llm-backend",
        choices=["local", "remote"],
        help="--simulator llm: the language model (default: local)",
    )
    evaluate.add_argument(
        "--llm-url", help="--simulator llm, remote: base URL of an OpenAI-compatible server"
    )
    evaluate.add_argument("--llm-model", help="--simulator llm, remote: model name sent with each request")
    evaluate.add_argument(
        "--llm-mode",
        choices=["phrase", "decide"],
        help="--simulator llm: phrase (code decides, the model words it) | decide (the model decides)",
    )
    evaluate.add_argument("--limit", type=_positive_int, help="first N shuffled target pairs (default: all)")
    evaluate.add_argument(
        "--offset", type=_non_negative_int, help="skip the first N shuffled pairs (4000: tuning pairs only)"
    )
    evaluate.add_argument("--workers", type=_positive_int, help="processes (results do not depend on it)")
    evaluate.add_argument("--seed", type=int, help="seed of every random choice (default: 0)")
    evaluate.add_argument("--max-turns", type=_positive_int, help="turns per conversation, opening included")
    evaluate.add_argument(
        "--answer-noise", type=_probability, help="flip each yes/no answer with probability P"
    )
    evaluate.add_argument("--dont-know", type=_probability, help='answer "don\'t know" with probability P')
    evaluate.add_argument("--patience", type=_positive_int, help="the user quits after N turns")
    evaluate.add_argument("--out", type=Path, help="run folder (default: runs/DATASET-POLICY-TIME)")
    evaluate.add_argument("--cache-dir", help="where trained models are kept (default: ~/.cache/crs)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")

    view = commands.add_parser("view", help="show a run folder: metrics and conversations")
    view.add_argument("run", type=Path, help="a run folder written by `crs evaluate`")
    view.add_argument(
        "--conversation",
        type=int,
        action="append",
        metavar="ID",
        help="print this conversation turn by turn (repeatable)",
    )
    view.add_argument(
        "--failures", type=int, default=0, metavar="N", help="print the first N failed conversations"
    )
    view.add_argument("--explain", action="store_true", help="explain each shown success by its graph path")
    view.add_argument(
        "--why", action="store_true", help="ask the run's policy why it took each action (e.g. belief)"
    )
    view.add_argument("--data-dir", help="data directory, when not the one the run used")

    train = commands.add_parser(
        "train", help="train the collaborative scorer, or what a policy learns, and save it to the cache"
    )
    _add_data_flags(train)
    train.add_argument("--dataset", help="dataset to train on (default: lastfm_star)")
    train.add_argument("--scorer", choices=["bpr"], default="bpr")
    train.add_argument(
        "--policy",
        help="also train what this policy learns (e.g. belief: its prior; on train and tuning pairs only)",
    )
    train.add_argument("--retrain", action="store_true", help="train the policy even when a cached one fits")
    train.add_argument("--cache-dir", help="where the model is saved (default: ~/.cache/crs)")
    train.add_argument("--quiet", action="store_true")

    chat = commands.add_parser("chat", help="chat in the browser (Gradio, on 127.0.0.1)")
    _add_data_flags(chat)
    chat.add_argument("--dataset", default=None, help="catalog to chat about (default: movielens)")
    chat.add_argument("--policy", help=f"one of: {', '.join(POLICIES.names())} (default: belief)")
    chat.add_argument(
        "--policy-config",
        type=Path,
        metavar="FILE",
        help="a policy configuration (see configs/policy.example.toml)",
    )
    chat.add_argument("--port", type=_positive_int, help="port (default: the first free one from 7860)")
    chat.add_argument("--cache-dir", help="where trained models are kept (default: ~/.cache/crs)")
    chat.add_argument(
        "--no-retriever",
        action="store_true",
        help="skip the embedding retriever (its first build embeds the whole catalog: ~1 minute)",
    )

    data = commands.add_parser("data", help="inspect and validate datasets")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION")
    validate = data_commands.add_parser("validate", help="check a catalog folder or a named dataset")
    validate.add_argument("path", help="a folder in the generic format, or lastfm | lastfm_star | movielens")
    validate.add_argument("--data-dir")
    info = data_commands.add_parser("info", help="counts of a dataset")
    info.add_argument("dataset")
    info.add_argument("--data-dir")

    _add_lab_parsers(commands, _positive_int)  # compare, sweep (crs/lab/commands.py)
    commands.add_parser("policies", help="list the registered policies and simulators")
    return parser


def _version() -> str:
    from crs import __version__

    return __version__


def _progress_bar(total: int, description: str, quiet: bool, unit: str = "it") -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, disable=quiet, file=sys.stderr, mininterval=0.5)


@contextlib.contextmanager
def _lazy_progress(description: str, unit: str, quiet: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A `progress(done, total)` callback whose bar appears only once there is progress to show."""
    bars: list[Any] = []

    def on_progress(done: int, total: int) -> None:
        if not bars:
            bars.append(_progress_bar(total, description, quiet, unit=unit))
        bars[0].total = total
        bars[0].update(done - bars[0].n)

    try:
        yield on_progress
    finally:
        for bar in bars:
            bar.close()


@contextlib.contextmanager
def _training_context(cache_dir: Path | None, quiet: bool, retrain: bool = False) -> Iterator[Any]:
    """A TrainingContext whose progress drives a bar, opened only once something actually trains."""
    from policy.learning import TrainingContext

    bars: list[Any] = []

    def on_progress(stage: str, fraction: float) -> None:
        if not bars:
            bars.append(_progress_bar(100, stage, quiet, unit="%"))
        bar = bars[0]
        bar.set_description(stage, refresh=False)
        bar.update(round(100 * fraction) - bar.n)

    try:
        yield TrainingContext(cache_dir, on_progress, retrain)
    finally:
        for bar in bars:
            bar.close()


def _resolve_evaluate_config(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "data.dir": args.data_dir,
        "data.dataset": args.dataset,
        "data.split": args.split,
        "evaluate.policy": args.policy,
        "evaluate.scorer": args.scorer,
        "evaluate.simulator": args.simulator,
        "evaluate.limit": args.limit,
        "evaluate.offset": args.offset,
        "evaluate.seed": args.seed,
        "evaluate.workers": args.workers,
        "evaluate.max_turns": args.max_turns,
        "evaluate.answer_noise": args.answer_noise,
        "evaluate.dont_know": args.dont_know,
        "evaluate.patience": args.patience,
        "paths.cache_dir": args.cache_dir,
        "llm.backend": args.llm_backend,
        "llm.url": args.llm_url,
        "llm.model": args.llm_model,
        "simulator.llm.mode": args.llm_mode,
    }
    config = load_config(args.config, overrides)
    _apply_policy_config(config, "evaluate", args.policy, args.policy_config)
    policy = config["evaluate"]["policy"]
    params = config["policy"].setdefault(policy, {})
    for name, value in args.param:
        params[name] = value
    return config


def _apply_policy_config(config: dict[str, Any], section: str, flag: str | None, path: Path | None) -> Any:
    """Put a --policy-config file into the resolved configuration: its policy, its [params] over
    the [policy.<name>] defaults (flags still win: --param comes after), its question rules."""
    if path is None:
        return None
    from crs.lab.config import load_policy_config

    policy_config = load_policy_config(path)
    if flag and flag != policy_config.policy:
        raise CliError(
            f"--policy {flag} conflicts with {path}, which configures policy {policy_config.policy!r}"
        )
    config[section]["policy"] = policy_config.policy
    params = config["policy"].setdefault(policy_config.policy, {})
    params.update(policy_config.params)
    if "questions" in policy_config.policy_params:
        params["questions"] = policy_config.policy_params["questions"]
    config["policy_config"] = {
        "label": policy_config.label,
        "source": str(path),
        "text": policy_config.to_toml(),
    }
    return policy_config


def _simulator_params(config: dict[str, Any], simulator: str) -> dict[str, Any]:
    """What the simulator needs beyond the protocol: the LLM user's [simulator.llm] and [llm]."""
    if simulator != "llm":
        return {}
    cache = config["paths"]["cache_dir"]
    return {**config["simulator"]["llm"], "llm": dict(config["llm"]), "cache_dir": cache or None}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from crs.data import load_dataset
    from crs.evaluation.report import check_new_run_folder, format_table, write_run
    from crs.evaluation.runner import RunSpec, build_policy, evaluate

    config = _resolve_evaluate_config(args)
    data, run = config["data"], config["evaluate"]
    try:
        spec = RunSpec(
            dataset=data["dataset"],
            split=data["split"],
            policy=run["policy"],
            policy_params=config["policy"].get(run["policy"], {}),
            scorer=run["scorer"],
            scorer_params=config["scorer"].get(run["scorer"], {}),
            simulator=run["simulator"],
            limit=run["limit"] or None,
            offset=run["offset"],
            seed=run["seed"],
            workers=run["workers"],
            max_turns=run["max_turns"],
            answer_noise=run["answer_noise"],
            dont_know=run["dont_know"],
            patience=run["patience"] or None,
            simulator_params=_simulator_params(config, run["simulator"]),
        )
    except ValueError as error:
        raise CliError(str(error)) from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = args.out or Path("runs") / f"{spec.dataset.replace('/', '_')}-{spec.policy}-{stamp}"
    check_new_run_folder(folder)  # before any work: fail fast rather than after the run

    started = time.perf_counter()
    dataset = load_dataset(spec.dataset, data["dir"] or None, split_seed=data["split_seed"])
    dataset.split(spec.split)  # fail before any training when the split is absent
    if args.policy_config is not None:  # names the file in errors about the dataset's attributes
        from crs.lab.config import load_policy_config

        load_policy_config(args.policy_config).check(dataset)
    cache_dir = Path(config["paths"]["cache_dir"]) if config["paths"]["cache_dir"] else None
    with _progress_bar(0, "training scorer (epochs)", args.quiet or spec.scorer != "bpr") as bar:

        def on_epoch(epoch: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")

        try:
            with _training_context(cache_dir, args.quiet) as training:
                policy = build_policy(spec, dataset, cache_dir, progress=on_epoch, training=training)
        except ValueError as error:
            raise CliError(str(error)) from None
    load_seconds = time.perf_counter() - started

    with _progress_bar(0, f"{spec.policy} on {dataset.name}/{spec.split}", args.quiet, unit="conv") as bar:

        def on_progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            result = evaluate(spec, dataset, policy, progress=on_progress)
        except LLMError as error:  # the simulated user's model failed (unreachable, bad file)
            raise CliError(str(error)) from None

    config["resolved"] = {
        "dataset_source": str(dataset.source),
        "conversations": len(result.records),
        "load_seconds": round(load_seconds, 3),
    }
    paths = write_run(result, folder, config)
    print(
        format_table(
            [{"policy": spec.policy, "dataset": dataset.name, **result.summary()}],
            label_keys=("dataset", "policy"),
        )
    )
    terminations = ", ".join(f"{k} {v}" for k, v in sorted(result.summary()["terminations"].items()))
    print(f"\nterminations: {terminations}")
    print(f"run folder: {folder}  (transcripts, metrics.json, {paths['plot'].name}; `crs view {folder}`)")
    return 0


def _describe_candidates(candidates: list[dict[str, Any]], limit: int = 5) -> str:
    """The chosen action (marked *) first, then the others in the policy's order."""
    shown = sorted(candidates, key=lambda c: not c.get("chosen"))[:limit]
    return ", ".join(
        f"{c['act']}{' ' + str(c['attribute']) if c.get('attribute') is not None else ''} "
        f"{c['score']:.2f}{'*' if c.get('chosen') else ''}"
        for c in shown
    )


def _describe_turn(turn: dict[str, Any]) -> str:
    if turn.get("actor") == "user":
        return f"turn {turn['turn']:>2}  user   {turn['act']} {turn.get('attribute', '')}"
    act = turn["act"]
    head = f"turn {turn['turn']:>2}  system t={turn.get('t')}"
    if act == "ask":
        return f"{head} ask {turn['attribute']!r} -> {turn['answer']}"
    if act == "recommend":
        verdict = "accepted" if turn.get("accepted") else "rejected"
        return f"{head} recommend {turn['items']} -> {verdict}"
    return f"{head} {act}"


class _Explainer:
    """Graph path explanations of the items accepted in a run, in the run's own dataset."""

    def __init__(self, config: dict[str, Any], data_dir: str | None) -> None:
        from crs.data import load_dataset
        from knowledge_graph import AttributeGraph

        data = config["data"]
        self.dataset = load_dataset(
            data["dataset"], data_dir or data["dir"] or None, split_seed=data["split_seed"]
        )
        self.graph = AttributeGraph(self.dataset)

    def explain(self, record: Any) -> str:
        catalog = self.dataset.catalog
        said = [
            catalog.attribute_index(turn.attribute)
            for turn in record.turns
            if turn.attribute is not None and (turn.actor == "user" or turn.answer == "yes")
        ]
        item = catalog.item_index(record.target_item)
        return str(self.graph.explain(item, said, record.user_id).text)


class _Reasoner:
    """Replays conversations through the run's own policy and asks it why it acted (`explain`)."""

    def __init__(self, config: dict[str, Any], data_dir: str | None) -> None:
        from crs.data import load_dataset
        from crs.evaluation.runner import RunSpec, build_policy

        data, run = config["data"], config["evaluate"]
        self.dataset = load_dataset(
            data["dataset"], data_dir or data["dir"] or None, split_seed=data["split_seed"]
        )
        spec = RunSpec(
            dataset=data["dataset"],
            policy=run["policy"],
            policy_params=config["policy"].get(run["policy"], {}),
            scorer=run["scorer"],
            scorer_params=config["scorer"].get(run["scorer"], {}),
        )
        cache = config["paths"]["cache_dir"]
        with _training_context(Path(cache) if cache else None, quiet=False) as training:
            self.policy: Any = build_policy(
                spec, self.dataset, Path(cache) if cache else None, training=training
            )
        self.max_turns = int(run["max_turns"])
        if not hasattr(self.policy, "explain"):
            raise CliError(f"policy {run['policy']!r} cannot explain its decisions (only e.g. belief can)")

    def reasons(self, record: Any) -> dict[int, str]:
        from crs.evaluation.records import replay

        user = self.dataset.user(record.user_id)
        return {
            step.record.turn: str(self.policy.explain(step.state))
            for step in replay(record, self.dataset.catalog, user, self.max_turns)
        }


def cmd_view(args: argparse.Namespace) -> int:
    from crs.evaluation.records import read_transcripts
    from crs.evaluation.report import format_table

    metrics_path = args.run / "metrics.json"
    transcripts_path = args.run / "transcripts.jsonl"
    if not metrics_path.is_file() or not transcripts_path.is_file():
        raise CliError(f"{args.run} is not a run folder (expected metrics.json and transcripts.jsonl)")
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        config = json.loads((args.run / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, FileNotFoundError) as error:
        raise CliError(f"{args.run}: unreadable run folder ({error})") from None
    row = {"dataset": config["data"]["dataset"], "policy": config["evaluate"]["policy"], **metrics}
    print(format_table([row], label_keys=("dataset", "policy")))
    wanted = set(args.conversation or [])
    failures_left = args.failures
    explainer = _Explainer(config, args.data_dir) if args.explain else None
    if args.why and config["evaluate"].get("simulator") == "llm":
        raise CliError("--why replays rule-protocol runs; a run with the LLM user shows its words instead")
    reasoner = _Reasoner(config, args.data_dir) if args.why else None
    try:
        for record in read_transcripts(transcripts_path):
            show = record.conversation_id in wanted
            if not show and failures_left > 0 and not record.success:
                failures_left -= 1
                show = True
            if show:
                header = f"conversation {record.conversation_id}: user {record.user_id}"
                print(f"\n{header}, target {record.target_item}, {record.termination}")
                reasons = reasoner.reasons(record) if reasoner else {}
                for turn in record.to_json()["turns"]:
                    print("  " + _describe_turn(turn))
                    for who in ("system_text", "user_text"):
                        if turn.get(who):  # runs with the LLM user keep the words
                            text = turn[who].strip().replace("\n", "\n" + " " * 14)
                            print(f"      {'chat' if who == 'system_text' else 'user'}: {text}")
                    if turn.get("candidates"):  # traced runs (crs compare) keep what the policy weighed
                        print("      considered: " + _describe_candidates(turn["candidates"]))
                    if turn["turn"] in reasons:
                        print("      why: " + reasons[turn["turn"]])
                if explainer and record.success:
                    print("  why: " + explainer.explain(record))
    except ValueError as error:
        raise CliError(str(error)) from None
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from crs.data import load_dataset
    from crs.scoring import default_cache_dir, make_scorer, ranking_metrics

    config = load_config(
        args.config,
        {"data.dir": args.data_dir, "data.dataset": args.dataset, "paths.cache_dir": args.cache_dir},
    )
    dataset = load_dataset(
        config["data"]["dataset"], config["data"]["dir"] or None, split_seed=config["data"]["split_seed"]
    )
    cache_dir = Path(config["paths"]["cache_dir"]) if config["paths"]["cache_dir"] else default_cache_dir()
    params = config["scorer"].get(args.scorer, {})
    started = time.perf_counter()
    with _progress_bar(
        params.get("epochs", 0), f"training {args.scorer} on {dataset.name}", args.quiet
    ) as bar:

        def on_epoch(epoch: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")

        scorer = make_scorer(args.scorer, dataset, cache_dir, progress=on_epoch, **params)
    seconds = time.perf_counter() - started
    print(f"{args.scorer} scorer for {dataset.name} ready in {seconds:.1f} s (cache: {cache_dir})")
    if args.policy:
        from crs.evaluation.runner import RunSpec, build_policy

        try:
            spec = RunSpec(
                dataset=dataset.name,
                policy=args.policy,
                policy_params=config["policy"].get(args.policy, {}),
                scorer=args.scorer,
                scorer_params=params,
            )
            started = time.perf_counter()
            with _training_context(cache_dir, args.quiet, args.retrain) as training:
                policy = build_policy(spec, dataset, cache_dir, training=training)
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


def cmd_chat(args: argparse.Namespace) -> int:
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no phoning home
    from ui.app import build_bot, launch

    config = load_config(
        args.config,
        {
            "data.dir": args.data_dir,
            "chat.dataset": args.dataset,
            "chat.policy": args.policy,
            "paths.cache_dir": args.cache_dir,
        },
    )
    _apply_policy_config(config, "chat", args.policy, args.policy_config)
    chat = config["chat"]
    cache = config["paths"]["cache_dir"]
    started = time.perf_counter()
    use_retriever = bool(chat["retriever"]) and not args.no_retriever
    with _lazy_progress("embedding the catalog (once)", "item") as on_embedded:
        try:
            bot = build_bot(
                chat["dataset"],
                config["data"]["dir"] or None,
                chat["policy"],
                config["policy"].get(chat["policy"], {}),
                Path(cache) if cache else None,
                use_retriever=use_retriever,
                progress=on_embedded,
            )
        except ValueError as error:
            raise CliError(str(error)) from None
    demo = launch(
        bot,
        "127.0.0.1",
        args.port or chat["port"] or None,
        block=False,
        cache_dir=Path(cache) if cache else None,
    )
    seconds = time.perf_counter() - started
    print(f"crs chat ({bot.dataset.name}, policy {chat['policy']}) ready in {seconds:.1f} s")
    print(f"open {demo.local_url} in a browser; Ctrl+C stops", flush=True)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
    return 0


def cmd_data(args: argparse.Namespace) -> int:
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
        return 0
    raise CliError("choose a data action: validate or info (see `crs data --help`)")


def cmd_policies(_: argparse.Namespace) -> int:
    for title, registry in (("policies", POLICIES), ("simulators", SIMULATORS)):
        print(f"{title}:")
        for entry in registry:
            print(f"  {entry.name:<14} {entry.description}")
    return 0


COMMANDS = {
    "evaluate": cmd_evaluate,
    "view": cmd_view,
    "train": cmd_train,
    "chat": cmd_chat,
    "data": cmd_data,
    "policies": cmd_policies,
    "compare": cmd_compare,
    "sweep": cmd_sweep,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except (CliError, ConfigError, DataError, UnknownNameError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left (e.g. `crs evaluate | head`): stop quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
