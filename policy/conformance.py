"""The conformance check every policy must pass before it is trusted with numbers.

It plays real conversations against the rule-based simulated user (exact, noisy and "don't know"
answers) and reports every violation of the protocol's rules:
- only valid actions: an existing attribute, or a non-empty list of distinct existing items no
  longer than the list size;
- no question about an attribute whose status is already known (volunteered, answered or asked);
- no item recommended again after it was rejected, and no training item of the user;
- the conversation ends within the turn limit;
- the same state and seed give the same action (reproducibility).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crs.data import Dataset
from crs.engine import ConversationEngine, Policy
from crs.evaluation.runner import conversation_rngs, target_pairs
from crs.tracker import update
from crs.types import Ask, DialogueState, GiveUp, Recommend, SystemAction
from simulators.rule_based import RuleBasedUser, SimulatorOptions

DEFAULT_SCENARIOS = (
    SimulatorOptions(),
    SimulatorOptions(answer_noise=0.2),
    SimulatorOptions(dont_know=0.3),
    SimulatorOptions(patience=6),
)


@dataclass(frozen=True)
class Violation:
    conversation: int
    turn: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"conversation {self.conversation}, turn {self.turn}: {self.rule}: {self.detail}"


def _action_violations(
    dataset: Dataset, state: DialogueState, action: SystemAction, list_size: int
) -> list[tuple[str, str]]:
    catalog = dataset.catalog
    problems: list[tuple[str, str]] = []
    if isinstance(action, Ask):
        if (
            not isinstance(action.attribute, int | np.integer)
            or not 0 <= action.attribute < catalog.n_attributes
        ):
            problems.append(("valid action", f"asked unknown attribute {action.attribute!r}"))
        elif action.attribute in state.asked_attributes:
            problems.append(("no repeated question", f"asked attribute {action.attribute} again"))
    elif isinstance(action, Recommend):
        items = action.items
        if not items:
            problems.append(("valid action", "recommended an empty list"))
        if len(items) > list_size:
            problems.append(("valid action", f"recommended {len(items)} items, more than {list_size}"))
        if len(set(items)) != len(items):
            problems.append(("valid action", "recommended an item twice in one list"))
        if any(not isinstance(i, int | np.integer) or not 0 <= i < catalog.n_items for i in items):
            problems.append(("valid action", f"recommended unknown items in {items!r}"))
        again = set(items) & set(state.rejected_items)
        if again:
            problems.append(("no re-recommendation", f"recommended rejected items {sorted(again)}"))
        known = set(items) & set(dataset.train.items_of(state.user.id))
        if known:
            problems.append(("no training items", f"recommended the user's training items {sorted(known)}"))
    elif not isinstance(action, GiveUp):
        problems.append(("valid action", f"returned {action!r}, not Ask, Recommend or GiveUp"))
    return problems


def check_policy(
    policy: Policy,
    dataset: Dataset,
    split: str = "valid",
    conversations: int = 40,
    seed: int = 0,
    max_turns: int = 15,
    list_size: int = 10,
    scenarios: Sequence[SimulatorOptions] = DEFAULT_SCENARIOS,
) -> list[Violation]:
    """Violations found over `conversations` targets of `split` in every scenario (empty: conforms)."""
    pairs = target_pairs(dataset, split, conversations)
    violations: list[Violation] = []
    engine = ConversationEngine(policy, max_turns=max_turns)
    for number, options in enumerate(scenarios):
        for position, (user_id, target) in enumerate(pairs):
            conversation = number * len(pairs) + position
            user_id = user_id.item() if isinstance(user_id, np.generic) else user_id
            participant = RuleBasedUser(dataset.catalog, int(target), options)
            user_rng, policy_rng = conversation_rngs(seed, conversation)
            state = engine.start(dataset.user(user_id), participant.opening(user_rng))
            while not state.finished:
                if state.turn >= max_turns:
                    violations.append(
                        Violation(conversation, state.turn, "turn limit", "went past the limit")
                    )
                    break
                draw = int(policy_rng.integers(2**31))
                action = policy.act(state, np.random.default_rng(draw))
                replay = policy.act(state, np.random.default_rng(draw))
                if replay != action:
                    violations.append(
                        Violation(
                            conversation,
                            state.turn + 1,
                            "reproducible",
                            f"same state and seed gave {action!r} then {replay!r}",
                        )
                    )
                for rule, detail in _action_violations(dataset, state, action, list_size):
                    violations.append(Violation(conversation, state.turn + 1, rule, detail))
                if isinstance(action, GiveUp):
                    break
                reply = participant.respond(state, action, user_rng)
                state = update(state, action, reply)
    return violations
