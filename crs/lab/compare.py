"""Compare policy configurations on the same simulated conversations.

`compare` runs every configuration on the same targets with the same seeds (conversation i of
each talks to the same simulated user, who opens with the same attribute), so the runs are
paired conversation by conversation. The first configuration is the baseline: each other one is
tested against it (`crs.lab.stats`). Runs are traced (`RunSpec.trace`), so each turn of a
conversation keeps the actions the policy weighed, for `disagreements` and for replaying.

The result, `Comparison`, is plain data: the CLI prints its table and writes a report folder
(`crs.lab.report`); the lab tab of the app shows the same table, plots and conversations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from crs.evaluation.metrics import SR_CUTOFFS, hdcg
from crs.evaluation.records import ConversationRecord, TurnRecord
from crs.evaluation.runner import RunResult, RunSpec, build_policy, evaluate
from crs.lab.stats import (
    BOOTSTRAP_RESAMPLES,
    PERMUTATIONS,
    Estimate,
    McNemar,
    PairedDifference,
    bootstrap_grouped_percentile,
    bootstrap_mean,
    format_p,
    mcnemar_exact,
    paired_permutation,
)

if TYPE_CHECKING:
    from crs.data import Dataset
    from crs.types import Catalog

# (key, column title, format): the per-conversation means of the table, then decision times.
METRICS: tuple[tuple[str, str, str], ...] = (
    *((f"SR@{k}", f"SR@{k}", ".3f") for k in SR_CUTOFFS),
    ("AT", "AT", ".2f"),
    ("hDCG", "hDCG", ".3f"),
    ("questions", "questions before 1st list", ".2f"),
    ("decision_ms_p50", "decision ms p50", ".3f"),
    ("decision_ms_p95", "decision ms p95", ".3f"),
)
LOWER_IS_BETTER = frozenset({"AT", "questions", "decision_ms_p50", "decision_ms_p95"})


class PolicyConfigLike(Protocol):
    """What `compare` needs of a configuration (`crs.lab.config.PolicyConfig` has it)."""

    @property
    def label(self) -> str: ...

    @property
    def policy(self) -> str: ...

    @property
    def policy_params(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class ProgressEvent:
    """Where a comparison is: configuration `index` (0-based) of `configs`, in `stage`
    ("training" or "conversations"), `done` of `total` steps of that stage."""

    index: int
    configs: int
    label: str
    stage: str
    done: int
    total: int

    @property
    def overall(self) -> float:
        """Share of the whole comparison done, 0..1 (training counted as nothing)."""
        within = self.done / self.total if self.stage == "conversations" and self.total else 0.0
        return (self.index + within) / self.configs

    def describe(self) -> str:
        return f"{self.label} ({self.index + 1}/{self.configs}): {self.stage}"


Progress = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class ConfigRun:
    """One configuration's run and its estimates."""

    label: str
    policy: str
    policy_params: Mapping[str, Any]  # as run: the defaults with the configuration's own on top
    result: RunResult
    setup_seconds: float  # loading or training the scorer and policy
    estimates: Mapping[str, Estimate]  # METRICS key -> value with a 95 % bootstrap interval
    trace_score: str | None  # what the decision trace's scores mean; None: the policy gives none

    @property
    def records(self) -> tuple[ConversationRecord, ...]:
        return self.result.records


@dataclass(frozen=True)
class PairedTests:
    """One configuration against the baseline, on the same conversations."""

    label: str
    baseline: str
    success: McNemar  # success within the turn limit (SR@15): exact McNemar
    turns: PairedDifference  # AT's per-conversation turns, other - baseline
    hdcg: PairedDifference  # per-conversation hDCG, other - baseline


@dataclass(frozen=True)
class Disagreement:
    conversation_id: int
    spread: float  # largest minus smallest number of turns (15 for a failure) across configurations
    records: tuple[ConversationRecord, ...]  # one per configuration, in their order


