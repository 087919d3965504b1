"""Max-entropy questions over a hard-filtered candidate set (the classic strong baseline).

Candidates are the items consistent with every answer so far (all "yes" attributes, none of the
"no" ones), minus the user's training items and every rejected item. Each turn it asks the
attribute that splits the candidates most evenly, and recommends the best `list_size` by score
once that many or fewer remain, when no attribute splits them, or on the last turn. One wrong
answer removes the target for good: that fragility is what this baseline is for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from crs.index import IntArray
from crs.types import Ask, DialogueState, GiveUp, Recommend, SystemAction
from policy.base import PolicyBase, binary_entropy, top_k

if TYPE_CHECKING:
    from crs.data import Dataset
    from crs.scoring import Scorer


class MaxEntropyPolicy(PolicyBase):
    name = "max_entropy"

    def __init__(self, dataset: Dataset, scorer: Scorer, list_size: int = 10) -> None:
        super().__init__(dataset, scorer, list_size)

    def candidates(self, state: DialogueState) -> np.ndarray:
        return self.index.filter(
            required=state.accepted_attributes,
            forbidden=state.rejected_attributes,
            excluded_items=self.excluded_items(state),
        )

    def act(self, state: DialogueState, rng: np.random.Generator) -> SystemAction:
        candidates = self.candidates(state)
        if len(candidates) == 0:
            return GiveUp()
        scores, _ = self.user_context(state.user.id)
        if len(candidates) > self.list_size and not self.is_last_action(state):
            question = self.choose_question(state, candidates, rng)
            if question is not None:
                return Ask(question)
        return Recommend(top_k(candidates, scores, self.list_size))

    def choose_question(
        self, state: DialogueState, candidates: IntArray, rng: np.random.Generator
    ) -> int | None:
        """The attribute to ask about, or None when no unasked attribute splits the candidates."""
        entropy = binary_entropy(self.index.attribute_counts(candidates) / len(candidates))
        asked = list(state.asked_attributes)
        if asked:
            entropy[asked] = 0.0
        best = int(np.argmax(entropy))
        return best if entropy[best] > 0.0 else None
