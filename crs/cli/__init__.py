"""The `crs` command. Each sub-command is a module here with `add_parser` and `run`; what they
share (errors, flags, settings from flags, progress bars) is in `crs.cli.common`.

    crs evaluate   simulated conversations, a table and a run folder
    crs view       a run folder: metrics, conversations, the policy's reasons
    crs simulate-check  how close a run's simulated users talk to real seekers
    crs train      the collaborative scorer and what a policy learns, cached
    crs chat       the browser chat and the policy lab
    crs compare    policy configurations on the same conversations, with paired statistics
    crs sweep      one configuration for each value of one parameter
    crs data       validate a catalog, count what a dataset holds
    crs policies   the registered policies, simulators and datasets (plug-ins included)
    crs check      the conformance check of a policy

Every expected failure (missing data, bad settings, an existing run folder) ends with one
`error:` line and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from crs.artifacts import CacheWriteError
from crs.cli import chat, data, evaluate, lab, plugins, simulate_check, train, view
from crs.cli.common import EXIT_USAGE, CliError
from crs.data.errors import DataError
from crs.llm.base import LLMError
from crs.registry import UnknownNameError
from crs.settings import ConfigError

__all__ = ["CliError", "build_parser", "main"]


def _version() -> str:
    from crs import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crs", description="Conversational recommender system.")
    parser.add_argument("--version", action="version", version=f"crs {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    evaluate.add_parser(commands)
    view.add_parser(commands)
    simulate_check.add_parser(commands)
    train.add_parser(commands)
    chat.add_parser(commands)
    data.add_parser(commands)
    lab.add_parsers(commands)
    plugins.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = args.handler(args)
        return code
    except (
        CliError,
        ConfigError,
        DataError,
        UnknownNameError,
        LLMError,
        FileExistsError,
        CacheWriteError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left (e.g. `crs evaluate | head`): stop quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
