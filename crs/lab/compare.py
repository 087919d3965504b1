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

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from crs.env import Tracing
from crs.evaluation.metrics import SR_CUTOFFS, conversation_values
from crs.evaluation.records import ConversationRecord, TurnRecord
from crs.evaluation.report import markdown_table
from crs.evaluation.runner import CONVERSATIONS_STAGE, RunResult, conversation_ids, evaluate
from crs.factory import policy_for_run
from crs.lab.stats import (
    BOOTSTRAP_RESAMPLES,
    MIN_INTERVAL_CONVERSATIONS,
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
from crs.progress import Progress, ProgressEvent
from crs.protocol import target_pairs
from crs.settings import RunSpec, Settings, run_spec

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
    """What `compare` needs of a configuration (`crs.policy_config.PolicyConfig` has it)."""

    @property
    def label(self) -> str: ...

    @property
    def policy(self) -> str: ...

    @property
    def policy_params(self) -> Mapping[str, Any]: ...


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
class KeptRun:
    """What a `RunStore` holds of one configuration's run before it plays."""

    records: tuple[ConversationRecord, ...] = ()  # the first conversations, played by a killed run
    finished: ConfigRun | None = None  # the whole run, read back: it is not played again


class RunStore(Protocol):
    """Where `compare` keeps each configuration's run as it plays, so that a killed comparison
    resumes instead of starting over (`crs.lab.report.ReportFolder`). Configuration `index`'s
    calls come in this order: `kept`, then (unless it is finished) `start`, its records, `finish`."""

    def kept(self, index: int, label: str, spec: RunSpec) -> KeptRun: ...

    def start(
        self, index: int, label: str, spec: RunSpec, trace_score: str | None, setup_seconds: float
    ) -> Callable[[ConversationRecord], None]: ...

    def finish(self, index: int, run: ConfigRun) -> ConfigRun:
        """Keep the finished run; give it back as a resumed comparison would read it."""
        ...


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

    def interval_note(self) -> str:
        """Why some cells of the tables read "[n/a]", as a sentence to put under them; "" when
        every cell has its interval."""
        estimates = [estimate for run in self.runs for estimate in run.estimates.values()]
        estimates += [d for test in self.tests for d in (test.turns.difference, test.hdcg.difference)]
        if all(estimate.defined for estimate in estimates):
            return ""
        if self.conversations < MIN_INTERVAL_CONVERSATIONS:
            note = (
                f"n/a: intervals need at least {MIN_INTERVAL_CONVERSATIONS} conversations (this "
                f"comparison has {self.conversations}); with fewer, a bootstrap interval is far narrower "
                "than the real uncertainty."
            )
            # Below the minimum few enough pairs differ for every sign pattern to be enumerated.
            return note + (" The paired tests' p-values are exact and still hold." if self.tests else "")
        return (
            "n/a: no interval where every conversation gives the same value (there is no spread to "
            f"resample) or fewer than {MIN_INTERVAL_CONVERSATIONS} conversations give a value at all."
        )

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
    settings: Settings | None = None,
    progress: Progress | None = None,
    *,
    trace: bool = True,
    resamples: int = BOOTSTRAP_RESAMPLES,
    permutations: int = PERMUTATIONS,
    store: RunStore | None = None,
) -> Comparison:
    """Run each configuration on the same conversations and compare them with the first.

    `settings` (default: crs/defaults.toml) give everything but the policy: the split, which
    conversations (`evaluate.limit`, `offset`, `seed`, `workers`), the scorer, the simulated user
    and its answer options, and the policies' default parameters, which a configuration's own
    override. `store`: where each run is kept as it plays, and what an interrupted comparison
    already played. Raises ValueError on bad input."""
    if not configs:
        raise ValueError("nothing to compare: give at least one policy configuration")
    base = settings if settings is not None else Settings()
    labels = unique_labels([c.label for c in configs])
    for cfg in configs:  # question rules name groups and attributes: check them all before any run
        check = getattr(cfg, "check", None)
        if callable(check):
            check(dataset)
    started = time.perf_counter()
    runs: list[ConfigRun] = []
    for index, (label, cfg) in enumerate(zip(labels, configs, strict=True)):
        relay = _relay(progress, index, len(configs), label)
        run = _run_config(label, cfg, dataset, base, trace, relay, store, index)
        estimates = estimate_metrics(run.records, run.result.spec.max_turns, resamples, run.result.spec.seed)
        runs.append(replace(run, estimates=estimates))
    baseline, spec = runs[0], runs[0].result.spec
    tests = tuple(
        paired_tests(
            baseline.records,
            run.records,
            baseline.label,
            run.label,
            permutations,
            resamples,
            spec.seed,
            spec.max_turns,
        )
        for run in runs[1:]
    )
    return Comparison(
        dataset=dataset.name,
        split=spec.split,
        seed=spec.seed,
        limit=spec.limit,
        runs=tuple(runs),
        tests=tests,
        seconds=time.perf_counter() - started,
        catalog=dataset.catalog,
        offset=spec.offset,
    )


