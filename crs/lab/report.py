"""Report folders of comparisons: tables (Markdown and JSON), plots, disagreements, run folders.

REPORT/
  table.md, table.json      metrics with 95 % intervals; each configuration against the first
  success_by_turn.png       cumulative success rate by turn, one line per configuration
  turns_histogram.png       turn of the success (or failure), per configuration
  questions_asked.png       questions per conversation by attribute group and attribute
  disagreements.md          the conversations where the configurations differ most, side by side
  runs/N-LABEL/             one run folder per configuration (`crs view` reads it)
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from crs.evaluation.report import check_new_run_folder, plot_success_by_turn, write_run
from crs.lab.compare import Comparison, ConfigRun, Disagreement, replay_rows, success_turn
from crs.lab.plots import plot_questions_asked, plot_turns_histogram
from crs.settings import Settings
from crs.types import Catalog

DISAGREEMENTS = 10


def write_comparison(
    comparison: Comparison,
    folder: Path,
    settings: Settings | None = None,
    command: str | None = None,
    disagreements: int = DISAGREEMENTS,
) -> dict[str, Path]:
    """Write the report folder (refused when it exists and is not empty). `settings`: the crs
    configuration the comparison ran with, saved in each run folder; `command`: the command line,
    quoted at the top of the table."""
    check_new_run_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "table": folder / "table.md",
        "json": folder / "table.json",
        "success_by_turn": folder / "success_by_turn.png",
        "turns_histogram": folder / "turns_histogram.png",
        "questions_asked": folder / "questions_asked.png",
        "disagreements": folder / "disagreements.md",
    }
    title = f"{comparison.dataset} / {comparison.split}: {comparison.conversations} conversations"
    paths["table"].write_text(table_markdown(comparison, command), encoding="utf-8")
    paths["json"].write_text(json.dumps(comparison.as_json(), indent=2) + "\n", encoding="utf-8")
    plot_success_by_turn(
        {run.label: run.result.metrics.success_by_turn for run in comparison.runs},
        paths["success_by_turn"],
        title,
    )
    max_turns = comparison.runs[0].result.spec.max_turns
    plot_turns_histogram(
        {
            run.label: [r.success_t + 1 if r.success_t is not None else None for r in run.records]
            for run in comparison.runs
        },
        max_turns,
        paths["turns_histogram"],
        title,
    )
    group_of = attribute_groups(comparison.catalog, comparison.dataset)
    by_group, by_attribute = questions_asked(comparison, group_of)
    plot_questions_asked(by_group, by_attribute, paths["questions_asked"], f"questions asked: {title}")
    paths["disagreements"].write_text(
        disagreements_markdown(comparison, comparison.disagreements(disagreements)), encoding="utf-8"
    )
    base = (settings or Settings()).as_dict()
    for index, run in enumerate(comparison.runs):
        run_folder = folder / "runs" / f"{index + 1}-{_slug(run.label)}"
        write_run(run.result, run_folder, _run_config(base, comparison, run))
        paths[f"run:{run.label}"] = run_folder
    return paths


def table_markdown(comparison: Comparison, command: str | None = None) -> str:
    baseline = comparison.runs[0].label
    lines = [
        f"# Comparison on {comparison.dataset} / {comparison.split}",
        "",
        f"{comparison.conversations} conversations (shuffled target pairs "
        f"{comparison.offset + 1} to {comparison.offset + comparison.conversations}), seed "
        f"{comparison.seed}; every configuration met the same simulated users.",
    ]
    if command:
        lines += ["", "```", command, "```"]
    lines += [
        "",
        "## Metrics",
        "",
        "Each cell: the value and its 95 % bootstrap interval over conversations. AT and the questions",
        "before the first list: lower is better; decision times are per system action, in milliseconds.",
        "",
        comparison.table(),
    ]
    if comparison.tests:
        lines += [
            "",
            f"## Against the baseline ({baseline})",
            "",
            "Paired, conversation by conversation. SR@15: the conversations only the baseline / only the",
            "configuration succeeded in, and the exact McNemar test on them. Δ turns and Δ hDCG: the mean",
            "difference (configuration minus baseline) with its 95 % bootstrap interval and a paired",
            "permutation (sign-flip) test.",
            "",
            comparison.tests_table(),
        ]
    note = comparison.interval_note()
    if note:
        lines += ["", note]
    lines += ["", "## Configurations", ""]
    for run in comparison.runs:
        params = json.dumps(dict(run.policy_params), sort_keys=True, default=str)
        lines.append(
            f"- **{run.label}**: policy `{run.policy}`, {run.result.seconds:.1f} s for the conversations "
            f"({run.setup_seconds:.1f} s to load or train); parameters `{params}`"
        )
    lines += [
        "",
        "![success rate by turn](success_by_turn.png)",
        "![turns histogram](turns_histogram.png)",
        "![questions asked](questions_asked.png)",
        "",
    ]
    return "\n".join(lines)


def attribute_groups(catalog: Catalog, dataset_name: str) -> Callable[[int | str], str]:
    """attribute id -> its group: the dataset's question bank's groups where it has one (e.g.
    decades among LastFM's tags), else the catalog's."""
    group_of = [a.group for a in catalog.attributes]
    try:
        from crs.questions import default_rules

        rules = default_rules(catalog, dataset_name)
    except (ImportError, ValueError, OSError):  # no or unreadable bank: the catalog's groups
        rules = None
    if rules is not None:
        group_of = list(rules.group_of)

    def group(attribute: int | str) -> str:
        try:
            return group_of[catalog.attribute_index(attribute)]
        except (KeyError, ValueError):
            return "?"

    return group


def questions_asked(
    comparison: Comparison, group_of: Callable[[int | str], str]
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Per configuration: questions per conversation by attribute group, and by attribute name."""
    by_group: dict[str, dict[str, float]] = {}
    by_attribute: dict[str, dict[str, float]] = {}
    for run in comparison.runs:
        asked = [
            t.attribute for r in run.records for t in r.turns if t.act == "ask" and t.attribute is not None
        ]
        n = max(len(run.records), 1)
        by_group[run.label] = {g: c / n for g, c in Counter(group_of(a) for a in asked).items()}
        names = Counter(comparison.attribute_name(a) for a in asked)
        by_attribute[run.label] = {name: c / n for name, c in names.items()}
    return by_group, by_attribute


def disagreements_markdown(comparison: Comparison, found: tuple[Disagreement, ...]) -> str:
    labels = comparison.labels
    lines = [
        f"# Where the configurations disagree most ({comparison.dataset} / {comparison.split})",
        "",
        f"The {len(found)} conversations (of {comparison.conversations}) with the largest spread in turns",
        "(a failure counts as 15), then in hDCG; the same simulated user in each column. Turn k is the",
        "system's k-th action, as SR@k and AT count; the user's opening comes first. Under a system",
        "turn: the actions the policy considered with their scores, the chosen one marked *.",
        "",
    ]
    for run in comparison.runs:
        if run.trace_score:
            lines.append(f"- {_cell(run.label)}: scores are {run.trace_score}")
    if not found:
        lines += ["", "The configurations agree on every conversation."]
    for disagreement in found:
        first = disagreement.records[0]
        target = comparison.item_title(first.target_item)
        lines += [
            "",
            f"## Conversation {disagreement.conversation_id}: user {first.user_id} wants "
            f"{_cell(target)} (item {first.target_item})",
            "",
            f"Spread: {disagreement.spread:g} turns.",
            "",
            "| turn | " + " | ".join(_cell(label) for label in labels) + " |",
            "|---" * (len(labels) + 1) + "|",
        ]
        for number, turns in replay_rows(disagreement.records):
            cells = []
            for record, turn in zip(disagreement.records, turns, strict=True):
                if turn is None:
                    cells.append("")
                    continue
                text = _cell(comparison.describe_turn(turn, record.target_item))
                trace = comparison.describe_candidates(turn)
                cells.append(text + (f"<br><sub>{_cell(trace)}</sub>" if trace else ""))
            lines.append(f"| {number or 'opening'} | " + " | ".join(cells) + " |")
        lines.append("| outcome | " + " | ".join(_outcome(r) for r in disagreement.records) + " |")
    return "\n".join(lines) + "\n"


def _outcome(record: Any) -> str:
    if record.success:
        return f"**success** at turn {success_turn(record)} (rank {record.target_rank})"
    return f"**failed** ({record.termination})"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "config"


def _run_config(base: Mapping[str, Any], comparison: Comparison, run: ConfigRun) -> dict[str, Any]:
    """A run folder's config.json, as `crs evaluate` writes it, so `crs view --why` can rebuild
    the policy of this configuration."""
    config = copy.deepcopy(dict(base))
    spec = run.result.spec
    config["data"] = {**config.get("data", {}), "dataset": spec.dataset, "split": spec.split}
    config["evaluate"] = {
        **config.get("evaluate", {}),
        "policy": spec.policy,
        "scorer": spec.scorer,
        "limit": spec.limit or 0,
        "offset": spec.offset,
        "seed": spec.seed,
        "workers": spec.workers,
        "max_turns": spec.max_turns,
    }
    config.setdefault("policy", {})[spec.policy] = json.loads(
        json.dumps(dict(spec.policy_params), default=str)
    )
    config["lab"] = {"label": run.label, "trace_score": run.trace_score}
    return config
