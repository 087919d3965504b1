"""The conversation engine: policy -> user's reply -> state update, one turn at a time.

The same engine drives simulated users (evaluation) and people (the chat, where the reply comes
from parsed text instead of a `Participant`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from crs.tracker import update
from crs.types import DialogueState, GiveUp, InformReply, QuitReply, SystemAction, User, UserReply, new_state


class Policy(Protocol):
    """Chooses the system's next action from the dialogue state alone."""

    name: str

    def act(self, state: DialogueState, rng: np.random.Generator) -> SystemAction: ...


class Participant(Protocol):
    """The other side of the conversation: a simulated user (or an adapter around a person)."""

    def opening(self, rng: np.random.Generator) -> InformReply | QuitReply: ...

    def respond(self, state: DialogueState, action: SystemAction, rng: np.random.Generator) -> UserReply: ...


@dataclass(frozen=True)
class TurnResult:
    state: DialogueState
    action: SystemAction
    reply: UserReply | None
    decision_seconds: float


@dataclass(frozen=True)
class ConversationEngine:
    policy: Policy
    max_turns: int = 15
    clock: Callable[[], float] = time.perf_counter

    def start(self, user: User, opening: UserReply) -> DialogueState:
        return update(new_state(user, self.max_turns), None, opening)

    def decide(self, state: DialogueState, rng: np.random.Generator) -> tuple[SystemAction, float]:
        started = self.clock()
        action = self.policy.act(state, rng)
        return action, self.clock() - started

    def step(
        self,
        state: DialogueState,
        participant: Participant,
        policy_rng: np.random.Generator,
        user_rng: np.random.Generator,
    ) -> TurnResult:
        action, seconds = self.decide(state, policy_rng)
        if isinstance(action, GiveUp):
            # Nobody is asked anything: the policy ends the conversation itself.
            return TurnResult(update(state, action, None), action, None, seconds)
        reply = participant.respond(state, action, user_rng)
        return TurnResult(update(state, action, reply), action, reply, seconds)

    def run(
        self,
        user: User,
        participant: Participant,
        policy_rng: np.random.Generator,
        user_rng: np.random.Generator,
    ) -> tuple[DialogueState, list[TurnResult]]:
        state = self.start(user, participant.opening(user_rng))
        turns: list[TurnResult] = []
        while not state.finished:
            result = self.step(state, participant, policy_rng, user_rng)
            turns.append(result)
            state = result.state
        return state, turns
