"""What the `crs` sub-commands share: errors, flags, settings from flags, progress bars.

The CLI is the only place that reads the command line and the environment, and the only place
that prints. Every expected failure ends with one `error:` line and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from crs.progress import Progress, ProgressEvent
from crs.settings import Settings, load_settings

EXIT_USAGE = 2


class CliError(Exception):
    """An error whose message is shown to the user as is."""


def parse_param(text: str) -> tuple[str, Any]:
    """NAME=VALUE, the value read as a TOML literal (0.5, true, "text"); anything else is text."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return name, value


def flag_name(attribute: str) -> str:
    return "--" + attribute.replace("_", "-")


# Flags a resumed run may change: where things are read from and how fast, never what is measured.
RESUMABLE_FLAGS = frozenset(
    {"data.dir", "paths.cache_dir", "evaluate.workers", "evaluate.engine", "evaluate.ray_address"}
)


def resumed_with_flags(
    settings: Settings, args: argparse.Namespace, flags: Mapping[str, str], what: str
) -> Settings:
    """A saved run's `settings` with the resumable flags given on the command line; any other flag
    given must equal the saved value (`what`: "run" or "report", for the one-line error)."""
    for key, attribute in flags.items():
        given = getattr(args, attribute, None)
        if given is None:
            continue
        section, _, name = key.rpartition(".")
        if key in RESUMABLE_FLAGS:  # all in top-level sections
            settings = settings.replace(section, **{name: given})
            continue
        current: Any = settings
        for part in section.split("."):
            current = getattr(current, part)
        if getattr(current, name) != given:
            raise CliError(
                f"{flag_name(attribute)} {given} differs from the {what}'s saved {getattr(current, name)!r}: "
                f"a resumed {what} keeps its settings"
            )
    return settings


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (default: $CRS_DATA_DIR, then ../shared/data)")
    parser.add_argument("--config", type=Path, help="a TOML file overriding crs/defaults.toml")
    parser.add_argument(
        "--cache-dir", help="where trained models are kept (default: $CRS_CACHE_DIR, ~/.cache/crs)"
    )


def add_policy_flags(parser: argparse.ArgumentParser, default_help: str = "") -> None:
    from crs.registry import POLICIES

    parser.add_argument(
        "--policy", help=f"one of: {', '.join(POLICIES.names())}, or package.module:Class{default_help}"
    )
    parser.add_argument(
        "--param",
        action="append",
        type=parse_param,
        default=[],
        metavar="NAME=VALUE",
        help="a policy parameter (repeatable), e.g. --param list_size=5",
    )
    parser.add_argument(
        "--policy-config",
        type=Path,
        metavar="FILE",
        help="a policy configuration (policy, [params], [questions]); see configs/policy.example.toml",
    )


def settings_from_args(
    args: argparse.Namespace, flags: Mapping[str, str], policy_section: str = "evaluate"
) -> Settings:
    """defaults.toml < --config < --policy-config < flags < --param. `flags` maps a setting
    ("evaluate.limit") to the argparse attribute that sets it ("limit")."""
    policy_config = None
    if getattr(args, "policy_config", None) is not None:
        from crs.policy_config import load_policy_config

        policy_config = load_policy_config(args.policy_config)
    overrides = {key: getattr(args, attribute, None) for key, attribute in flags.items()}
    return load_settings(
        getattr(args, "config", None),
        overrides,
        flags={key: flag_name(attribute) for key, attribute in flags.items()},
        policy_config=policy_config,
        policy_section=policy_section,
        params=getattr(args, "param", ()) or (),
    )


def default_folder(*parts: str) -> Path:
    """runs/PART-PART-TIME, e.g. runs/lastfm_star-belief-20261130-141500 (a dataset may be a folder
    path: flattened)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in "-".join(parts))
    return Path("runs") / f"{safe}-{stamp}"


def load_data(settings: Settings, dataset: str | None = None, split: str | None = None) -> Any:
    """The settings' dataset (or `dataset`), failing before any training when `split` is absent."""
    from crs.data import load_dataset

    loaded = load_dataset(
        dataset or settings.data.dataset, settings.data_dir, split_seed=settings.data.split_seed
    )
    if split is not None:
        loaded.split(split)
    return loaded


@contextlib.contextmanager
def progress_bars(quiet: bool = False) -> Iterator[Progress]:
    """A `Progress` callback drawing one tqdm bar per stage on stderr, opened when the stage first
    reports (nothing is drawn for work that turns out to be cached)."""
    from tqdm import tqdm

    current: dict[str, Any] = {}

    def on_progress(event: ProgressEvent) -> None:
        if current.get("stage") != event.stage:
            if "bar" in current:
                current["bar"].close()
            bar = tqdm(
                total=event.total,
                desc=event.stage,
                unit=event.unit,
                disable=quiet,
                file=sys.stderr,
                mininterval=0.5,
            )
            current.update(stage=event.stage, bar=bar)
        bar = current["bar"]
        bar.total = event.total
        bar.update(event.done - bar.n)
        if event.note:
            bar.set_postfix_str(event.note, refresh=False)

    try:
        yield on_progress
    finally:
        if "bar" in current:
            current["bar"].close()
