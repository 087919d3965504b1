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
    """Per-user lookups cached for the conversation in progress (one entry: conversations are sequential)."""

    name = "base"

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
        self._cached_user: UserId | None = None
        self._cached: tuple[FloatArray, IntArray] | None = None

    def user_context(self, user_id: UserId) -> tuple[FloatArray, IntArray]:
        """The user's item scores and training items (never worth recommending: already known)."""
        if self._cached is None or self._cached_user != user_id:
            scores = np.asarray(self.scorer.scores(user_id), dtype=np.float64)
            seen = np.asarray(self.dataset.train.items_of(user_id), dtype=np.int64)
            self._cached_user, self._cached = user_id, (scores, seen)
        return self._cached

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
