"""Simulated-user evaluation: many conversations, optionally in parallel, reproducibly.

Target pairs are the evaluation split's (user, item) pairs in file order, shuffled once with
`numpy.random.seed(1)` as SCPR and UNICORN do. Conversation i draws all its randomness from
`SeedSequence([seed, i])`, split into one stream for the simulated user and one for the policy,
so results do not depend on the number of worker processes or on the order chunks finish in.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crs.data import Dataset
from crs.engine import ConversationEngine, Policy
from crs.evaluation.metrics import Metrics, compute_metrics
from crs.evaluation.records import ConsideredAction, ConversationRecord, TurnRecord
from crs.registry import POLICIES, SIMULATORS
from crs.types import AcceptReply, AnswerReply, Ask, Catalog, GiveUp, InformReply, Recommend
from simulators.rule_based import SimulatorOptions

if TYPE_CHECKING:
    from policy.learning import TrainingContext

PROTOCOL_SHUFFLE_SEED = 1
CHUNK_SIZE = 250


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines the numbers of an evaluation run."""

    dataset: str = "lastfm_star"
    split: str = "valid"
    policy: str = "max_entropy"
    policy_params: Mapping[str, Any] = field(default_factory=dict)
    scorer: str = "popularity"
    scorer_params: Mapping[str, Any] = field(default_factory=dict)
    simulator: str = "rule"
    limit: int | None = None
    offset: int = 0  # skip the first N shuffled pairs (e.g. 4000: the tuning pairs of policy.learning)
    seed: int = 0
    workers: int = 1
    max_turns: int = 15
    answer_noise: float = 0.0
    dont_know: float = 0.0
    patience: int | None = None
    trace: bool = False  # record the actions the policy considered each turn (policies that can say)
    # Settings of the simulator beyond the protocol's (the LLM user's [simulator.llm] and [llm]).
    simulator_params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose one of: {', '.join(POLICIES.names())}")
        if self.simulator not in SIMULATORS:
            raise ValueError(
                f"unknown simulator {self.simulator!r}; choose one of: {', '.join(SIMULATORS.names())}"
            )
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be a positive number of conversations, got {self.limit}")
        if self.offset < 0:
            raise ValueError(f"offset must be a number of pairs to skip (0 or more), got {self.offset}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.max_turns < 2:
            raise ValueError(f"max_turns must leave room for one system action, got {self.max_turns}")


def target_pairs(dataset: Dataset, split: str, limit: int | None = None) -> np.ndarray:
    """The protocol's conversation targets: rows of (user id, item index)."""
    pairs = dataset.split(split).pairs()
    if not pairs:
        raise ValueError(f"split {split!r} of {dataset.name!r} has no (user, item) pairs to evaluate")
    # Generic catalogs may have string user ids; those pairs are shuffled as objects.
    dtype = np.int64 if all(isinstance(user, int) for user, _ in pairs) else object
    array = np.array(pairs, dtype=dtype)
    np.random.RandomState(PROTOCOL_SHUFFLE_SEED).shuffle(array)
    return array[:limit] if limit else array


def conversation_rngs(seed: int, conversation_id: int) -> tuple[np.random.Generator, np.random.Generator]:
    user_seed, policy_seed = np.random.SeedSequence([seed, conversation_id]).spawn(2)
    return np.random.default_rng(user_seed), np.random.default_rng(policy_seed)


@dataclass
class _Runner:
    """The per-process objects of a run (built once, inherited by forked workers)."""

    spec: RunSpec
    dataset: Dataset
    policy: Policy
    pairs: np.ndarray

    def run_range(self, start: int, stop: int) -> list[ConversationRecord]:
        return [self.run_one(i) for i in range(start, stop)]

    def run_one(self, conversation_id: int) -> ConversationRecord:
        if self.spec.simulator == "llm":  # the whole chat in words: crs/evaluation/spoken.py
            from crs.evaluation.spoken import run_spoken_conversation

            return run_spoken_conversation(self, conversation_id)
        spec, catalog = self.spec, self.dataset.catalog
        user_id, target = self.pairs[conversation_id]
        user_id = user_id.item() if isinstance(user_id, np.generic) else user_id
        target = int(target)
        options = SimulatorOptions(
            answer_noise=spec.answer_noise, dont_know=spec.dont_know, patience=spec.patience
        )
        user_rng, policy_rng = conversation_rngs(spec.seed, conversation_id)
        tracing = spec.trace and hasattr(self.policy, "considered")
        engine = ConversationEngine(self.policy, max_turns=spec.max_turns)
        try:
            participant = SIMULATORS.create(spec.simulator, catalog, target, options)
            state = engine.start(self.dataset.user(user_id), participant.opening(user_rng))
        except ValueError as error:  # e.g. a target without attributes cannot be talked about
            return self._record(conversation_id, user_id, target, [], None, None, "error", str(error))
        opening = state.history[0].reply
        turns = [
            TurnRecord(
                turn=1,
                actor="user",
                act="inform" if isinstance(opening, InformReply) else "quit",
                attribute=_attribute_id(catalog, opening),
            )
        ]
        success_t: int | None = None
        target_rank: int | None = None
        t = 0
        while not state.finished:
            try:
                result = engine.step(state, participant, policy_rng, user_rng)
            except Exception as error:  # a broken plug-in ends one conversation, not the whole run
                return self._record(conversation_id, user_id, target, turns, None, None, "error", repr(error))
            action, reply, ms = result.action, result.reply, round(result.decision_seconds * 1000.0, 4)
            turn = result.state.turn
            # Asked after the timed decision, with no rng: tracing changes neither.
            considered = _considered(self.policy, catalog, state, action) if tracing else None
            if isinstance(action, Ask):
                answer = reply.answer.value if isinstance(reply, AnswerReply) else "quit"
                attribute = catalog.attributes[action.attribute].id
                turns.append(
                    TurnRecord(
                        turn,
                        "ask",
                        t=t,
                        attribute=attribute,
                        answer=answer,
                        decision_ms=ms,
                        candidates=considered,
                    )
                )
            elif isinstance(action, Recommend):
                accepted = isinstance(reply, AcceptReply)
                items = tuple(catalog.items[i].id for i in action.items)
                turns.append(
                    TurnRecord(
                        turn,
                        "recommend",
                        t=t,
                        items=items,
                        accepted=accepted,
                        decision_ms=ms,
                        candidates=considered,
                    )
                )
                if accepted:
                    success_t, target_rank = t, action.items.index(target) + 1
            elif isinstance(action, GiveUp):
                turns.append(TurnRecord(turn, "give_up", t=t, decision_ms=ms, candidates=considered))
            state = result.state
            t += 1
        assert state.termination is not None
        return self._record(
            conversation_id, user_id, target, turns, success_t, target_rank, state.termination
        )

    def _record(
        self,
        conversation_id: int,
        user_id: Any,
        target: int,
        turns: list[TurnRecord],
        success_t: int | None,
        target_rank: int | None,
        termination: Any,
        error: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> ConversationRecord:
        """The conversation's record; `extra` holds what a simulator measures beyond the protocol."""
        spec = self.spec
        return ConversationRecord(
            conversation_id=conversation_id,
            dataset=self.dataset.name,
            split=spec.split,
            user_id=user_id,
            target_item=self.dataset.catalog.items[target].id,
            policy=spec.policy,
            simulator=spec.simulator,
            seed=spec.seed,
            turns=tuple(turns),
            success=success_t is not None,
            success_t=success_t,
            target_rank=target_rank,
            termination=termination,
            extra={**(extra or {}), **({"error": error} if error else {})},
        )


def _considered(policy: Any, catalog: Catalog, state: Any, action: Any) -> tuple[ConsideredAction, ...]:
    """A tracing policy's decision trace (`policy.base.Tracing`) in the dataset's ids."""
    return tuple(
        ConsideredAction(
            c.act, c.score, catalog.attributes[c.attribute].id if c.attribute is not None else None, c.chosen
        )
        for c in policy.considered(state, action)
    )


def _attribute_id(catalog: Catalog, reply: Any) -> int | str | None:
    attributes = getattr(reply, "attributes", ())
    return catalog.attributes[attributes[0]].id if attributes else None


_WORKER_RUNNER: _Runner | None = None  # set in each forked worker process, never in the parent


def _init_worker(runner: _Runner) -> None:
    global _WORKER_RUNNER
    _WORKER_RUNNER = runner


def _run_chunk(bounds: tuple[int, int]) -> list[ConversationRecord]:
    assert _WORKER_RUNNER is not None
    return _WORKER_RUNNER.run_range(*bounds)


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    records: tuple[ConversationRecord, ...]
    metrics: Metrics
    seconds: float  # wall time of the conversations (loading and training excluded)
    decision_ms_p50: float
    decision_ms_p95: float

    @property
    def conversations_per_second(self) -> float:
        return len(self.records) / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> dict[str, Any]:
        terminations: dict[str, int] = {}
        for record in self.records:
            terminations[record.termination] = terminations.get(record.termination, 0) + 1
        return {
            **self.metrics.as_dict(),
            "conversations_per_second": self.conversations_per_second,
            "seconds": self.seconds,
            "decision_ms_p50": self.decision_ms_p50,
            "decision_ms_p95": self.decision_ms_p95,
            "terminations": terminations,
            **_spoken_summary(self.records, self.seconds),
        }


def _spoken_summary(records: tuple[ConversationRecord, ...], seconds: float) -> dict[str, Any]:
    if not records or records[0].simulator != "llm":
        return {}
    from crs.evaluation.spoken import spoken_summary

    return spoken_summary(records, seconds)


def build_policy(
    spec: RunSpec,
    dataset: Dataset,
    cache_dir: Path | None = None,
    progress: Callable[[int, float], None] | None = None,
    training: TrainingContext | None = None,
) -> Policy:
    """The spec's policy with its scorer. A policy that learns gets `training` (default: the
    cache directory, no progress) and trains or loads what it needs while being built."""
    from crs.scoring import make_scorer

    scorer = make_scorer(spec.scorer, dataset, cache_dir, progress=progress, **dict(spec.scorer_params))
    policy_class = POLICIES.get(spec.policy)
    params = dict(spec.policy_params)
    if getattr(policy_class, "learns", False):
        from policy.learning import TrainingContext

        params["training"] = training or TrainingContext(cache_dir)
    try:
        return policy_class(dataset, scorer, **params)
    except TypeError as error:
        raise ValueError(f"bad parameters for policy {spec.policy!r}: {error}") from None


def evaluate(
    spec: RunSpec,
    dataset: Dataset,
    policy: Policy,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Run the spec's conversations. `progress(done, total)` is called after each chunk."""
    pairs = target_pairs(dataset, spec.split)
    if spec.offset >= len(pairs):
        raise ValueError(f"offset {spec.offset} skips all {len(pairs)} pairs of split {spec.split!r}")
    # Conversation ids (and so their seeds) are positions in the whole shuffled list: a pair gets
    # the same conversation whatever the offset and limit.
    end = len(pairs) if spec.limit is None else min(len(pairs), spec.offset + spec.limit)
    runner = _Runner(spec, dataset, policy, pairs)
    total = end - spec.offset
    chunks = [(start, min(start + CHUNK_SIZE, end)) for start in range(spec.offset, end, CHUNK_SIZE)]
    records: list[ConversationRecord] = []
    started = time.perf_counter()
    if spec.workers == 1:
        for bounds in chunks:
            records.extend(runner.run_range(*bounds))
            if progress:
                progress(len(records), total)
    else:
        # fork shares the loaded dataset and policy with the workers without pickling them.
        context = multiprocessing.get_context("fork")
        with context.Pool(spec.workers, initializer=_init_worker, initargs=(runner,)) as pool:
            for chunk in pool.imap(_run_chunk, chunks):
                records.extend(chunk)
                if progress:
                    progress(len(records), total)
    seconds = time.perf_counter() - started
    decisions = np.array([ms for record in records for ms in record.decision_ms] or [0.0])
    return RunResult(
        spec=spec,
        records=tuple(records),
        metrics=compute_metrics([record.outcome for record in records], spec.max_turns),
        seconds=seconds,
        decision_ms_p50=float(np.percentile(decisions, 50)),
        decision_ms_p95=float(np.percentile(decisions, 95)),
    )
