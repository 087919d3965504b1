"""`crs simulate-check`: how close simulated users talk to real seekers (`crs.evaluation.fidelity`):
length, variety, what they do, and whether a classifier can tell them apart.

    crs simulate-check RUN [--against redial|inspired]
        checks a run folder of `crs evaluate --simulator llm`
    crs simulate-check --simulator llm --dataset D [--limit N] [--against redial|inspired]
        plays N conversations first (as `crs evaluate --simulator llm --dataset D --limit N`,
        default 50) into a new run folder, then checks it

Writes `fidelity-SOURCE.json` and `fidelity-SOURCE.png` into the run folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crs.cli.common import CliError, add_policy_flags, settings_from_args

DEFAULT_LIMIT = 50  # conversations played when neither --limit nor the settings say how many

# What only a run made here uses (flag, argparse attribute); the run folder's own settings
# decide them otherwise.
RUN_ONLY_FLAGS = (
    ("--config", "config"),
    ("--cache-dir", "cache_dir"),
    ("--policy", "policy"),
    ("--param", "param"),
    ("--policy-config", "policy_config"),
    ("--llm-backend", "llm_backend"),
    ("--llm-url", "llm_url"),
    ("--llm-model", "llm_model"),
    ("--llm-mode", "llm_mode"),
    ("--llm-phrasing", "llm_phrasing"),
    ("--limit", "limit"),
    ("--workers", "workers"),
    ("--out", "out"),
    ("--quiet", "quiet"),
)


def add_parser(commands: Any) -> None:
    from crs.cli.evaluate import add_llm_flags
    from crs.evaluation.fidelity import DEFAULT_REAL

    parser = commands.add_parser(
        "simulate-check",
        help="compare simulated users' words with real seekers' (ReDial or INSPIRED): a run folder's, "
        "or those of conversations played first",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run",
        type=Path,
        nargs="?",
        metavar="RUN",
        help="a run folder of `crs evaluate --simulator llm` (or play one: --simulator llm --dataset D)",
    )
    parser.add_argument(
        "--against",
        choices=("redial", "inspired"),
        default="redial",
        help="whose seekers: ReDial's (default) or INSPIRED's",
    )
    parser.add_argument(
        "--real",
        type=int,
        default=DEFAULT_REAL,
        metavar="N",
        help=f"real messages sampled (default {DEFAULT_REAL})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="S",
        help="seed of the samples and the classifier's folds, and of the conversations played (default 0)",
    )
    parser.add_argument("--data-dir", help="data directory (flag > $CRS_DATA_DIR > ../shared/data)")
    play = parser.add_argument_group(
        "playing the conversations first (instead of RUN; settings: flags > --config > crs/defaults.toml)"
    )
    play.add_argument(
        "--simulator", metavar="llm", help="llm (the default here: only the LLM user writes words to check)"
    )
    play.add_argument("--dataset", metavar="D", help="lastfm | lastfm_star | movielens | a catalog folder")
    play.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help=f"conversations played (default: the settings' evaluate.limit, else {DEFAULT_LIMIT}); "
        "--real counts the real messages",
    )
    play.add_argument(
        "--out", type=Path, metavar="DIR", help="the new run folder (default: runs/DATASET-POLICY-TIME)"
    )
    play.add_argument("--workers", type=int, metavar="N", help="processes (results do not depend on it)")
    play.add_argument("--config", type=Path, help="a TOML file overriding crs/defaults.toml")
    play.add_argument(
        "--cache-dir", help="where trained models are kept (default: $CRS_CACHE_DIR, ~/.cache/crs)"
    )
    add_policy_flags(play)
    add_llm_flags(play)
    play.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from crs.evaluation.fidelity import MIN_MESSAGES

    plays = args.simulator is not None or args.dataset is not None
    if args.run is not None and plays:
        raise CliError(
            "give a run folder to check (RUN) or conversations to play (--simulator llm --dataset D), "
            "not both"
        )
    if args.run is None and not plays:
        raise CliError(
            "nothing to check: give a run folder (`crs simulate-check RUN`) or play one first "
            "(`crs simulate-check --simulator llm --dataset D`)"
        )
    if args.real < MIN_MESSAGES:
        raise CliError(f"--real must be at least {MIN_MESSAGES}, got {args.real}")
    return play_and_check(args) if plays else check_folder(args)


def check_folder(args: argparse.Namespace) -> int:
    from crs.cli.evaluate import check_fidelity
    from crs.data.location import resolve_data_dir
    from crs.evaluation.fidelity import TooFewMessagesError, real_messages

    given = [flag for flag, attribute in RUN_ONLY_FLAGS if getattr(args, attribute)]
    if given:
        raise CliError(
            f"{', '.join(given)}: only for conversations played here (--simulator llm --dataset D); "
            f"{args.run} was played with its own settings"
        )
    seed = 0 if args.seed is None else args.seed
    data_dir = resolve_data_dir(args.data_dir)
    real = real_messages(data_dir, args.against, limit=args.real, seed=seed)
    try:
        check_fidelity(args.run, args.against, real, data_dir, seed)
    except TooFewMessagesError as error:
        raise CliError(
            f"{error}: check a run of `crs evaluate --simulator llm`, or play one here "
            "(`crs simulate-check --simulator llm --dataset D`)"
        ) from None
    except ValueError as error:
        raise CliError(str(error)) from None
    return 0


def play_and_check(args: argparse.Namespace) -> int:
    """`crs evaluate --simulator llm` with this command's flags, then its check against
    `--against` (a missing source is an error here, not a note: the check is why it runs)."""
    from crs.cli import evaluate

    if args.simulator not in (None, "llm"):
        raise CliError(f"--simulator {args.simulator} writes no words to check: use --simulator llm")
    played = evaluate.default_args()
    for _, attribute in (
        *RUN_ONLY_FLAGS,
        ("--dataset", "dataset"),
        ("--seed", "seed"),
        ("--data-dir", "data_dir"),
    ):
        setattr(played, attribute, getattr(args, attribute))
    played.simulator = "llm"
    played.fidelity_against = args.against
    played.fidelity_real = args.real
    if played.limit is None and not settings_from_args(played, evaluate.FLAGS).evaluate.limit:
        played.limit = DEFAULT_LIMIT  # all of a split's pairs would take the LLM user days
    return evaluate.run(played, require_fidelity=True)
