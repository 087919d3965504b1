"""Plots of comparisons and sweeps (PNG files, matplotlib's Agg backend: no display needed).

Each function takes plain numbers and a path, so the app can draw the same figures. Titles, names
and labels come from datasets and configurations of any length: long ones are wrapped or shortened
so that every figure keeps all of its text inside the image."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crs.lab.stats import Estimate


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    return plt


NAME_CHARS = 28  # a tick label longer than this is cut: a long tag would squeeze its axes to nothing
LABEL_CHARS = 40  # and a configuration's label in a legend: two of them side by side fit 8 inches


def _short(name: str, limit: int = NAME_CHARS) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _fit_width(figure: Any, text: Any, share: float = 0.75) -> None:
    """Wrap `text` (a title centred on the figure) at word boundaries until it is at most `share`
    of the figure wide: three quarters keep it clear of the corners, where the app lays its image
    buttons over the plot. Measured on the figure's renderer, as no character count knows a font."""
    original = " ".join(text.get_text().split())
    renderer = figure.canvas.get_renderer()
    columns = len(original)
    while columns > 10 and text.get_window_extent(renderer).width > share * figure.bbox.width:
        columns = int(columns * 0.9)
        text.set_text(textwrap.fill(original, columns))


def plot_turns_histogram(
    turns: Mapping[str, Sequence[int | None]], max_turns: int, path: Path, title: str
) -> None:
    """Share of conversations by the turn they succeeded at (t + 1), and failures last; one bar
    per configuration in each bin. `turns`: label -> per conversation t + 1, or None (failed)."""
    plt = _pyplot()
    bins = list(range(1, max_turns))  # t + 1 runs from 1 to max_turns - 1: the user's opening counts too
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=120, layout="constrained")
    width = 0.8 / max(len(turns), 1)
    positions = np.arange(len(bins) + 1)
    for i, (label, values) in enumerate(turns.items()):
        n = max(len(values), 1)
        counts = [sum(1 for v in values if v == b) / n for b in bins]
        counts.append(sum(1 for v in values if v is None) / n)
        axes.bar(
            positions + (i - (len(turns) - 1) / 2) * width, counts, width, label=_short(label, LABEL_CHARS)
        )
    axes.set_xticks(positions, [str(b) for b in bins] + ["failed"])
    axes.set_xlabel("turn of the success (t + 1)")
    axes.set_ylabel("share of conversations")
    axes.grid(axis="y", alpha=0.3)
    _fit_width(figure, figure.suptitle(title))  # centred on the figure, which wrapping is measured against
    axes.legend(fontsize=8)
    figure.savefig(path)
    plt.close(figure)


def plot_questions_asked(
    by_group: Mapping[str, Mapping[str, float]],
    by_attribute: Mapping[str, Mapping[str, float]],
    path: Path,
    title: str,
    top: int = 15,
) -> None:
    """Questions per conversation by attribute group (left) and for the most asked attributes
    (right), one bar per configuration. Both mappings: label -> name -> questions per conversation."""
    plt = _pyplot()
    groups = sorted({g for counts in by_group.values() for g in counts})
    totals: dict[str, float] = {}
    for counts in by_attribute.values():
        for name, value in counts.items():
            totals[name] = totals.get(name, 0.0) + value
    attributes = sorted(totals, key=lambda name: (-totals[name], name))[:top]
    # 8 inches wide like the success curve beside it in the lab tab, so its text is as legible.
    figure, (left, right) = plt.subplots(
        1,
        2,
        figsize=(8, max(4.5, 0.3 * len(attributes) + 2.0)),
        dpi=120,
        width_ratios=(2, 3),
        layout="constrained",
    )
    height = 0.8 / max(len(by_group), 1)
    for i, (label, counts) in enumerate(by_group.items()):
        offset = (i - (len(by_group) - 1) / 2) * height
        left.barh(
            np.arange(len(groups)) + offset,
            [counts.get(g, 0.0) for g in groups],
            height,
            label=_short(label, LABEL_CHARS),
        )
    left.set_yticks(np.arange(len(groups)), [_short(g) for g in groups], fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("questions per conversation")
    left.set_title("by attribute group", fontsize=9)
    left.grid(axis="x", alpha=0.3)
    for i, counts in enumerate(by_attribute.values()):
        offset = (i - (len(by_attribute) - 1) / 2) * height
        right.barh(np.arange(len(attributes)) + offset, [counts.get(a, 0.0) for a in attributes], height)
    right.set_yticks(np.arange(len(attributes)), [_short(a) for a in attributes], fontsize=8)
    right.invert_yaxis()
    right.set_xlabel("questions per conversation")
    right.set_title(f"the {len(attributes)} most asked attributes", fontsize=9)
    right.grid(axis="x", alpha=0.3)
    if by_group:  # below the panels rather than inside one: long labels would cover the bars
        handles, labels = left.get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 2), fontsize=8)
    _fit_width(figure, figure.suptitle(title))
    figure.savefig(path)
    plt.close(figure)


def plot_metric_sweep(
    parameter: str,
    values: Sequence[Any],
    estimates: Sequence[Estimate],
    metric: str,
    path: Path,
    title: str,
) -> None:
    """One metric against a swept parameter, with its 95 % interval as error bars. Numeric values
    go on a numeric axis; anything else (text, booleans, lists) on evenly spaced ticks."""
    plt = _pyplot()
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    x = np.array(values, dtype=np.float64) if numeric else np.arange(len(values), dtype=np.float64)
    y = np.array([e.value for e in estimates])
    below = y - np.array([e.low for e in estimates])
    above = np.array([e.high for e in estimates]) - y
    order = np.argsort(x, kind="stable")
    figure, axes = plt.subplots(figsize=(6, 4), dpi=120, layout="constrained")
    axes.errorbar(x[order], y[order], yerr=[below[order], above[order]], marker="o", capsize=4)
    if not numeric:
        axes.set_xticks(x, [str(v) for v in values])
    axes.set_xlabel(parameter)
    axes.set_ylabel(metric)
    axes.grid(alpha=0.3)
    _fit_width(figure, figure.suptitle(title, fontsize=10))
    figure.savefig(path)
    plt.close(figure)
