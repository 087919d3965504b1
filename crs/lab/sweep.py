"""Parameter sweeps: one configuration run once per value of one parameter.

`NAME` is a policy parameter (`gain_weight`, or `params.gain_weight`) or a question rule
(`questions.max_questions`). Each value makes a configuration of its own, checked like a file
(`PolicyConfig.from_mapping`), and all of them are compared (`crs.lab.compare`) with the first
value as the baseline; the report adds one plot per metric against the parameter.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crs.evaluation.run_folder import write_atomically
from crs.lab.compare import METRICS, Comparison, compare
from crs.lab.plots import plot_metric_sweep
from crs.policy_config import PolicyConfig
from crs.progress import Progress
from crs.settings import Settings

if TYPE_CHECKING:
    from crs.data import Dataset


@dataclass(frozen=True)
class Sweep:
    parameter: str
    values: tuple[Any, ...]
    comparison: Comparison  # one configuration per value, in the order given


def parse_values(text: str) -> list[Any]:
    """ "v1,v2,..." -> values, each read as a TOML literal (0.5, true, "text", [1, 2]); anything
    that is not one is taken as text. Commas inside brackets or quotes do not split."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    values = []
    for raw in (part.strip() for part in parts):
        if not raw:
            raise ValueError(f"empty value in {text!r}: expected NAME=v1,v2,...")
        try:
            values.append(tomllib.loads(f"v = {raw}")["v"])
        except tomllib.TOMLDecodeError:
            values.append(raw)
    return values


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    """ "NAME=v1,v2,..." -> (NAME, values)."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip() or not raw.strip():
        raise ValueError(f"expected NAME=v1,v2,... (e.g. gain_weight=10,30,60), got {text!r}")
    values = parse_values(raw)
    if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
        raise ValueError(f"the values of {name.strip()} repeat: {raw}")
    return name.strip(), values


def with_parameter(config: PolicyConfig, name: str, value: Any) -> PolicyConfig:
    """`config` with one parameter set, checked as a configuration file would be; labelled
    "NAME=VALUE". Raises ConfigError (a ValueError) for an unknown name or a wrong type."""
    data = copy.deepcopy(config.to_mapping())
    section, _, key = name.partition(".")
    if not key:
        section, key = "params", name
    if section not in ("params", "questions"):
        raise ValueError(
            f"cannot sweep {name!r}: give a policy parameter (gain_weight or params.gain_weight) "
            "or a question rule (questions.max_questions)"
        )
    table = data.setdefault(section, {})
    *parents, leaf = key.split(".")
    for parent in parents:
        table = table.setdefault(parent, {})
    table[leaf] = value
    data["label"] = f"{name}={_show(value)}"
    base = Path(config.source).parent if config.source and not config.source.startswith("<") else None
    return PolicyConfig.from_mapping(data, config.source or "<config>", base=base)


def sweep(
    config: PolicyConfig,
    name: str,
    values: Sequence[Any],
    dataset: Dataset,
    settings: Settings | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> Sweep:
    """Run `config` once per value of `name` on the same conversations (`settings` and `options`:
    those of `compare`). Every value is checked before anything runs."""
    if not values:
        raise ValueError(f"no values to sweep {name} over")
    configs = [with_parameter(config, name, value) for value in values]
    comparison = compare(configs, dataset, settings, progress, **options)
    return Sweep(name, tuple(values), comparison)


def write_sweep(result: Sweep, folder: Path) -> dict[str, Path]:
    """Into a comparison's report folder (`crs.lab.report.write_comparison`): sweep.json (the
    table by parameter value) and one PNG per metric against the parameter."""
    comparison = result.comparison
    paths = {"sweep": folder / "sweep.json"}
    write_atomically(
        paths["sweep"],
        json.dumps({"parameter": result.parameter, "rows": sweep_table(result)}, indent=2, default=str)
        + "\n",
    )
    for key, title, _ in METRICS:
        path = folder / f"sweep_{key.replace('@', '').lower()}.png"
        plot_metric_sweep(
            result.parameter,
            list(result.values),
            [run.estimates[key] for run in comparison.runs],
            title,
            path,
            f"{title} against {result.parameter} "
            f"({comparison.dataset}, {comparison.conversations} conversations)",
        )
        paths[f"sweep:{key}"] = path
    return paths


def sweep_table(result: Sweep) -> list[Mapping[str, Any]]:
    """JSON-able rows: the parameter value and each metric with its interval."""
    return [
        {"parameter": result.parameter, "value": value, **row}
        for value, row in zip(result.values, result.comparison.rows(), strict=True)
    ]


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | dict | bool) else str(value)
