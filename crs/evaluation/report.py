"""Run folders, printed tables and plots of evaluation results."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crs.evaluation.records import write_transcripts
from crs.evaluation.run_folder import write_atomically
from crs.evaluation.runner import RunResult

TABLE_COLUMNS = (
    ("conversations", "n", "{:d}"),
    ("SR@5", "SR@5", "{:.3f}"),
    ("SR@10", "SR@10", "{:.3f}"),
    ("SR@15", "SR@15", "{:.3f}"),
    ("AT", "AT", "{:.2f}"),
    ("hDCG", "hDCG", "{:.3f}"),
    ("conversations_per_second", "conv/s", "{:.1f}"),  # an LLM run does well under one
    ("decision_ms_p50", "p50 ms", "{:.3f}"),
    ("decision_ms_p95", "p95 ms", "{:.3f}"),
    ("train_seconds", "train s", "{:.1f}"),  # shown only when some row has it
    # Runs with the LLM user (crs/evaluation/spoken.py); shown only when some row has them.
    ("first_draft_agreement", "1st agree", "{:.3f}"),
    ("agreement", "agree", "{:.3f}"),
    ("regenerated_rate", "regen", "{:.3f}"),
    ("seeker_rate", "real words", "{:.3f}"),  # --llm-phrasing seekers: real seekers' words said as they stand
    ("template_rate", "templ", "{:.3f}"),
    ("tokens_per_conversation", "tok/conv", "{:.0f}"),
    ("seconds_per_conversation", "s/conv", "{:.2f}"),
    ("conversations_per_minute", "conv/min", "{:.1f}"),
)
_OPTIONAL = frozenset(
    {
        "train_seconds",
        "first_draft_agreement",
        "agreement",
        "regenerated_rate",
        "seeker_rate",
        "template_rate",
        "tokens_per_conversation",
        "seconds_per_conversation",
        "conversations_per_minute",
    }
)


def format_table(rows: Sequence[Mapping[str, Any]], label_keys: Sequence[str] = ("policy",)) -> str:
    """A Markdown table (readable in a terminal and pasteable into the README)."""
    columns = [
        c for c in TABLE_COLUMNS if c[0] not in _OPTIONAL or any(row.get(c[0]) is not None for row in rows)
    ]
    headers = list(label_keys) + [title for _, title, _ in columns]
    lines = []
    for row in rows:
        cells = [str(row.get(key, "")) for key in label_keys]
        for key, _, fmt in columns:
            value = row.get(key)
            cells.append(fmt.format(value) if value is not None else "")
        lines.append(cells)
    return markdown_table(headers, lines)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table with every column padded to its widest cell, so it also lines up in a
    terminal; "" when there are no rows."""
    if not rows:
        return ""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def render(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([render(headers), separator, *(render(row) for row in rows)])


def plot_success_by_turn(curves: Mapping[str, Sequence[float]], path: Path, title: str) -> None:
    """Cumulative success rate against the turn, one line per run."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for label, curve in curves.items():
        axes.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label=label)
    axes.set_xlabel("turn (t + 1, as counted by SR@k and AT)")
    axes.set_ylabel("success rate (cumulative)")
    axes.set_ylim(0, 1.02)
    axes.set_xticks(range(1, max((len(c) for c in curves.values()), default=15) + 1))
    axes.grid(alpha=0.3)
    axes.set_title(title)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    temporary = path.with_name(f".{path.name}.tmp")
    figure.savefig(temporary, format=path.suffix.lstrip(".") or "png")
    plt.close(figure)
    os.replace(temporary, path)  # a reader never sees half a plot


class RunFolderExistsError(FileExistsError):
    pass


def check_new_run_folder(path: Path) -> None:
    """Refuse a folder that already holds files, so no earlier result is ever overwritten."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise RunFolderExistsError(f"run folder {path} already exists and is not empty; choose another --out")


def write_run(result: RunResult, folder: Path, config: Mapping[str, Any]) -> dict[str, Path]:
    check_new_run_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "config": folder / "config.json",
        "transcripts": folder / "transcripts.jsonl",
        "metrics": folder / "metrics.json",
        "plot": folder / "success_by_turn.png",
    }
    write_atomically(paths["config"], json.dumps(config, indent=2, sort_keys=True) + "\n")
    write_transcripts(result.records, paths["transcripts"])
    write_atomically(paths["metrics"], json.dumps(result.summary(), indent=2) + "\n")
    spec = result.spec
    plot_success_by_turn(
        {spec.policy: result.metrics.success_by_turn},
        paths["plot"],
        f"{spec.dataset} / {spec.split}: {len(result.records)} conversations",
    )
    return paths
