"""Configuration: one documented defaults file (`crs/defaults.toml`), an optional user file, flags.

Precedence is flags > file > defaults. Library code never reads `sys.argv` or the environment
for configuration; the CLI resolves everything here and passes plain values down.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; the message says which and why."""


def defaults() -> dict[str, Any]:
    text = resources.files("crs").joinpath("defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _merge(base: dict[str, Any], update: Mapping[str, Any], origin: str, prefix: str = "") -> None:
    for key, value in update.items():
        where = f"{prefix}{key}"
        if key not in base:
            if prefix.startswith(("policy.", "scorer.")):
                base[key] = value  # plug-in parameters are checked by the plug-in itself
                continue
            known = ", ".join(sorted(base)) or "none"
            raise ConfigError(f"{origin}: unknown setting {where!r} (known here: {known})")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{origin}: {where!r} must be a table of settings")
            _merge(base[key], value, origin, f"{where}.")
            continue
        expected = type(base[key])
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(
                f"{origin}: {where!r} must be {expected.__name__}, got {type(value).__name__} {value!r}"
            )
        base[key] = value


def load_config(file: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then `file`, then `overrides` ({"evaluate.policy": "random", ...}; None values skipped)."""
    config = copy.deepcopy(defaults())
    if file is not None:
        path = Path(file)
        try:
            user = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML ({error})") from None
        _merge(config, user, str(path))
    nested: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    _merge(config, nested, "command line")
    return config
