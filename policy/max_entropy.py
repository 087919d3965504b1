"""Max-entropy questions over a hard-filtered candidate set (the classic strong baseline).

Candidates are the items consistent with every answer so far (all "yes" attributes, none of the
"no" ones), minus the user's training items and every rejected item. Each turn it asks the
attribute that splits the candidates most evenly, and recommends the best `list_size` by score
once that many or fewer remain, when no attribute splits them, or on the last turn. One wrong
answer removes the target for good: that fragility is what this baseline is for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from crs.index import IntArray
from crs.types import Ask, DialogueState, GiveUp, Recommend, SystemAction
from policy.base import Candidate, PolicyBase, binary_entropy, top_k

if TYPE_CHECKING:
    from crs.data import Dataset
    from crs.scoring import Scorer


TRACE_QUESTIONS = 5  # questions shown in a decision trace: the best few, plus the one chosen


class MaxEntropyPolicy(PolicyBase):
    name = "max_entropy"
    trace_score = "bits: how evenly an attribute splits the candidates (higher is better)"

    def __init__(
        self,
        dataset: Dataset,
        scorer: Scorer,
        list_size: int = 10,
        questions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(dataset, scorer, list_size, questions)

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
        if len(candidates) > self.list_size and not self.is_last_action(state) and self.may_ask(state):
            question = self.choose_question(state, candidates, rng)
            if question is not None:
                return Ask(question)
        return Recommend(top_k(candidates, scores, self.list_size))

    def considered(self, state: DialogueState, action: SystemAction) -> tuple[Candidate, ...]:
        """The split entropy of the best questions and of the one chosen (the decision trace). A
        subclass that picks questions differently (random) shows what max entropy would weigh."""
        candidates = self.candidates(state)
        if len(candidates) == 0:
            return (Candidate("give_up", 0.0, chosen=isinstance(action, GiveUp)),)
        entropy = binary_entropy(self.index.attribute_counts(candidates) / len(candidates))
        asked = list(state.asked_attributes)
        if asked:
            entropy[asked] = 0.0
        # As `choose_question` scores them: the question rules' weights, nothing unaskable, and
        # no question at all once the rules' limit is reached.
        entropy = self.rule_question_scores(entropy) if self.may_ask(state) else np.zeros_like(entropy)
        k = min(TRACE_QUESTIONS, len(entropy))
        best = np.argpartition(-entropy, k - 1)[:k]
        shown = [int(a) for a in best[np.lexsort((best, -entropy[best]))] if entropy[a] > 0.0]
        if isinstance(action, Ask) and action.attribute not in shown:
            shown.append(action.attribute)
        trace = [
            Candidate(
                "ask",
                float(entropy[a]),
                attribute=a,
                chosen=isinstance(action, Ask) and action.attribute == a,
            )
            for a in shown
        ]
        # Recommending is a rule here, not a score: 0 bits, as a list reveals no attribute.
        trace.append(Candidate("recommend", 0.0, chosen=isinstance(action, Recommend)))
        return tuple(trace)

    def choose_question(
        self, state: DialogueState, candidates: IntArray, rng: np.random.Generator
    ) -> int | None:
        """The attribute to ask about, or None when no unasked attribute splits the candidates."""
        entropy = binary_entropy(self.index.attribute_counts(candidates) / len(candidates))
        asked = list(state.asked_attributes)
        if asked:
            entropy[asked] = 0.0
        entropy = self.rule_question_scores(entropy)
        best = int(np.argmax(entropy))
        return best if entropy[best] > 0.0 else None
