"""The "Policy lab" tab: designers edit policy configurations, compare them on simulated
conversations and replay any conversation turn by turn with the actions the policy weighed.

It drives `crs.lab.compare` on the chat's own catalog. Every browser tab keeps its comparison in
a `gr.State` (a `LabResult`), so two designers never see each other's runs. Handlers are plain
functions of their inputs, so gradio_client calls them exactly as a click in the browser does.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from crs.lab.compare import Comparison, compare, last_turn, replay_rows, success_turn
from crs.lab.report import write_comparison
from crs.policy_config import PolicyConfig
from crs.progress import Progress, ProgressEvent
from crs.settings import ConfigError, Settings

MAX_CONVERSATIONS = 2000  # a comparison of two configurations at this size takes about a minute
DEFAULT_CONVERSATIONS = 200
CONFIG_FOLDER = Path("configs")  # the repository's ready-made configurations, when run from its root


@dataclass(frozen=True)
class LabResult:
    """One tab's finished comparison and the folder its report (plots) was written to."""

    comparison: Comparison
    folder: Path


def preset_configs(dataset_name: str, folder: Path = CONFIG_FOLDER) -> dict[str, str]:
    """Ready-made configurations as TOML text, by name: the default policy first, then the files
    of `folder` that parse and whose question rules fit this dataset."""
    presets = {"default": PolicyConfig.from_mapping({"label": "default", "policy": "belief"}).to_toml()}
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        if path.name.endswith(".example.toml"):
            continue
        text = path.read_text(encoding="utf-8")
        try:
            PolicyConfig.from_toml(text, str(path), path.stem, path.parent)
        except (ConfigError, ValueError):
            continue
        presets[path.stem] = text
    return presets


def parse_config(text: str, name: str) -> PolicyConfig:
    return PolicyConfig.from_toml(text or "", f"configuration {name}", default_label=name, base=Path.cwd())


