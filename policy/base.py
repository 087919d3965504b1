"""What every dialogue policy shares: the interface, per-user context and ranking helpers.

A policy is constructed once per dataset (`Policy(dataset, scorer, **params)`) and then asked
for one action per turn with `act(state, rng)`. It keeps no per-conversation state: everything
it knows about the conversation is in the immutable `DialogueState`, so the same policy object
serves many conversations, interleaved or in parallel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from crs.env import Candidate, Policy, Tracing
from crs.index import FloatArray, IntArray
from crs.questions import QuestionRules, resolve_questions
from crs.types import DialogueState, UserId

if TYPE_CHECKING:
    from crs.data import Dataset
    from crs.scoring import Scorer

__all__ = ["Candidate", "Policy", "PolicyBase", "Tracing", "top_k"]


def top_k(items: IntArray, scores: FloatArray, k: int) -> tuple[int, ...]:
    """The k best of `items` by score, best first; ties broken by the lower item index."""
    if len(items) == 0:
        return ()
    item_scores = scores[items]
    if len(items) > k:
        keep = np.argpartition(-item_scores, k - 1)[:k]
        items, item_scores = items[keep], item_scores[keep]
    order = np.lexsort((items, -item_scores))
    return tuple(int(i) for i in items[order])


class PolicyBase:
    """What the built-in policies share: the dataset, scorer and question rules, and the last
    user's lookups (one entry, replaced whole: see `user_context`)."""

    name = "base"
    # Attributes `act` may replace: caches keyed by what they were computed for (the conformance
    # check's "keeps no state" rule allows these and nothing else).
    cache_attributes: tuple[str, ...] = ("_user_context",)

    def __init__(
        self,
        dataset: Dataset,
        scorer: Scorer,
        list_size: int = 10,
        questions: Mapping[str, Any] | None = None,
    ) -> None:
        if list_size < 1:
            raise ValueError(f"list_size must be at least 1, got {list_size}")
        self.dataset = dataset
        self.scorer = scorer
        self.index = dataset.catalog.index
        self.list_size = list_size
        # Question rules (crs.questions): which attributes may be asked, their weights, a
        # question limit. None (no rules) keeps every policy's own behaviour exactly.
        self.question_rules: QuestionRules | None = resolve_questions(
            questions, dataset.catalog, dataset.name
        )
        # The last user's context, as one tuple: one policy serves many conversations and threads
        # at once, so the user id and what belongs to it are read and replaced together, never
        # one without the other (two attributes could pair one user's id with another's scores).
        self._user_context: tuple[UserId, FloatArray, IntArray] | None = None

    def user_context(self, user_id: UserId) -> tuple[FloatArray, IntArray]:
        """The user's item scores and training items (never worth recommending: already known)."""
        cached = self._user_context
        if cached is None or cached[0] != user_id:
            scores = np.asarray(self.scorer.scores(user_id), dtype=np.float64)
            seen = np.asarray(self.dataset.train.items_of(user_id), dtype=np.int64)
            cached = self._user_context = (user_id, scores, seen)
        return cached[1], cached[2]

    def excluded_items(self, state: DialogueState) -> IntArray:
        _, seen = self.user_context(state.user.id)
        if not state.rejected_items:
            return seen
        return np.concatenate([seen, np.asarray(state.rejected_items, dtype=np.int64)])

    def is_last_action(self, state: DialogueState) -> bool:
        return state.turns_left <= 1

    def may_ask(self, state: DialogueState) -> bool:
        """False once the question rules' `max_questions` are used up: then only recommendations."""
        return self.question_rules is None or self.question_rules.may_ask(state)

    def rule_question_scores(self, scores: FloatArray, floor: float = 0.0) -> FloatArray:
        """Question scores (higher is better) under the question rules: unaskable attributes get
        `floor`, positive scores are multiplied by the attribute's weight. Unchanged without rules."""
        if self.question_rules is None:
            return scores
        return self.question_rules.question_scores(scores, floor)


def binary_entropy(p: FloatArray) -> FloatArray:
    """Entropy (bits) of a yes/no answer that is "yes" with probability p."""
    p = np.clip(p, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log2(p) + (1.0 - p) * np.log2(1.0 - p))
    return np.nan_to_num(h, nan=0.0)
