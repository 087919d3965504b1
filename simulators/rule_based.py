"""The standard simulated user of the multi-round binary-question protocol (SCPR / UNICORN).

It knows its hidden target item and answers from the target's attributes only:
- turn 1: it volunteers one attribute of the target, drawn at random;
- a question: "yes" exactly when the attribute belongs to the target, otherwise "no";
- a recommendation: accepts the target when it is in the list, otherwise rejects the whole list.

Options, all off by default, make it imperfect: `answer_noise` flips each yes/no with that
probability, `dont_know` answers "don't know" with that probability, `patience` quits once that
many turns have passed. It never says anything else about the target: no candidate counts, no
hints in rejections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crs.types import (
    AcceptReply,
    Answer,
    AnswerReply,
    Ask,
    Catalog,
    DialogueState,
    InformReply,
    QuitReply,
    Recommend,
    RejectReply,
    SystemAction,
    UserReply,
)


@dataclass(frozen=True)
class SimulatorOptions:
    answer_noise: float = 0.0
    dont_know: float = 0.0
    patience: int | None = None
    list_size: int = 10  # a longer list is truncated: the protocol only looks at the top of it

    def __post_init__(self) -> None:
        for name in ("answer_noise", "dont_know"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be at least 1 turn, got {self.patience}")
        if self.list_size < 1:
            raise ValueError(f"list_size must be at least 1, got {self.list_size}")


class RuleBasedUser:
    """One simulated user with one hidden target. Holds no conversation state of its own."""

    def __init__(self, catalog: Catalog, target: int, options: SimulatorOptions | None = None) -> None:
        item = catalog.items[target]
        if not item.attributes:
            raise ValueError(f"target item {item.id!r} has no attributes to talk about")
        self._target = target
        self._target_attributes = frozenset(item.attributes)
        self._opening_choices = item.attributes
        self.options = options or SimulatorOptions()

    def opening(self, rng: np.random.Generator) -> InformReply:
        attribute = self._opening_choices[int(rng.integers(len(self._opening_choices)))]
        return InformReply(attributes=(attribute,))

    def respond(self, state: DialogueState, action: SystemAction, rng: np.random.Generator) -> UserReply:
        options = self.options
        if options.patience is not None and state.turn >= options.patience:
            return QuitReply()
        if isinstance(action, Ask):
            return AnswerReply(self._answer(action.attribute, rng))
        if isinstance(action, Recommend):
            if self._target in action.items[: options.list_size]:
                return AcceptReply(self._target)
            return RejectReply()
        raise TypeError(f"the simulated user cannot answer {action!r}")

    def _answer(self, attribute: int, rng: np.random.Generator) -> Answer:
        options = self.options
        # Draws happen only for enabled options so that the exact protocol consumes no randomness.
        if options.dont_know and rng.random() < options.dont_know:
            return Answer.DONT_KNOW
        truth = attribute in self._target_attributes
        if options.answer_noise and rng.random() < options.answer_noise:
            truth = not truth
        return Answer.YES if truth else Answer.NO
