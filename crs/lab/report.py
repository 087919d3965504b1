"""Report folders of comparisons: tables (Markdown and JSON), plots, disagreements, run folders.

REPORT/
  table.md, table.json      metrics with 95 % intervals; each configuration against the first
  success_by_turn.png       cumulative success rate by turn, one line per configuration
  turns_histogram.png       turn of the success (or failure), per configuration
  questions_asked.png       questions per conversation by attribute group and attribute
  disagreements.md          the conversations where the configurations differ most, side by side
  runs/N-LABEL/             one run folder per configuration (`crs view` reads it)
  comparison.json           what the report runs (configurations, settings, command), for --resume

While `crs compare` or `crs sweep` runs, a `ReportFolder` keeps the work: the folder is locked,
comparison.json is written before the first conversation, and each configuration's run folder is
a `RunFolder` written conversation by conversation. table.json is written last: a folder without
it is an interrupted report, which `ReportFolder.resume` reopens (finished configurations are
read back, the partial one resumes from its transcripts).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from crs.evaluation.records import ConversationRecord, read_transcripts
from crs.evaluation.report import check_new_run_folder, plot_success_by_turn, write_run
from crs.evaluation.run_folder import (
    CONFIG,
    LOCK,
    METRICS,
    TRANSCRIPTS,
    RunFolder,
    RunFolderError,
    lock_folder,
    release_folder,
    write_atomically,
)
from crs.evaluation.runner import RunSpec, run_result
from crs.lab.compare import Comparison, ConfigRun, Disagreement, KeptRun, replay_rows, success_turn
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
    runs_kept: bool = False,
) -> dict[str, Path]:
    """Write the report folder (refused when it exists and is not empty). `settings`: the crs
    configuration the comparison ran with, saved in each run folder; `command`: the command line,
    quoted at the top of the table. `runs_kept`: a `ReportFolder` wrote the run folders as the
    runs went; only the report's own files are written (over those an interrupted run left)."""
    if not runs_kept:
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
    write_atomically(paths["table"], table_markdown(comparison, command))
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
    write_atomically(
        paths["disagreements"], disagreements_markdown(comparison, comparison.disagreements(disagreements))
    )
    base = (settings or Settings()).as_dict()
    for index, run in enumerate(comparison.runs):
        run_folder = run_folder_path(folder, index, run.label)
        if not runs_kept:
            write_run(run.result, run_folder, _run_config(base, run.result.spec, run.label, run.trace_score))
        paths[f"run:{run.label}"] = run_folder
    # Last: a report folder with table.json is complete (`ReportFolder.resume` refuses it).
    write_atomically(paths["json"], json.dumps(comparison.as_json(), indent=2) + "\n")
    return paths


def run_folder_path(folder: Path, index: int, label: str) -> Path:
    return folder / "runs" / f"{index + 1}-{_slug(label)}"


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


def _run_config(
    base: Mapping[str, Any], spec: RunSpec, label: str, trace_score: str | None
) -> dict[str, Any]:
    """A run folder's config.json, as `crs evaluate` writes it, so `crs view --why` can rebuild
    the policy of this configuration."""
    config = copy.deepcopy(dict(base))
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
    config["lab"] = {"label": label, "trace_score": trace_score}
    return config


# --- a report folder while the comparison runs --------------------------------------------------

REPORT_CONFIG = "comparison.json"
COMPLETE = "table.json"  # written last by `write_comparison`


