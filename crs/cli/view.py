"""`crs view RUN`: a run folder's metrics and conversations, with the policy's reasons on request."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crs.cli.common import CliError
from crs.settings import Settings

if TYPE_CHECKING:
    from crs.evaluation.records import ConversationRecord


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("view", help="show a run folder: metrics and conversations")
    parser.add_argument(
        "run", type=Path, help="a run folder written by `crs evaluate`, or a `crs chat --log-dir` folder"
    )
    parser.add_argument(
        "--conversation",
        type=int,
        action="append",
        metavar="ID",
        help="print this conversation turn by turn (repeatable)",
    )
    parser.add_argument(
        "--failures", type=int, default=0, metavar="N", help="print the first N failed conversations"
    )
    parser.add_argument("--explain", action="store_true", help="explain each shown success by its graph path")
    parser.add_argument(
        "--why", action="store_true", help="ask the run's policy why it took each action (e.g. belief)"
    )
    parser.add_argument(
        "--sample",
        type=int,
        action="append",
        metavar="N",
        help="real-dialogue runs (redial): show sample N (1-based): its context, the top 10 and why",
    )
    parser.add_argument("--data-dir", help="data directory, when not the one the run used")
    parser.set_defaults(handler=run)


def describe_candidates(candidates: list[dict[str, Any]], limit: int = 5) -> str:
    """The chosen action (marked *) first, then the others in the policy's order."""
    shown = sorted(candidates, key=lambda c: not c.get("chosen"))[:limit]
    return ", ".join(
        f"{c['act']}{' ' + str(c['attribute']) if c.get('attribute') is not None else ''} "
        f"{c['score']:.2f}{'*' if c.get('chosen') else ''}"
        for c in shown
    )


def describe_turn(turn: dict[str, Any]) -> str:
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


def _load_dataset(settings: Settings, data_dir: str | None) -> Any:
    from crs.data import load_dataset

    data = settings.data
    return load_dataset(data.dataset, data_dir or data.dir or None, split_seed=data.split_seed)


class Explainer:
    """Graph path explanations of the items accepted in a run, in the run's own dataset."""

    def __init__(self, settings: Settings, data_dir: str | None) -> None:
        from knowledge_graph import AttributeGraph

        self.dataset = _load_dataset(settings, data_dir)
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


class Reasoner:
    """Replays conversations through the run's own policy and asks it why it acted (`explain`)."""

    def __init__(self, settings: Settings, data_dir: str | None) -> None:
        from crs.cli.common import progress_bars
        from crs.factory import policy_for_run
        from crs.settings import run_spec

        self.dataset = _load_dataset(settings, data_dir)
        spec = run_spec(settings)
        with progress_bars() as progress:
            self.policy: Any = policy_for_run(spec, self.dataset, settings.cache_dir, progress)
        self.max_turns = spec.max_turns
        if not hasattr(self.policy, "explain"):
            raise CliError(f"policy {spec.policy!r} cannot explain its decisions (only e.g. belief can)")

    def reasons(self, record: Any) -> dict[int, str]:
        from crs.evaluation.records import replay

        user = self.dataset.user(record.user_id)
        return {
            step.record.turn: str(self.policy.explain(step.state))
            for step in replay(record, self.dataset.catalog, user, self.max_turns)
        }