@dataclass(frozen=True)
class Comparison:
    dataset: str
    split: str
    seed: int
    limit: int | None
    runs: tuple[ConfigRun, ...]  # the first is the baseline
    tests: tuple[PairedTests, ...]  # one per run after the first
    seconds: float
    catalog: Catalog = field(repr=False, compare=False)
    offset: int = 0  # shuffled pairs skipped before the first conversation (4000: only tuning pairs)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(run.label for run in self.runs)

    @property
    def conversations(self) -> int:
        return len(self.runs[0].records)

    def run(self, label: str) -> ConfigRun:
        for run in self.runs:
            if run.label == label:
                return run
        raise KeyError(f"no configuration labelled {label!r}; labels: {', '.join(self.labels)}")

    def conversation(self, conversation_id: int) -> dict[str, ConversationRecord]:
        """Conversation `conversation_id` as each configuration had it (label -> record)."""
        out = {}
        for run in self.runs:
            found = [r for r in run.records if r.conversation_id == conversation_id]
            if not found:
                raise KeyError(f"conversation {conversation_id} is not in this comparison")
            out[run.label] = found[0]
        return out

    def disagreements(self, limit: int = 10) -> tuple[Disagreement, ...]:
        """The conversations where the configurations differ most: by the spread of their turns
        (a failure counts 15, so one succeeding at turn 3 where another fails comes first), then
        by the spread of hDCG; ties in conversation order. Conversations that agree are left out."""
        max_turns = self.runs[0].result.spec.max_turns
        turns = np.stack([_values(run.records, "AT", max_turns) for run in self.runs])
        gains = np.stack([_values(run.records, "hDCG") for run in self.runs])
        spread = turns.max(axis=0) - turns.min(axis=0)
        gain_spread = gains.max(axis=0) - gains.min(axis=0)
        ids = np.array([r.conversation_id for r in self.runs[0].records])
        order = np.lexsort((ids, -gain_spread, -spread))
        chosen = [i for i in order if spread[i] > 0 or gain_spread[i] > 0][:limit]
        return tuple(
            Disagreement(int(ids[i]), float(spread[i]), tuple(run.records[i] for run in self.runs))
            for i in chosen
        )

    # --- presentation -----------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-able row per configuration: each metric with its interval, and timings."""
        return [
            {
                "label": run.label,
                "policy": run.policy,
                "conversations": len(run.records),
                **{key: run.estimates[key].as_dict() for key, _, _ in METRICS},
                "seconds": run.result.seconds,
                "setup_seconds": run.setup_seconds,
            }
            for run in self.runs
        ]

    def table(self) -> str:
        """Markdown: each metric as `value [low, high]` (95 % bootstrap over conversations)."""
        headers = ["config", "n", *(title for _, title, _ in METRICS)]
        lines = [
            [run.label, str(len(run.records)), *(run.estimates[key].format(fmt) for key, _, fmt in METRICS)]
            for run in self.runs
        ]
        return _markdown(headers, lines)

    def tests_table(self) -> str:
        """Markdown: each configuration against the baseline."""
        headers = [
            "config vs baseline",
            "SR@15: only baseline / only config",
            "McNemar p",
            "Δ turns [95 % CI]",
            "p (turns)",
            "Δ hDCG [95 % CI]",
            "p (hDCG)",
        ]
        lines = [
            [
                f"{test.label} vs {test.baseline}",
                f"{test.success.only_baseline} / {test.success.only_other}",
                format_p(test.success.p_value),
                test.turns.difference.format("+.3f"),
                test.turns.format_p(),
                test.hdcg.difference.format("+.4f"),
                test.hdcg.format_p(),
            ]
            for test in self.tests
        ]
        return _markdown(headers, lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "seed": self.seed,
            "limit": self.limit,
            "offset": self.offset,
            "conversations": self.conversations,
            "confidence": 0.95,
            "seconds": self.seconds,
            "configs": [
                {
                    "label": run.label,
                    "policy": run.policy,
                    "policy_params": dict(run.policy_params),
                    "trace_score": run.trace_score,
                }
                for run in self.runs
            ],
            "rows": self.rows(),
            "tests": [
                {
                    "label": test.label,
                    "baseline": test.baseline,
                    "success_mcnemar": {
                        "only_baseline": test.success.only_baseline,
                        "only_other": test.success.only_other,
                        "p_value": test.success.p_value,
                    },
                    "turns": _difference_json(test.turns),
                    "hDCG": _difference_json(test.hdcg),
                }
                for test in self.tests
            ],
        }

    def attribute_name(self, attribute: int | str | None) -> str:
        if attribute is None:
            return "?"
        try:
            return self.catalog.attributes[self.catalog.attribute_index(attribute)].name
        except (KeyError, ValueError):
            return str(attribute)

    def item_title(self, item: int | str) -> str:
        try:
            return self.catalog.items[self.catalog.item_index(item)].title
        except (KeyError, ValueError):
            return str(item)

    def describe_turn(self, turn: TurnRecord, target: int | str | None = None) -> str:
        """One turn in words, attributes by name: "ask 'jazz' -> yes"."""
        if turn.actor == "user":
            return (
                f"user: {self.attribute_name(turn.attribute)}" if turn.attribute is not None else "user quits"
            )
        if turn.act == "ask":
            return f"ask {self.attribute_name(turn.attribute)!r} -> {turn.answer}"
        if turn.act == "recommend":
            items = turn.items or ()
            if turn.accepted and target is not None and target in items:
                return f"recommend {len(items)} -> accepted (rank {items.index(target) + 1})"
            return f"recommend {len(items)} -> {'accepted' if turn.accepted else 'rejected'}"
        return turn.act

    def describe_candidates(self, turn: TurnRecord, limit: int = 4) -> str:
        """The turn's decision trace: the chosen action (marked *), then the others in the
        policy's order (best first) up to `limit` in all; "" when the turn has none."""
        if not turn.candidates:
            return ""
        shown = [c for c in turn.candidates if c.chosen] + [c for c in turn.candidates if not c.chosen]
        shown = shown[:limit]
        parts = []
        for candidate in shown:
            what = (
                f"ask {self.attribute_name(candidate.attribute)}" if candidate.act == "ask" else candidate.act
            )
            parts.append(f"{what} {candidate.score:.2f}{'*' if candidate.chosen else ''}")
        return ", ".join(parts)


