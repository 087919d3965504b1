"""A minimal crs policy: ask whatever splits the remaining items most evenly; recommend the most
popular ones once few remain or time is short.

It keeps nothing about a conversation on itself: everything it needs is in the `DialogueState`,
so one object serves every conversation, in any order, in any process.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crs.types import Ask, DialogueState, GiveUp, Recommend, SystemAction


class SplitHalfPolicy:
    name = "split_half"

    def __init__(self, dataset: Any, scorer: Any, list_size: int = 10) -> None:
        self.dataset = dataset
        self.index = dataset.catalog.index  # items <-> attributes as arrays
        self.popularity = np.asarray(dataset.popularity, dtype=float)
        self.list_size = list_size

    def act(self, state: DialogueState, rng: np.random.Generator) -> SystemAction:
        seen = list(self.dataset.train.items_of(state.user.id))  # never recommend what they know
        candidates = self.index.filter(
            required=state.accepted_attributes,
            forbidden=state.rejected_attributes,
            excluded_items=[*seen, *state.rejected_items],
        )
        if len(candidates) == 0:
            return GiveUp()
        distance = np.abs(self.index.attribute_counts(candidates) / len(candidates) - 0.5)
        distance[list(state.asked_attributes)] = np.inf  # never ask again what is known
        question = int(np.argmin(distance))
        # Recommend when few items remain, on the last turn, or when no question splits them.
        if len(candidates) <= self.list_size or state.turns_left <= 1 or distance[question] >= 0.5:
            best = candidates[np.argsort(-self.popularity[candidates], kind="stable")][: self.list_size]
            return Recommend(tuple(int(i) for i in best))
        return Ask(question)