def run_comparison(
    dataset: Any,
    texts: list[str],
    conversations: float | None,
    seed: float | None,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> LabResult:
    """Check the configurations (ValueError with a message for the page), compare them, write the
    report folder. The first configuration is the baseline. `settings`: the chat's (its scorer,
    cache folder and the policies' defaults); the dataset is the chat's."""
    n = int(conversations or 0)
    if not 1 <= n <= MAX_CONVERSATIONS:
        raise ValueError(f"the number of conversations must be between 1 and {MAX_CONVERSATIONS}, got {n}")
    configs = [
        parse_config(text, name) for text, name in zip(texts, ("A", "B"), strict=False) if text.strip()
    ]
    if not configs:
        raise ValueError("write at least one configuration")
    for config in configs:
        config.check(dataset)
    base = (settings or Settings()).replace("data", dataset=dataset.name)
    base = base.replace("evaluate", limit=n, offset=0, seed=int(seed or 0), workers=1)
    comparison = compare(configs, dataset, base, progress)
    folder = Path(tempfile.mkdtemp(prefix="crs-lab-"))
    write_comparison(comparison, folder / "report", base)
    return LabResult(comparison, folder / "report")


def summary_markdown(result: LabResult) -> str:
    comparison = result.comparison
    parts = [
        f"**{comparison.conversations} conversations** on {comparison.dataset} / {comparison.split}, "
        f"seed {comparison.seed}, {comparison.seconds:.1f} s. Each cell: value [95 % bootstrap interval].",
        "",
        comparison.table(),
    ]
    if comparison.tests:
        parts += ["", "Against the baseline (first configuration), paired:", "", comparison.tests_table()]
    note = comparison.interval_note()
    if note:
        parts += ["", note]
    scores = [f"{run.label}: {run.trace_score}" for run in comparison.runs if run.trace_score]
    if scores:
        parts += ["", "Decision-trace scores: " + "; ".join(scores) + "."]
    return "\n".join(parts)


def conversation_choices(result: LabResult, limit: int = 20) -> list[tuple[str, int]]:
    """The conversations where the configurations disagree most first, then the others in order."""
    comparison = result.comparison
    choices: list[tuple[str, int]] = []
    for found in comparison.disagreements(limit):
        outcomes = ", ".join(
            f"{label}: {'failed' if success_turn(r) is None else f'turn {success_turn(r)}'}"
            for label, r in zip(comparison.labels, found.records, strict=True)
        )
        choices.append((f"#{found.conversation_id} (differs: {outcomes})", found.conversation_id))
    shown = {value for _, value in choices}
    for record in comparison.runs[0].records[:limit]:
        if record.conversation_id not in shown:
            choices.append((f"#{record.conversation_id}", record.conversation_id))
    return choices


def replay_markdown(result: LabResult | None, conversation_id: float | None, up_to_turn: float | None) -> str:
    """Conversation `conversation_id` as every configuration had it, up to `up_to_turn` (0: the
    user's opening only; None: to the end): per turn the action taken and, under it, the actions
    the policy weighed (chosen one marked *). Turns are numbered as the outcome line, the table's
    AT and SR@k count them (`crs.lab.compare.turn_number`)."""
    if result is None:
        return "Run a comparison first."
    if conversation_id is None:
        return "Pick a conversation."
    comparison = result.comparison
    try:
        records = comparison.conversation(int(conversation_id))
    except KeyError as error:
        return f"error: {error.args[0]}"
    last = None if up_to_turn is None else int(up_to_turn)
    first = next(iter(records.values()))
    lines = [
        f"**Conversation {int(conversation_id)}**: user {first.user_id} wants "
        f"*{_cell(comparison.item_title(first.target_item))}*.",
        "",
        "| turn | " + " | ".join(_cell(label) for label in records) + " |",
        "|---" * (len(records) + 1) + "|",
    ]
    for number, turns in replay_rows(list(records.values()), last):
        cells = []
        for record, turn in zip(records.values(), turns, strict=True):
            if turn is None:
                cells.append("")
                continue
            text = _cell(comparison.describe_turn(turn, record.target_item))
            trace = comparison.describe_candidates(turn, limit=6)
            cells.append(text + (f"<br><sub>considered: {_cell(trace)}</sub>" if trace else ""))
        lines.append(f"| {number or 'opening'} | " + " | ".join(cells) + " |")
    outcomes = []
    for record in records.values():
        found = success_turn(record)
        if last is not None and last_turn(record) > last:
            outcomes.append("…")
        elif found is not None:
            outcomes.append(f"**success** at turn {found}")
        else:
            outcomes.append(f"**failed** ({record.termination})")
    lines.append("| outcome | " + " | ".join(outcomes) + " |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def build_lab_tab(
    dataset: Any,
    settings: Settings | None = None,
    config_folder: Path = CONFIG_FOLDER,
    session_ttl: float | None = None,
) -> None:
    """Lay out the lab inside the enclosing `gr.Blocks` / `gr.Tab`; a tab's results are dropped
    after `session_ttl` idle seconds, like its chat."""
    presets = preset_configs(dataset.name, config_folder)
    names = list(presets)
    second = next((n for n in names if n != "default"), "default")

    def run(
        text_a: str,
        text_b: str,
        conversations: float | None,
        seed: float | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio injects the tracker this way)
    ) -> tuple[Any, ...]:
        def on_progress(event: ProgressEvent) -> None:
            progress(event.overall or 0.0, desc=event.stage)

        try:
            result = run_comparison(dataset, [text_a, text_b], conversations, seed, settings, on_progress)
        except (ConfigError, ValueError) as error:
            message = f"**error:** {_cell(str(error))}"
            return None, message, None, None, None, gr.Dropdown(choices=[], value=None), ""
        choices = conversation_choices(result)
        first = choices[0][1] if choices else None
        return (
            result,
            summary_markdown(result),
            str(result.folder / "success_by_turn.png"),
            str(result.folder / "questions_asked.png"),
            str(result.folder / "table.md"),
            gr.Dropdown(choices=choices, value=first),
            replay_markdown(result, first, 15),
        )

    def replay(result: LabResult | None, conversation_id: float | None, turn: float | None) -> str:
        return replay_markdown(result, conversation_id, turn)

    state = gr.State(time_to_live=session_ttl)
    gr.Markdown(
        f"Compare question policies on simulated conversations with **{dataset.name}** (valid split, "
        "the same simulated users for every configuration). Edit a configuration below: the format is "
        "documented in `configs/policy.example.toml`. The first one is the baseline."
    )
    with gr.Row():
        with gr.Column():
            preset_a = gr.Dropdown(choices=names, value="default", label="Configuration A (baseline)")
            text_a = gr.Code(
                value=presets["default"], language=None, label="A (TOML)", elem_id="lab-config-a"
            )
        with gr.Column():
            preset_b = gr.Dropdown(choices=names, value=second, label="Configuration B")
            text_b = gr.Code(value=presets[second], language=None, label="B (TOML)", elem_id="lab-config-b")
    with gr.Row():
        # No minimum or maximum here: gradio checks a Number's bounds before the handler runs and
        # answers a value outside them by raising, which logs a traceback and leaves the page
        # without a message. `run_comparison` checks the range and says what is wrong instead.
        conversations = gr.Number(
            value=DEFAULT_CONVERSATIONS,
            precision=0,
            label=f"Conversations (1 to {MAX_CONVERSATIONS})",
        )
        seed = gr.Number(value=0, precision=0, label="Seed")
        go = gr.Button("Compare", variant="primary", elem_id="lab-run")
    summary = gr.Markdown(elem_id="lab-summary")
    # Without labels: gradio draws an image's label as a badge over the image's top left corner,
    # where it hid the start of the plot's title. Each plot carries its own title and axis labels.
    with gr.Row():
        success_plot = gr.Image(
            label="Success rate by turn", show_label=False, type="filepath", elem_id="lab-success-plot"
        )
        questions_plot = gr.Image(
            label="Questions asked", show_label=False, type="filepath", elem_id="lab-questions-plot"
        )
    report = gr.File(label="Report (Markdown; plots and runs beside it)")
    with gr.Row():
        conversation = gr.Dropdown(choices=[], label="Conversation (largest disagreements first)")
        turn = gr.Slider(
            0,
            15,
            value=15,
            step=1,
            label="Replay up to turn",
            info="turn k: the system's k-th action, as SR@k and AT count; 0: the user's opening only",
        )
    trace = gr.Markdown(elem_id="lab-replay")

    preset_a.change(lambda name: presets.get(name, ""), preset_a, text_a, api_visibility="private")
    preset_b.change(lambda name: presets.get(name, ""), preset_b, text_b, api_visibility="private")
    go.click(
        run,
        [text_a, text_b, conversations, seed],
        [state, summary, success_plot, questions_plot, report, conversation, trace],
        api_name="lab_compare",
    )
    conversation.change(replay, [state, conversation, turn], trace, api_name="lab_replay")
    turn.change(replay, [state, conversation, turn], trace, api_visibility="private")