def plain(value: Any) -> Any:
    """`value` as it reads back from JSON, so a saved configuration compares equal to a fresh one."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


@dataclass(frozen=True)
class SavedConfig:
    """A configuration as comparison.json keeps it: what `compare` needs to run it again."""

    label: str
    policy: str
    policy_params: Mapping[str, Any]


def saved_config(config: Any) -> dict[str, Any]:
    """A configuration (`crs.lab.compare.PolicyConfigLike`) as comparison.json keeps it."""
    return plain({"label": config.label, "policy": config.policy, "policy_params": config.policy_params})


class ReportFolder:
    """An open, locked report folder that keeps each configuration's run as it plays (a
    `crs.lab.compare.RunStore`); use `create` or `resume`, `save` the report's configuration
    before the first run, then give it to `compare` as its store."""

    def __init__(self, path: Path, lock: IO[str], made: bool) -> None:
        self.path = path
        self._lock = lock
        self._base: Mapping[str, Any] = {}  # the settings (`save`): each run's config.json starts from them
        self._made = made  # made by this run: removed again when it ends before any run started
        self._started = False
        self._open: RunFolder | None = None  # the run folder of the configuration playing now

    @classmethod
    def create(cls, path: Path, resume_hint: str) -> ReportFolder:
        """A new report's folder (empty or absent), locked: fails before any work is done.
        `resume_hint`: the command that would resume a report already in `path`."""
        made = not path.exists()
        lock = lock_folder(path, "report folder")
        if any(entry.name != LOCK for entry in path.iterdir()):
            release_folder(path, lock)
            interrupted = (path / REPORT_CONFIG).is_file() and not (path / COMPLETE).exists()
            hint = f" (or `{resume_hint}` to finish the interrupted report)" if interrupted else ""
            raise RunFolderError(
                f"report folder {path} already exists and is not empty; choose another --out{hint}"
            )
        return cls(path, lock, made)

    @classmethod
    def resume(cls, path: Path) -> tuple[ReportFolder, dict[str, Any]]:
        """An interrupted report's folder, locked, and its saved configuration (`save`'s)."""
        if not (path / REPORT_CONFIG).is_file():
            raise RunFolderError(f"{path} is not a report folder to resume: it has no {REPORT_CONFIG}")
        if (path / COMPLETE).exists():
            raise RunFolderError(f"report {path} is complete (it has {COMPLETE}); nothing to resume")
        lock = lock_folder(path, "report folder")
        try:
            saved = json.loads((path / REPORT_CONFIG).read_text(encoding="utf-8"))
            if not isinstance(saved, dict) or not isinstance(saved.get("settings"), dict):
                raise ValueError(f"{REPORT_CONFIG} is not a saved report configuration")
        except (OSError, ValueError) as error:
            release_folder(path, lock)
            raise RunFolderError(f"cannot resume {path}: {error}") from None
        return cls(path, lock, made=False), saved

    def save(self, saved: Mapping[str, Any], settings: Settings) -> None:
        """The report's configuration (what `resume` gives back; a resumed report's is kept as it
        was), and the settings it runs with."""
        self._base = settings.as_dict()
        if not (self.path / REPORT_CONFIG).exists():
            report = {**saved, "settings": self._base}
            write_atomically(self.path / REPORT_CONFIG, json.dumps(plain(report), indent=2) + "\n")

    @property
    def empty(self) -> bool:
        """Nothing of this report would be kept if it closed now (no run has begun in a new folder)."""
        return self._made and not self._started

    # --- RunStore ----------------------------------------------------------------------------------

    def kept(self, index: int, label: str, spec: RunSpec) -> KeptRun:
        folder = run_folder_path(self.path, index, label)
        if (folder / METRICS).is_file():
            return KeptRun(finished=self._finished_run(folder, label, spec))
        if (folder / CONFIG).is_file():
            self._open, saved, records = RunFolder.resume(folder)
            self._check(folder, saved, label, spec)
            return KeptRun(records=tuple(records))
        self._open = RunFolder.create(folder)
        return KeptRun()

    def start(
        self, index: int, label: str, spec: RunSpec, trace_score: str | None, setup_seconds: float
    ) -> Callable[[ConversationRecord], None]:
        assert self._open is not None, "start before kept"
        self._started = True
        if not (self._open.path / CONFIG).exists():
            config = _run_config(self._base, spec, label, trace_score)
            config["resolved"] = {"setup_seconds": round(setup_seconds, 3)}
            self._open.write_config(config)
        return self._open.append

    def finish(self, index: int, run: ConfigRun) -> ConfigRun:
        assert self._open is not None, "finish before start"
        # The report is made from the records as the transcripts hold them (scores rounded), as
        # a resumed report's are: otherwise a score on a rounding edge would print differently.
        records = list(read_transcripts(self._open.path / TRANSCRIPTS))
        run = dataclasses.replace(run, result=run_result(run.result.spec, records, run.result.seconds))
        self._open.write_metrics(run.result.summary())
        spec = run.result.spec
        plot_success_by_turn(
            {spec.policy: run.result.metrics.success_by_turn},
            self._open.plot_path,
            f"{spec.dataset} / {spec.split}: {len(run.records)} conversations",
        )
        self._open.close()
        self._open = None
        return run

    # ------------------------------------------------------------------------------------------------

    def _check(self, folder: Path, saved: Mapping[str, Any], label: str, spec: RunSpec) -> None:
        """A run folder resumed or read back must be this configuration's run (same policy, its
        parameters and conversations), not one a renamed or edited folder put there."""
        expected = plain(_run_config(self._base, spec, label, None))
        for section, keys in (("evaluate", ("policy", "limit", "offset", "seed")), ("data", ("dataset",))):
            for key in keys:
                if saved.get(section, {}).get(key) != expected[section][key]:
                    raise RunFolderError(
                        f"{folder / CONFIG} is not the run of {label!r} in this report "
                        f"({section}.{key} is {saved.get(section, {}).get(key)!r}, "
                        f"expected {expected[section][key]!r})"
                    )
        policy = spec.policy
        if saved.get("policy", {}).get(policy) != expected["policy"][policy]:
            raise RunFolderError(f"{folder / CONFIG}: the parameters of {label!r} differ from this report's")

    def _finished_run(self, folder: Path, label: str, spec: RunSpec) -> ConfigRun:
        try:
            config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
            self._check(folder, config, label, spec)
            summary = json.loads((folder / METRICS).read_text(encoding="utf-8"))
            records = list(read_transcripts(folder / TRANSCRIPTS))
        except (OSError, ValueError) as error:
            raise RunFolderError(f"cannot read the finished run {folder}: {error}") from None
        return ConfigRun(
            label=label,
            policy=spec.policy,
            policy_params=dict(spec.policy_params),
            result=run_result(spec, records, float(summary.get("seconds", 0.0))),
            setup_seconds=float(config.get("resolved", {}).get("setup_seconds", 0.0)),
            estimates={},
            trace_score=config.get("lab", {}).get("trace_score"),
        )

    def close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None
        if not self._lock.closed:
            release_folder(self.path, self._lock)
        if self.empty:  # ended before any run began: leave nothing behind
            (self.path / REPORT_CONFIG).unlink(missing_ok=True)
            runs = self.path / "runs"
            if runs.is_dir() and not any(runs.iterdir()):
                runs.rmdir()
            if self.path.is_dir() and not any(self.path.iterdir()):
                self.path.rmdir()

    def __enter__(self) -> ReportFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