def run(args: argparse.Namespace) -> int:
    from crs.chat_log import is_chat_log_folder
    from crs.evaluation.records import read_transcripts
    from crs.evaluation.report import format_table

    if is_chat_log_folder(args.run):
        from crs.cli.chat_logs import view_chat_logs

        return view_chat_logs(args)
    metrics_path = args.run / "metrics.json"
    transcripts_path = args.run / "transcripts.jsonl"
    if (args.run / "samples.jsonl").is_file():
        return view_samples(args)
    if (args.run / "config.json").is_file() and not metrics_path.exists():
        raise CliError(
            f"run {args.run} was interrupted or is still running (no metrics.json yet); "
            f"finish it with `crs evaluate --resume {args.run}`"
        )
    if not metrics_path.is_file() or not transcripts_path.is_file():
        raise CliError(f"{args.run} is not a run folder (expected metrics.json and transcripts.jsonl)")
    metrics = read_json_object(metrics_path)
    config = read_json_object(args.run / "config.json")
    settings = Settings.from_dict(config, str(args.run / "config.json"))
    try:
        records = list(read_transcripts(transcripts_path))
    except (ValueError, OSError) as error:
        raise CliError(str(error)) from None
    check_metrics(args.run, metrics, records, settings)
    wanted = set(args.conversation or [])
    held = {record.conversation_id for record in records}
    missing = sorted(wanted - held)
    if missing:
        raise CliError(
            f"--conversation {missing[0]}: the run holds conversations "
            f"{min(held)}..{max(held)} ({len(held)} of them)"
        )
    row = {"dataset": settings.data.dataset, "policy": settings.evaluate.policy, **metrics}
    print(format_table([row], label_keys=("dataset", "policy")))
    failures_left = args.failures
    explainer = Explainer(settings, args.data_dir) if args.explain else None
    if args.why and settings.evaluate.simulator == "llm":
        raise CliError("--why replays rule-protocol runs; a run with the LLM user shows its words instead")
    reasoner = Reasoner(settings, args.data_dir) if args.why else None
    try:
        for record in records:
            show = record.conversation_id in wanted
            if not show and failures_left > 0 and not record.success:
                failures_left -= 1
                show = True
            if not show:
                continue
            print(
                f"\nconversation {record.conversation_id}: user {record.user_id}, "
                f"target {record.target_item}, "
                f"{record.termination}"
            )
            reasons = reasoner.reasons(record) if reasoner else {}
            for turn in record.to_json()["turns"]:
                print("  " + describe_turn(turn))
                for who in ("system_text", "user_text"):
                    if turn.get(who):  # runs with the LLM user keep the words
                        text = turn[who].strip().replace("\n", "\n" + " " * 14)
                        print(f"      {'chat' if who == 'system_text' else 'user'}: {text}")
                if turn.get("candidates"):  # traced runs (crs compare) keep what the policy weighed
                    print("      considered: " + describe_candidates(turn["candidates"]))
                if turn["turn"] in reasons:
                    print("      why: " + reasons[turn["turn"]])
            if explainer and record.success:
                print("  why: " + explainer.explain(record))
    except (ValueError, KeyError) as error:  # ids the dataset lacks: another version, or edited
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise CliError(f"{transcripts_path}, conversation {record.conversation_id}: {message}") from None
    return 0