def _relay(progress: Progress | None, index: int, configs: int, label: str) -> Progress | None:
    """Events of one configuration's run, named after it and placed in the whole comparison."""
    if progress is None:
        return None

    def on_event(event: ProgressEvent) -> None:
        within = event.done / event.total if event.stage == CONVERSATIONS_STAGE and event.total else 0.0
        progress(
            dataclasses.replace(
                event,
                stage=f"{label} ({index + 1}/{configs}): {event.stage}",
                overall=(index + within) / configs,
            )
        )

    return on_event


def unique_labels(labels: Sequence[str]) -> list[str]:
    """Labels as given, a repeated one numbered ("belief", "belief (2)"): comparing a file with
    itself is a fair sanity check, and every row must still be told apart."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def config_settings(settings: Settings, cfg: PolicyConfigLike) -> Settings:
    """`settings` running the configuration's policy with its parameters on top of the defaults."""
    return settings.replace("evaluate", policy=cfg.policy).with_policy_params(cfg.policy, cfg.policy_params)


def _run_config(
    label: str,
    cfg: PolicyConfigLike,
    dataset: Dataset,
    settings: Settings,
    trace: bool,
    progress: Progress | None,
    store: RunStore | None = None,
    index: int = 0,
) -> ConfigRun:
    config_run = config_settings(settings, cfg)
    spec = run_spec(config_run, trace=trace)
    kept = store.kept(index, label, spec) if store is not None else KeptRun()
    if kept.finished is not None:
        played = [record.conversation_id for record in kept.finished.records]
        if played != list(conversation_ids(spec, len(target_pairs(dataset, spec.split)))):
            raise ValueError(f"the saved run of {label!r} does not hold this comparison's conversations")
        return kept.finished
    started = time.perf_counter()
    policy = policy_for_run(spec, dataset, config_run.cache_dir, progress)
    setup_seconds = time.perf_counter() - started
    trace_score = policy.trace_score if isinstance(policy, Tracing) else None
    on_record = None
    if store is not None:
        on_record = store.start(index, label, spec, trace_score, setup_seconds)
    result = evaluate(
        spec, dataset, policy, progress, config_run.cache_dir, on_record=on_record, done=kept.records
    )
    run = ConfigRun(
        label=label,
        policy=cfg.policy,
        policy_params=dict(spec.policy_params),
        result=result,
        setup_seconds=setup_seconds,
        estimates={},
        trace_score=trace_score,
    )
    return store.finish(index, run) if store is not None else run


# --- turns as a person reads them -----------------------------------------------------------------


def turn_number(turn: TurnRecord) -> int:
    """The number the lab shows for `turn`: system action t is turn t + 1, the count SR@k, AT, the
    plots and "success at turn k" use, so a replay's rows agree with its outcome and the table.
    The user's opening comes before any system action: turn 0."""
    return 0 if turn.t is None else turn.t + 1


def success_turn(record: ConversationRecord) -> int | None:
    """The turn (as `turn_number` counts) of the list the user took the target from; None: failed."""
    return None if record.success_t is None else record.success_t + 1


def replay_rows(
    records: Sequence[ConversationRecord], up_to: int | None = None
) -> list[tuple[int, tuple[TurnRecord | None, ...]]]:
    """Conversations side by side: per turn number (`turn_number`, 0 the opening) up to `up_to`,
    each record's turn of that number, or None where its conversation had ended."""
    numbers = sorted({turn_number(turn) for record in records for turn in record.turns})
    by_number = [{turn_number(turn): turn for turn in record.turns} for record in records]
    return [
        (number, tuple(turns.get(number) for turns in by_number))
        for number in numbers
        if up_to is None or number <= up_to
    ]


def last_turn(record: ConversationRecord) -> int:
    """The number of the conversation's last turn (0 when it ended at the user's opening)."""
    return max((turn_number(turn) for turn in record.turns), default=0)


# --- per-conversation values ----------------------------------------------------------------------


def _values(records: Sequence[ConversationRecord], key: str, max_turns: int = 15) -> np.ndarray:
    """One number per conversation whose mean is the metric `key`: SR@k, AT and hDCG as
    `compute_metrics` averages them (`conversation_values`), and the questions before the first list."""
    if key == "questions":
        return np.array([questions_before_first_list(r) for r in records], dtype=np.float64)
    return np.array(conversation_values([r.outcome for r in records], key, max_turns), dtype=np.float64)


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


_markdown = markdown_table  # the one renderer of crs.evaluation.report, so both tables look alike
