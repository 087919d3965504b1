"""The conversation environment: one conversation between a policy and a user, a turn at a time.

Shaped like a Gymnasium environment, with the dialogue policy as the agent:

    env = ConversationEnv(profile, user)                  # who talks, and the simulated user
    state, info = env.reset(seed)                         # the user's opening
    while True:
        action = policy.act(state, policy_rng)
        state, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break

- The observation is the immutable `DialogueState` (`crs.types`); `crs.tracker.update` is the one
  place where a reply changes it.
- The reward is -1 per system action, and a conversation that ends without the target (the user
  quit, the policy gave up, the turns ran out) pays the turns left up to `max_turns` on its last
  step: the return is minus the conversation's contribution to AT, the protocol's own cost.
- `terminated`: the conversation ended (success, quit, give-up, error); `truncated`: the turn
  limit ended it (`max_turns`, the user's opening included).
- The simulated user (`SimulatedUser`) answers inside `step`. Imperfect users are wrappers around
  an exact one (`simulators.wrappers`), as Gymnasium wraps environments. Where the user is a
  person (the chat), the reply comes from outside: `step(action, reply)`, or `transition`, the
  same step as a pure function of a state.

Who uses it: the evaluation runner, the conformance check, scpr_rl's training, and the chat
(through `transition`, whose session keeps the state); the spoken evaluation drives the chat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from crs.tracker import InvalidTurnError, update
from crs.types import (
    DialogueState,
    GiveUp,
    InformReply,
    QuitReply,
    SystemAction,
    User,
    UserReply,
    new_state,
)

__all__ = [
    "Candidate",
    "ConversationEnv",
    "InvalidTurnError",
    "Policy",
    "SimulatedUser",
    "Tracing",
    "Transition",
    "as_generator",
    "transition",
]


class Policy(Protocol):
    """Chooses the system's next action from the dialogue state alone."""

    name: str

    def act(self, state: DialogueState, rng: np.random.Generator) -> SystemAction: ...


@dataclass(frozen=True)
class Candidate:
    """One action a policy weighed before choosing (a decision trace entry). What `score` means
    is the policy's own, stated by its `trace_score` (e.g. expected turns, or bits)."""

    act: str  # "ask", "recommend" or "give_up"
    score: float
    attribute: int | None = None  # attribute index, for "ask"
    chosen: bool = False


@runtime_checkable
class Tracing(Protocol):
    """Optional: a policy that can say which actions it weighed in a state where it chose
    `action`. Asked after `act`, outside its timing, with no rng: tracing never changes a
    conversation and never counts as thinking time."""

    trace_score: str  # what a candidate's score measures, and whether lower or higher is better

    def considered(self, state: DialogueState, action: SystemAction) -> tuple[Candidate, ...]: ...


class SimulatedUser(Protocol):
    """A user with a hidden target item (index `target`) who opens and answers; it keeps no
    conversation state of its own: what it needs of the conversation is in `state`."""

    target: int

    def opening(self, rng: np.random.Generator) -> InformReply | QuitReply: ...

    def respond(self, state: DialogueState, action: SystemAction, rng: np.random.Generator) -> UserReply: ...


@dataclass(frozen=True, slots=True)
class Transition:
    """One step: the state after it, the reply it got, and the Gymnasium signals."""

    state: DialogueState
    reply: UserReply | None  # None when the system gave up (nobody is asked anything)
    reward: float
    terminated: bool
    truncated: bool


def transition(state: DialogueState, action: SystemAction | None, reply: UserReply | None) -> Transition:
    """The step `action` -> `reply` from `state` (action None: the user's opening), with its reward."""
    after = update(state, action, reply)
    reward = 0.0 if action is None else -1.0
    if after.finished and after.termination != "success":
        reward -= after.max_turns - after.system_actions_taken
    return Transition(
        state=after,
        reply=reply,
        reward=reward,
        terminated=after.finished and after.termination != "max_turns",
        truncated=after.termination == "max_turns",
    )


def as_generator(seed: int | np.random.SeedSequence | np.random.Generator | None) -> np.random.Generator:
    """A random stream from a seed, a SeedSequence or an existing stream (used as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


class ConversationEnv:
    """One conversation at a time with `profile` (who talks: their history and friends) and a
    simulated `user` (None: replies are given to `step`, as in the chat)."""

    def __init__(self, profile: User, user: SimulatedUser | None = None, max_turns: int = 15) -> None:
        if max_turns < 2:
            raise ValueError(f"max_turns must leave room for one system action, got {max_turns}")
        self.profile = profile
        self.user = user
        self.max_turns = max_turns
        self.rng = np.random.default_rng()
        self._state: DialogueState | None = None

    @property
    def state(self) -> DialogueState:
        if self._state is None:
            raise InvalidTurnError("call reset() before step()")
        return self._state

    def reset(
        self,
        seed: int | np.random.SeedSequence | np.random.Generator | None = None,
        *,
        opening: UserReply | None = None,
    ) -> tuple[DialogueState, dict[str, Any]]:
        """A new conversation: the user's opening (drawn from the user's stream `seed`, or
        `opening` as given). Returns the observation and {"reply": the opening}."""
        self.rng = as_generator(seed)
        if opening is None:
            if self.user is None:
                raise InvalidTurnError("an environment without a simulated user needs the opening")
            opening = self.user.opening(self.rng)
        step = transition(new_state(self.profile, self.max_turns), None, opening)
        self._state = step.state
        return step.state, {"reply": opening}

    def step(
        self, action: SystemAction, reply: UserReply | None = None
    ) -> tuple[DialogueState, float, bool, bool, dict[str, Any]]:
        """The system acts; the simulated user answers (or `reply`, given from outside). Returns
        (observation, reward, terminated, truncated, {"reply": the user's reply or None})."""
        state = self.state
        if state.finished:
            raise InvalidTurnError(f"the conversation has already ended ({state.termination}); reset()")
        if reply is None and not isinstance(action, GiveUp):
            if self.user is None:
                raise InvalidTurnError("an environment without a simulated user needs the reply")
            reply = self.user.respond(state, action, self.rng)
        step = transition(state, action, None if isinstance(action, GiveUp) else reply)
        self._state = step.state
        return step.state, step.reward, step.terminated, step.truncated, {"reply": step.reply}
