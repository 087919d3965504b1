"""The standard simulated user of the multi-round binary-question protocol (SCPR / UNICORN).

It knows its hidden target item and answers from the target's attributes only:
- turn 1: it volunteers one attribute of the target, drawn at random;
- a question: "yes" exactly when the attribute belongs to the target, otherwise "no";
- a recommendation: accepts the target when it is in the list, otherwise rejects the whole list.

This user is exact. Imperfect users are this one inside the wrappers of `simulators.wrappers`
(answer noise, "don't know", patience); `simulators.wrappers.simulated_user` builds the protocol's
user for a set of `SimulatorOptions`. It never says anything else about the target: no candidate
counts, no hints in rejections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crs.settings import Checked, setting
from crs.types import (
    AcceptReply,
    Answer,
    AnswerReply,
    Ask,
    Catalog,
    DialogueState,
    InformReply,
    Recommend,
    RejectReply,
    SystemAction,
    UserReply,
)


@dataclass(frozen=True)
class SimulatorOptions(Checked):
    """How imperfect the protocol's simulated user is; all off by default (the exact protocol)."""

    answer_noise: float = setting(0.0, minimum=0.0, maximum=1.0)  # flip each yes/no with this probability
    dont_know: float = setting(0.0, minimum=0.0, maximum=1.0)  # answer "don't know" with this probability
    patience: int | None = setting(None, minimum=1)  # quit once this many turns have passed; None = never
    list_size: int = setting(10, minimum=1)  # a longer list is truncated: only its top counts


class RuleBasedUser:
    """One exact simulated user with one hidden target. Holds no conversation state of its own."""

    def __init__(self, catalog: Catalog, target: int, list_size: int = 10) -> None:
        item = catalog.items[target]
        if not item.attributes:
            raise ValueError(f"target item {item.id!r} has no attributes to talk about")
        if list_size < 1:
            raise ValueError(f"list_size must be at least 1, got {list_size}")
        self.target = target
        self.target_attributes = frozenset(item.attributes)
        self.list_size = list_size
        self._opening_choices = item.attributes

    def opening(self, rng: np.random.Generator) -> InformReply:
        attribute = self._opening_choices[int(rng.integers(len(self._opening_choices)))]
        return InformReply(attributes=(attribute,))

    def respond(self, state: DialogueState, action: SystemAction, rng: np.random.Generator) -> UserReply:
        # The exact user draws nothing here, so the exact protocol consumes no randomness after
        # the opening; the wrappers draw only for the options they model.
        if isinstance(action, Ask):
            return AnswerReply(Answer.YES if action.attribute in self.target_attributes else Answer.NO)
        if isinstance(action, Recommend):
            if self.target in action.items[: self.list_size]:
                return AcceptReply(self.target)
            return RejectReply()
        raise TypeError(f"the simulated user cannot answer {action!r}")
