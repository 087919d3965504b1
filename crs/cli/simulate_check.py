"""`crs simulate-check RUN --against redial|inspired`: how close a run's simulated users talk to
real seekers (`crs.evaluation.fidelity`): length, variety, what they do, and whether a
classifier can tell them apart. Writes `fidelity-SOURCE.json` and `fidelity-SOURCE.png` into RUN."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from crs.cli.common import CliError

DEFAULT_REAL = 2000


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "simulate-check",
        help="compare a run's simulated users' words with real seekers' (ReDial or INSPIRED)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", type=Path, help="a run folder of `crs evaluate --simulator llm`")
    parser.add_argument("--against", choices=("redial", "inspired"), default="redial")
    parser.add_argument(
        "--real",
        type=int,
        default=DEFAULT_REAL,
        metavar="N",
        help=f"real messages sampled (default {DEFAULT_REAL})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples and the classifier's folds")
    parser.add_argument("--data-dir", help="data directory (flag > $CRS_DATA_DIR > ../shared/data)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from crs.data import load_dataset
    from crs.data.location import resolve_data_dir
    from crs.evaluation.fidelity import fidelity, real_messages, user_messages
    from crs.evaluation.records import read_transcripts
    from crs.evaluation.report import markdown_table
    from crs.language.understanding import Understander
    from crs.retrieval.encoder import MiniLmEncoder

    transcripts = args.run / "transcripts.jsonl"
    if not transcripts.is_file():
        raise CliError(f"{args.run} is not a run folder (expected {transcripts.name})")
    if args.real < 10:
        raise CliError(f"--real must be at least 10, got {args.real}")
    try:
        simulated = user_messages(args.run)
        first = next(iter(read_transcripts(transcripts)), None)
    except (ValueError, KeyError, TypeError) as error:
        raise CliError(f"{transcripts} cannot be read: {error}") from None
    if first is None or len(simulated) < 10:
        raise CliError(
            f"{args.run} holds {len(simulated)} user messages: run `crs evaluate --simulator llm` "
            "(at least 10 messages are needed)"
        )
    data_dir = resolve_data_dir(args.data_dir)
    dataset = load_dataset(first.dataset, data_dir)
    understander = Understander(dataset.catalog, popularity=dataset.popularity)
    real = real_messages(data_dir, args.against, limit=args.real, seed=args.seed)
    encoder = MiniLmEncoder()
    reports = [
        fidelity(f"simulated ({first.simulator})", simulated, understander, real, encoder, seed=args.seed),
        fidelity(f"real ({args.against} seekers)", real, understander),
    ]
    headers = ["messages", "words (mean)", "distinct-1", "distinct-2", "distinct replies", "most common"]
    headers.append("classifier AUC")
    rows = [
        [
            r.label,
            str(r.profile.messages),
            f"{r.profile.mean_words:.1f}",
            f"{r.profile.distinct_1:.3f}",
            f"{r.profile.distinct_2:.3f}",
            f"{r.profile.distinct_messages:.3f}",
            f"{r.profile.most_common_share:.3f} ({r.profile.most_common[:30]!r})",
            "" if r.auc is None else f"{r.auc:.3f}",
        ]
        for r in reports
    ]
    print(markdown_table(["", *headers], rows))
    print()
    act_rows = [[r.label, *(f"{share:.3f}" for share in r.acts.values())] for r in reports]
    print(markdown_table(["acts", *reports[0].acts], act_rows))
    out = args.run / f"fidelity-{args.against}.json"
    out.write_text(
        json.dumps(
            {"against": args.against, "seed": args.seed, "reports": [r.as_dict() for r in reports]}, indent=2
        )
        + "\n",
        encoding="utf-8",
    )
    plot = args.run / f"fidelity-{args.against}.png"
    plot_fidelity(reports, plot)
    print(f"\nwritten: {out}, {plot}")
    return 0


def plot_fidelity(reports: list[Any], path: Path) -> None:
    """Message lengths and acts, side by side: simulated against real."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from crs.evaluation.fidelity import LENGTH_BINS

    bins = [
        f"{a}-{b - 1}" if b - 1 > a else str(a) for a, b in zip(LENGTH_BINS, LENGTH_BINS[1:], strict=False)
    ]
    bins.append(f"{LENGTH_BINS[-1]}+")
    figure, (lengths, acts) = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    width = 0.8 / len(reports)
    for k, report in enumerate(reports):
        x = np.arange(len(bins)) + k * width
        lengths.bar(x, report.profile.length_histogram, width, label=report.label)
        names = list(report.acts)
        acts.bar(np.arange(len(names)) + k * width, list(report.acts.values()), width, label=report.label)
    lengths.set_xticks(np.arange(len(bins)) + width * (len(reports) - 1) / 2, bins)
    lengths.set_xlabel("words per message")
    lengths.set_ylabel("share of messages")
    lengths.legend()
    names = list(reports[0].acts)
    acts.set_xticks(np.arange(len(names)) + width * (len(reports) - 1) / 2, names, rotation=30, ha="right")
    acts.set_ylabel("share of messages")
    acts.set_title("what the messages do (read by the chat)")
    figure.savefig(path, dpi=100)
    plt.close(figure)