def read_json_object(path: Path) -> dict[str, Any]:
    """A run folder's JSON file that must hold an object; CliError naming the file otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"{path}: missing from the run folder") from None
    # ValueError: not JSON or not UTF-8; RecursionError: nested deeper than the parser goes.
    except (OSError, ValueError, RecursionError) as error:
        raise CliError(f"{path}: unreadable ({error})") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} is not a JSON object")
    return data


def check_metrics(run: Path, metrics: Any, records: list[ConversationRecord], settings: Settings) -> None:
    """`metrics.json` must be what `transcripts.jsonl` holds: a folder edited by hand, or mixed
    from two runs, is refused rather than shown with numbers its conversations do not have."""
    from crs.evaluation.metrics import compute_metrics
    from crs.evaluation.report import TABLE_COLUMNS

    if not records:
        raise CliError(f"{run}/transcripts.jsonl holds no conversations")
    if not isinstance(metrics, dict):
        raise CliError(f"{run}/metrics.json is not a JSON object")
    others = {(r.dataset, r.policy) for r in records} - {(settings.data.dataset, settings.evaluate.policy)}
    if others:
        dataset, policy = sorted(others)[0]
        raise CliError(
            f"{run}/transcripts.jsonl holds {policy} conversations on {dataset}, but config.json is "
            f"{settings.evaluate.policy} on {settings.data.dataset}: the folder mixes two runs"
        )
    for key, _, fmt in TABLE_COLUMNS:  # what the table prints must be a number it can print
        value = metrics.get(key)
        whole = fmt == "{:d}"
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int if whole else int | float)
        ):
            kind = "a whole number" if whole else "a number"
            raise CliError(f"{run}/metrics.json: {key} must be {kind}, got {value!r}")
    actual = compute_metrics([r.outcome for r in records], settings.evaluate.max_turns).as_dict()
    for key in ("conversations", "successes", "SR@15", "AT", "hDCG"):
        saved = metrics.get(key)
        if not isinstance(saved, (int, float)) or abs(float(saved) - float(actual[key])) > 1e-9:  # type: ignore[arg-type]
            raise CliError(
                f"{run}/metrics.json says {key} = {saved}, but transcripts.jsonl gives {actual[key]}: "
                "the folder was edited or is damaged"
            )


def view_samples(args: argparse.Namespace) -> int:
    """A real-dialogue run: its metrics, and for each `--sample N` the context, the top 10 and the
    features that put the first one there (default: the first sample)."""
    from crs.evaluation.redial_run import format_metrics

    try:
        metrics = json.loads((args.run / "metrics.json").read_text(encoding="utf-8"))
        config = json.loads((args.run / "config.json").read_text(encoding="utf-8"))
        rows = [
            json.loads(line) for line in (args.run / "samples.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        print(format_metrics(metrics))
    except (json.JSONDecodeError, FileNotFoundError, KeyError) as error:
        raise CliError(f"{args.run}: unreadable run folder ({error})") from None
    wanted = args.sample or [1]
    for number in wanted:
        if not 1 <= number <= len(rows):
            raise CliError(f"--sample {number}: the run has samples 1..{len(rows)}")
    from crs.evaluation.redial_protocol import extract_samples
    from crs.scoring.context_ranker import open_context_ranker, top_items

    settings = Settings.from_dict(config, str(args.run / "config.json"))
    dataset = _load_dataset(settings, args.data_dir)
    catalog = dataset.catalog
    from crs.cli.common import progress_bars

    with progress_bars() as progress:
        ranker = open_context_ranker(
            dataset,
            settings.cache_dir,
            use_retriever=bool(config["resolved"].get("retriever", True)),
            progress=progress,
        )
    by_conversation = {d.conversation_id: d for d in dataset.dialogues_of(settings.data.split)}
    for number in wanted:
        row = rows[number - 1]
        dialogue = by_conversation.get(row["conversation_id"])
        if dialogue is None:
            raise CliError(
                f"sample {number}: conversation {row['conversation_id']} is not in the run's split"
            )
        target = catalog.item_index(row["target"])
        sample = next(
            s
            for s in extract_samples(dialogue, catalog)
            if s.message_id == row["message_id"] and s.target == target
        )
        print(f"\nsample {number}: conversation {sample.conversation_id}, message {sample.message_id}")
        for message in sample.context[-10:]:
            print(f"  {'seeker' if message.seeker else 'recommender':>11}: {message.text}")
        print(f"  target: {catalog.items[target].title} (rank {row['rank']}, new items: {row['rank_new']})")
        evidence = ranker.read((m.text, m.seeker) for m in sample.context)
        features = ranker.features(evidence)
        scores = features @ ranker.weight_vector()
        print("  top 10:")
        for rank, item in enumerate(top_items(scores.astype("float64"), 10), 1):
            mark = "  <- target" if item == target else ""
            print(f"    {rank:>2}. {catalog.items[item].title}{mark}")
        first = top_items(scores.astype("float64"), 1)[0]
        parts = sorted(ranker.contributions(features, first).items(), key=lambda kv: -kv[1])
        said = ", ".join(f"{name} {value:+.2f}" for name, value in parts if abs(value) >= 0.05)
        print(f"  why {catalog.items[first].title} is first (score above the average movie): {said}")
    return 0
