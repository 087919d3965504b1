"""Simulated-user evaluation: many conversations, optionally in parallel, reproducibly.

Which pair conversation i is about and which random numbers it draws is the protocol's business
(`crs.protocol`); this module plays the conversations, in one process, a pool of forked workers
(`workers`), or Ray tasks on a cluster (`engine = "ray"`, `crs.evaluation.ray_engine`), and gathers
their records in conversation order. Results depend on none of these.

A conversation with the rule user is the policy driving a `crs.env.ConversationEnv`; with the
LLM user (`--simulator llm`) it is the whole chat in words (`crs.evaluation.spoken`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crs.data import Dataset
from crs.env import ConversationEnv, Policy, Tracing
from crs.evaluation.context import RunContext
from crs.evaluation.metrics import Metrics, compute_metrics
from crs.evaluation.records import ConsideredAction, ConversationRecord, turn_record
from crs.factory import simulated_user_for
from crs.progress import Progress, report
from crs.protocol import conversation_range, conversation_rngs, target_at, target_pairs
from crs.settings import RunSpec
from crs.types import Catalog, DialogueState, SystemAction

__all__ = ["RunResult", "RunSpec", "conversation_ids", "evaluate", "play_conversation", "run_result"]

BATCH = 8  # conversations a worker plays before sending them back (rule user; the LLM user: 1)
CONVERSATIONS_STAGE = "conversations"


def play_conversation(context: RunContext, conversation_id: int) -> ConversationRecord:
    """Conversation `conversation_id` of the run: the policy against the run's simulated user.
    A failing policy or user ends this conversation only, recorded with termination "error"."""
    if context.spec.simulator == "llm":  # the whole chat in words
        from crs.evaluation.spoken import run_spoken_conversation

        return run_spoken_conversation(context, conversation_id)
    spec, catalog, policy = context.spec, context.dataset.catalog, context.policy
    target = target_at(context.pairs, conversation_id)
    user_rng, policy_rng = conversation_rngs(spec.seed, conversation_id)
    tracing = policy if spec.trace and isinstance(policy, Tracing) else None
    try:
        user = simulated_user_for(spec, catalog, target.item)
        env = ConversationEnv(context.dataset.user(target.user_id), user, spec.max_turns)
        state, _ = env.reset(user_rng)
    except ValueError as error:  # e.g. a target without attributes cannot be talked about
        return context.record(target, [], None, "error", {"error": str(error)})
    turns = [turn_record(catalog, state.history[0])]
    t = 0
    while not state.finished:
        try:
            started = time.perf_counter()
            action = policy.act(state, policy_rng)
            ms = round((time.perf_counter() - started) * 1000.0, 4)
            # Asked after the timed decision, with no rng: tracing changes neither.
            considered = _considered(tracing, catalog, state, action) if tracing else None
            after, *_ = env.step(action)
        except Exception as error:  # a broken plug-in ends one conversation, not the whole run
            return context.record(target, turns, None, "error", {"error": repr(error)})
        turns.append(turn_record(catalog, after.history[-1], t, decision_ms=ms, candidates=considered))
        state, t = after, t + 1
    assert state.termination is not None
    return context.record(target, turns, state.accepted_item, state.termination)


def _considered(
    policy: Tracing, catalog: Catalog, state: DialogueState, action: SystemAction
) -> tuple[ConsideredAction, ...]:
    """A tracing policy's decision trace in the dataset's ids."""
    return tuple(
        ConsideredAction(
            c.act, c.score, catalog.attributes[c.attribute].id if c.attribute is not None else None, c.chosen
        )
        for c in policy.considered(state, action)
    )


_WORKER_CONTEXT: RunContext | None = None  # set in each forked worker process, never in the parent


def _init_worker(context: RunContext) -> None:
    global _WORKER_CONTEXT
    _WORKER_CONTEXT = context
    # Ctrl+C is the parent's to handle (it keeps what finished and stops the pool): a worker
    # that also caught it would print a traceback per process. The pool stops its workers with
    # SIGTERM, which must end them quietly whatever handler the parent had when it forked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run_one(conversation_id: int) -> ConversationRecord:
    assert _WORKER_CONTEXT is not None
    return play_conversation(_WORKER_CONTEXT, conversation_id)


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    records: tuple[ConversationRecord, ...]
    metrics: Metrics
    seconds: float  # wall time of the conversations (loading and training excluded; Ray's start-up included)
    decision_ms_p50: float
    decision_ms_p95: float

    def raise_for_errors(self) -> None:
        """For benchmarks: a run whose conversations failed is not a result (RuntimeError naming
        the first failure), however good the other numbers look."""
        failed = [record for record in self.records if record.termination == "error"]
        if failed:
            first = failed[0]
            raise RuntimeError(
                f"{len(failed)} of {len(self.records)} conversations ended in an error; conversation "
                f"{first.conversation_id}: {first.extra.get('error', 'no message')}"
            )

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


def evaluate(
    spec: RunSpec,
    dataset: Dataset,
    policy: Policy,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
    on_record: Callable[[ConversationRecord], None] | None = None,
    done: Sequence[ConversationRecord] = (),
) -> RunResult:
    """Run the spec's conversations, reporting to `progress` as they finish, in this process, a
    pool of `spec.workers` processes, or on Ray (`spec.engine`; a `RayEngineError`, a ValueError,
    when Ray is missing or its cluster does not answer). `cache_dir`: where
    the LLM user keeps its model and responses (None: the default cache). `on_record` gets every
    conversation as it ends, in conversation order (a run folder appends it). `done`: the first
    conversations of an interrupted run, not played again; the result holds them too."""
    pairs = target_pairs(dataset, spec.split)
    ids = conversation_ids(spec, len(pairs))
    if [record.conversation_id for record in done] != list(ids[: len(done)]):
        raise ValueError("the saved conversations are not this run's first ones: it cannot be resumed")
    context = RunContext(spec, dataset, policy, pairs, cache_dir)
    records: list[ConversationRecord] = list(done)
    todo = ids[len(done) :]

    def finished(record: ConversationRecord) -> None:
        records.append(record)
        if on_record is not None:
            on_record(record)
        report(progress, CONVERSATIONS_STAGE, len(records), len(ids), "conv")

    started = time.perf_counter()
    # A conversation comes back as it ends (in order): small batches lose little to a kill.
    batch = 1 if spec.simulator == "llm" else BATCH
    if spec.engine == "ray" and todo:
        from crs.evaluation.ray_engine import play_on_ray

        played = play_on_ray(play_conversation, context, todo, batch, spec.ray_address, spec.workers)
        with contextlib.closing(played):  # an early end (Ctrl+C) cancels the tasks in flight
            for record in played:
                finished(record)
    elif spec.workers == 1 or len(todo) <= 1:
        for conversation_id in todo:
            finished(play_conversation(context, conversation_id))
    else:
        # fork shares the loaded dataset and policy with the workers without pickling them.
        pool_context = multiprocessing.get_context("fork")
        with pool_context.Pool(spec.workers, initializer=_init_worker, initargs=(context,)) as pool:
            for record in pool.imap(_run_one, todo, chunksize=batch):
                finished(record)
    return run_result(spec, records, time.perf_counter() - started)


def conversation_ids(spec: RunSpec, pairs: int) -> range:
    """The conversations the spec plays, of a split with `pairs` target pairs."""
    try:
        return conversation_range(pairs, spec.offset, spec.limit)
    except ValueError as error:
        raise ValueError(f"{error} of split {spec.split!r}") from None


def run_result(spec: RunSpec, records: Sequence[ConversationRecord], seconds: float) -> RunResult:
    """The result of a run that played `records` (a finished run read back from its folder too)."""
    decisions = np.array([ms for record in records for ms in record.decision_ms] or [0.0])
    return RunResult(
        spec=spec,
        records=tuple(records),
        metrics=compute_metrics([record.outcome for record in records], spec.max_turns),
        seconds=seconds,
        decision_ms_p50=float(np.percentile(decisions, 50)),
        decision_ms_p95=float(np.percentile(decisions, 95)),
    )
