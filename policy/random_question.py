"""Random questions: the floor every other policy must clear.

It tracks candidates exactly like `max_entropy` but asks a uniformly random attribute among those
that still split the candidates, so any gap between the two is the value of choosing questions.
"""

from __future__ import annotations

import numpy as np

from crs.types import Ask, DialogueState, GiveUp, Recommend, SystemAction
from policy.base import top_k
from policy.max_entropy import MaxEntropyPolicy


class RandomQuestionPolicy(MaxEntropyPolicy):
    name = "random"

    def act(self, state: DialogueState, rng: np.random.Generator) -> SystemAction:
        candidates = self.candidates(state)
        if len(candidates) == 0:
            return GiveUp()
        scores, _ = self.user_context(state.user.id)
        if len(candidates) <= self.list_size or self.is_last_action(state):
            return Recommend(top_k(candidates, scores, self.list_size))
        counts = self.index.attribute_counts(candidates)
        splitting = (counts > 0) & (counts < len(candidates))
        asked = list(state.asked_attributes)
        if asked:
            splitting[asked] = False
        choices = np.flatnonzero(splitting)
        if len(choices) == 0:
            return Recommend(top_k(candidates, scores, self.list_size))
        return Ask(int(choices[rng.integers(len(choices))]))
