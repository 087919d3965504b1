"""Random questions: the floor every other policy must clear.

It tracks candidates exactly like `max_entropy` but asks a uniformly random attribute among those
that still split the candidates, so any gap between the two is the value of choosing questions.
"""

from __future__ import annotations

import numpy as np

from crs.index import IntArray
from crs.types import DialogueState
from policy.max_entropy import MaxEntropyPolicy


class RandomQuestionPolicy(MaxEntropyPolicy):
    name = "random"

    def choose_question(
        self, state: DialogueState, candidates: IntArray, rng: np.random.Generator
    ) -> int | None:
        counts = self.index.attribute_counts(candidates)
        splitting = (counts > 0) & (counts < len(candidates))
        asked = list(state.asked_attributes)
        if asked:
            splitting[asked] = False
        rules = self.question_rules
        if rules is not None:
            splitting &= rules.askable & (rules.weights > 0)
        choices = np.flatnonzero(splitting)
        if len(choices) and rules is not None and rules.weighted:
            # Weighted rules: a question's chance is proportional to its weight.
            p = rules.weights[choices] / rules.weights[choices].sum()
            return int(choices[rng.choice(len(choices), p=p)])
        return int(choices[rng.integers(len(choices))]) if len(choices) else None
