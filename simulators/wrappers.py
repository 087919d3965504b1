"""Imperfect simulated users as wrappers around an exact one, as Gymnasium wraps environments.

Each wrapper changes one thing about the user it wraps and passes everything else through, so the
protocol's options compose: `Patience(DontKnow(AnswerNoise(user)))`. That order is the protocol's
(and what its numbers were measured with): a user out of patience quits before anything else; a
question is first met with "don't know" with its probability, and only a real answer can then be
flipped by noise. A wrapper draws from the user's random stream only when its option is on, so the
exact protocol consumes no randomness after the opening.
"""

from __future__ import annotations

import numpy as np

from crs.env import SimulatedUser
from crs.types import (
    Answer,
    AnswerReply,
    Ask,
    Catalog,
    DialogueState,
    InformReply,
    QuitReply,
    SystemAction,
    UserReply,
)
from simulators.rule_based import RuleBasedUser, SimulatorOptions


class UserWrapper:
    """Passes everything to the wrapped user; subclasses override `respond`."""

    def __init__(self, user: SimulatedUser) -> None:
        self.user = user
        self.target = user.target

    def opening(self, rng: np.random.Generator) -> InformReply | QuitReply:
        return self.user.opening(rng)

    def respond(self, state: DialogueState, action: SystemAction, rng: np.random.Generator) -> UserReply:
        return self.user.respond(state, action, rng)

    @property
    def unwrapped(self) -> SimulatedUser:
        """The innermost user, without any wrapper."""
        user = self.user
        while isinstance(user, UserWrapper):
            user = user.user
        return user


class AnswerNoise(UserWrapper):
    """Flips each yes/no answer with probability `p` (a user who is sometimes wrong)."""

    def __init__(self, user: SimulatedUser, p: float) -> None:
        super().__init__(user)
        self.p = p

    def respond(self, state: DialogueState, action: SystemAction, rng: np.random.Generator) -> UserReply:
        reply = self.user.respond(state, action, rng)
        answered = (
            isinstance(action, Ask) and isinstance(reply, AnswerReply) and reply.answer != Answer.DONT_KNOW
        )
        # The draw happens only for a real answer, where the protocol's noisy user draws.
        if answered and rng.random() < self.p:
            assert isinstance(reply, AnswerReply)
            return AnswerReply(Answer.NO if reply.answer == Answer.YES else Answer.YES)
        return reply


class DontKnow(UserWrapper):
    """Answers a question with "don't know" with probability `p`."""

    def __init__(self, user: SimulatedUser, p: float) -> None:
        super().__init__(user)
        self.p = p

    def respond(self, state: DialogueState, action: SystemAction, rng: np.random.Generator) -> UserReply:
        if isinstance(action, Ask) and rng.random() < self.p:
            return AnswerReply(Answer.DONT_KNOW)
        return self.user.respond(state, action, rng)


class Patience(UserWrapper):
    """Quits once `turns` turns of the conversation have passed (the user's opening included)."""

    def __init__(self, user: SimulatedUser, turns: int) -> None:
        super().__init__(user)
        self.turns = turns

    def respond(self, state: DialogueState, action: SystemAction, rng: np.random.Generator) -> UserReply:
        if state.turn >= self.turns:
            return QuitReply()
        return self.user.respond(state, action, rng)


def wrap(user: SimulatedUser, options: SimulatorOptions) -> SimulatedUser:
    """`user` inside the wrappers `options` switch on, in the protocol's order."""
    if options.answer_noise:
        user = AnswerNoise(user, options.answer_noise)
    if options.dont_know:
        user = DontKnow(user, options.dont_know)
    if options.patience is not None:
        user = Patience(user, options.patience)
    return user


def simulated_user(catalog: Catalog, target: int, options: SimulatorOptions | None = None) -> SimulatedUser:
    """The protocol's simulated user for `options`: the exact user inside the wrappers the options
    switch on. Raises ValueError for a target without attributes (nothing to talk about)."""
    options = options or SimulatorOptions()
    return wrap(RuleBasedUser(catalog, target, options.list_size), options)