def compare(
    configs: Sequence[PolicyConfigLike],
    dataset: Dataset,
    split: str = "valid",
    limit: int | None = 1000,
    seed: int = 0,
    workers: int = 1,
    progress: Progress | None = None,
    *,
    cache_dir: Path | None = None,
    settings: Mapping[str, Any] | None = None,
    trace: bool = True,
    offset: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
    permutations: int = PERMUTATIONS,
) -> Comparison:
    """Run each configuration on the first `limit` shuffled pairs of `split` with `seed` and
    compare them with the first. `settings`: a resolved crs configuration (`crs.config.load_config`)
    for the scorer, simulator and turn limit, and for the policies' default parameters (which a
    configuration's own override); default: crs/defaults.toml. Raises ValueError on bad input."""
    from crs.config import load_config

    if not configs:
        raise ValueError("nothing to compare: give at least one policy configuration")
    config = dict(settings) if settings is not None else load_config()
    labels = unique_labels([c.label for c in configs])
    for cfg in configs:  # question rules name groups and attributes: check them all before any run
        check = getattr(cfg, "check", None)
        if callable(check):
            check(dataset)
    started = time.perf_counter()
    runs: list[ConfigRun] = []
    for index, (label, cfg) in enumerate(zip(labels, configs, strict=True)):

        def report(stage: str, done: int, total: int, index: int = index, label: str = label) -> None:
            if progress is not None:
                progress(ProgressEvent(index, len(configs), label, stage, done, total))

        run = _run_config(
            label, cfg, dataset, split, limit, seed, workers, config, cache_dir, trace, report, offset
        )
        estimates = estimate_metrics(run.records, run.result.spec.max_turns, resamples, seed)
        runs.append(replace(run, estimates=estimates))
    baseline, max_turns = runs[0], runs[0].result.spec.max_turns
    tests = tuple(
        paired_tests(
            baseline.records, run.records, baseline.label, run.label, permutations, resamples, seed, max_turns
        )
        for run in runs[1:]
    )
    return Comparison(
        dataset=dataset.name,
        split=split,
        seed=seed,
        limit=limit,
        runs=tuple(runs),
        tests=tests,
        seconds=time.perf_counter() - started,
        catalog=dataset.catalog,
        offset=offset,
    )


def unique_labels(labels: Sequence[str]) -> list[str]:
    """Labels as given, a repeated one numbered ("belief", "belief (2)"): comparing a file with
    itself is a fair sanity check, and every row must still be told apart."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def _run_config(
    label: str,
    cfg: PolicyConfigLike,
    dataset: Dataset,
    split: str,
    limit: int | None,
    seed: int,
    workers: int,
    config: Mapping[str, Any],
    cache_dir: Path | None,
    trace: bool,
    report: Callable[[str, int, int], None],
    offset: int = 0,
) -> ConfigRun:
    from policy.learning import TrainingContext

    run = config["evaluate"]
    params = {**config["policy"].get(cfg.policy, {}), **dict(cfg.policy_params)}
    scorer = run["scorer"]
    scorer_params = config["scorer"].get(scorer, {})
    spec = RunSpec(
        dataset=dataset.name,
        split=split,
        policy=cfg.policy,
        policy_params=params,
        scorer=scorer,
        scorer_params=scorer_params,
        simulator=run["simulator"],
        limit=limit,
        offset=offset,
        seed=seed,
        workers=workers,
        max_turns=run["max_turns"],
        answer_noise=run["answer_noise"],
        dont_know=run["dont_know"],
        patience=run["patience"] or None,
        trace=trace,
    )
    epochs = int(scorer_params.get("epochs", 0) or 0)
    started = time.perf_counter()
    policy = build_policy(
        spec,
        dataset,
        cache_dir,
        progress=lambda epoch, _loss: report("training scorer", epoch, max(epochs, epoch)),
        training=TrainingContext(
            cache_dir, lambda stage, fraction: report(stage, round(100 * fraction), 100)
        ),
    )
    setup_seconds = time.perf_counter() - started
    result = evaluate(
        spec, dataset, policy, progress=lambda done, total: report("conversations", done, total)
    )
    return ConfigRun(
        label=label,
        policy=cfg.policy,
        policy_params=params,
        result=result,
        setup_seconds=setup_seconds,
        estimates={},
        trace_score=getattr(policy, "trace_score", None) if hasattr(policy, "considered") else None,
    )


# --- per-conversation values ----------------------------------------------------------------------


def _values(records: Sequence[ConversationRecord], key: str, max_turns: int = 15) -> np.ndarray:
    """One number per conversation whose mean is the metric `key` (as `compute_metrics` counts)."""
    if key.startswith("SR@"):
        k = int(key[3:])
        return np.array([r.success_t is not None and r.success_t < k for r in records], dtype=np.float64)
    if key == "AT":
        return np.array(
            [r.success_t + 1 if r.success_t is not None else max_turns for r in records], dtype=np.float64
        )
    if key == "hDCG":
        return np.array(
            [hdcg(r.success_t, r.target_rank or 1) if r.success_t is not None else 0.0 for r in records]
        )
    if key == "questions":
        return np.array([questions_before_first_list(r) for r in records], dtype=np.float64)
    raise KeyError(key)


def questions_before_first_list(record: ConversationRecord) -> int:
    """Questions the system asked before its first recommendation (all of them if it never made one)."""
    asked = 0
    for turn in record.turns:
        if turn.act == "recommend":
            break
        asked += turn.act == "ask"
    return asked


def estimate_metrics(
    records: Sequence[ConversationRecord],
    max_turns: int = 15,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Every METRICS entry with a 95 % bootstrap interval over conversations (seeded)."""
    out: dict[str, Estimate] = {}
    for key, _, _ in METRICS:
        if key.startswith("decision_ms_"):
            q = float(key.removeprefix("decision_ms_p"))
            out[key] = bootstrap_grouped_percentile([r.decision_ms for r in records], q, resamples, seed=seed)
        else:
            out[key] = bootstrap_mean(_values(records, key, max_turns), resamples, seed=seed)
    return out


def paired_tests(
    baseline: Sequence[ConversationRecord],
    other: Sequence[ConversationRecord],
    baseline_label: str,
    label: str,
    permutations: int = PERMUTATIONS,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    max_turns: int = 15,
) -> PairedTests:
    """`other` against `baseline`, conversation by conversation (they must be the same ones)."""
    if [r.conversation_id for r in baseline] != [r.conversation_id for r in other]:
        raise ValueError("paired tests need the same conversations in the same order")
    success = f"SR@{SR_CUTOFFS[-1]}"
    return PairedTests(
        label=label,
        baseline=baseline_label,
        success=mcnemar_exact(_values(baseline, success) > 0, _values(other, success) > 0),
        turns=paired_permutation(
            _values(baseline, "AT", max_turns),
            _values(other, "AT", max_turns),
            permutations,
            resamples,
            seed=seed,
        ),
        hdcg=paired_permutation(
            _values(baseline, "hDCG"), _values(other, "hDCG"), permutations, resamples, seed=seed
        ),
    )


def _difference_json(test: PairedDifference) -> dict[str, Any]:
    return {**test.difference.as_dict(), "p_value": test.p_value, "exact": test.exact, "draws": test.draws}


def _markdown(headers: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    if not lines:
        return ""
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]

    def render(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([render(headers), separator, *(render(line) for line in lines)])
