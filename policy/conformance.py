"""The conformance check every policy must pass before it is trusted with numbers.

It plays real conversations (`crs.env.ConversationEnv`) against the rule-based simulated user with
exact, noisy and "don't know" answers and an impatient user, and reports every violation of these
rules (each has a test that makes it fire on a deliberately broken policy):

- **valid action**: an `Ask` of an existing attribute, a `Recommend` of a non-empty list of
  distinct existing items no longer than the list size, or a `GiveUp`;
- **no repeated question**: no question about an attribute whose status is already known
  (volunteered, answered, or answered "don't know");
- **no re-recommendation**: no item recommended again after it was rejected;
- **no training items**: none of the user's training items (they are known already);
- **reproducible**: the same state and seed give the same action;
- **stateless**: an action depends on the state and the seed only, not on what the policy was
  asked before: every state is asked again in another order (other conversations, other users in
  between) and must get the same action. One policy object serves many conversations at once
  (worker processes, every visitor of the chat), so state kept on it would leak between them;
- **keeps no state**: `act` changes no attribute of the policy except the caches it declares in
  `cache_attributes` (each replaced whole, keyed by what it was computed for: see
  `policy.base.PolicyBase.user_context`);
- **thread-safe**: the same states asked from several threads at once, switching between them
  as often as the interpreter allows, get the same actions (a chat server's visitors are served
  by threads sharing one policy: a cache or scratch value kept on it must be read and replaced
  whole, or not kept at all);
- **no exception**: `act` returns an action for every state it is given.

The turn limit is not a rule of the policy: the environment ends every conversation at it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crs.data import Dataset
from crs.env import ConversationEnv, Policy
from crs.protocol import conversation_rngs, target_at, target_pairs
from crs.types import Ask, DialogueState, GiveUp, Recommend, SystemAction
from simulators.rule_based import SimulatorOptions
from simulators.wrappers import simulated_user

DEFAULT_SCENARIOS = (
    SimulatorOptions(),
    SimulatorOptions(answer_noise=0.2),
    SimulatorOptions(dont_know=0.3),
    SimulatorOptions(patience=6),
)
STATELESS_SAMPLE = 150  # states asked again out of order; enough to meet every conversation's users
THREAD_SAMPLE = 40  # states each of THREADS threads asks at once, each from another starting point
THREADS = 4
RULES = (
    "valid action",
    "no repeated question",
    "no re-recommendation",
    "no training items",
    "reproducible",
    "stateless",
    "keeps no state",
    "thread-safe",
    "no exception",
)


@dataclass(frozen=True)
class Violation:
    conversation: int
    turn: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"conversation {self.conversation}, turn {self.turn}: {self.rule}: {self.detail}"


@dataclass(frozen=True)
class _Decision:
    """A state the policy was asked about during the check, the seed it got, and its action."""

    conversation: int
    state: DialogueState
    seed: int
    action: SystemAction


def action_violations(
    dataset: Dataset, state: DialogueState, action: SystemAction, list_size: int
) -> list[tuple[str, str]]:
    """(rule, detail) for each rule `action` breaks in `state`."""
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
    decisions: list[_Decision] = []
    for number, options in enumerate(scenarios):
        for position in range(len(pairs)):
            conversation = number * len(pairs) + position
            target = target_at(pairs, position)
            user_rng, policy_rng = conversation_rngs(seed, conversation)
            try:
                user = simulated_user(dataset.catalog, target.item, options)
            except ValueError:
                continue  # a target without attributes: no conversation to have
            env = ConversationEnv(dataset.user(target.user_id), user, max_turns)
            state, _ = env.reset(user_rng)
            while not state.finished:
                draw = int(policy_rng.integers(2**31))
                turn = state.turn + 1
                before = _attributes(policy)
                try:
                    action = policy.act(state, np.random.default_rng(draw))
                    replay = policy.act(state, np.random.default_rng(draw))
                except Exception as error:  # noqa: BLE001 - any failure of a plug-in is a finding
                    violations.append(Violation(conversation, turn, "no exception", repr(error)))
                    break
                changed = _changed(policy, before)
                if changed:
                    detail = f"act changed {', '.join(changed)} (not in its cache_attributes)"
                    violations.append(Violation(conversation, turn, "keeps no state", detail))
                if replay != action:
                    violations.append(
                        Violation(
                            conversation,
                            turn,
                            "reproducible",
                            f"same state and seed gave {action!r} then {replay!r}",
                        )
                    )
                problems = action_violations(dataset, state, action, list_size)
                violations.extend(Violation(conversation, turn, rule, detail) for rule, detail in problems)
                if any(rule == "valid action" for rule, _ in problems):
                    break  # the user cannot answer an invalid action
                decisions.append(_Decision(conversation, state, draw, action))
                state, *_ = env.step(action)
    violations.extend(_statelessness(policy, decisions, seed))
    violations.extend(_thread_safety(policy, decisions, seed))
    return violations


def _attributes(policy: Policy) -> dict[str, int]:
    return {name: id(value) for name, value in getattr(policy, "__dict__", {}).items()}


def _changed(policy: Policy, before: dict[str, int]) -> list[str]:
    """Attributes `act` set, replaced or removed, less the declared caches."""
    after = _attributes(policy)
    allowed = set(getattr(policy, "cache_attributes", ()))
    names = {n for n in after.keys() | before.keys() if after.get(n) != before.get(n)}
    return sorted(names - allowed)


def _statelessness(
    policy: Policy, decisions: Sequence[_Decision], seed: int, sample: int = STATELESS_SAMPLE
) -> list[Violation]:
    """Ask `sample` recorded states again (every one, when fewer), in a shuffled order: each
    comes after states of other conversations and users, with its own seed."""
    found: list[Violation] = []
    order = np.random.default_rng(seed).permutation(len(decisions))[:sample]
    for index in order:
        decision = decisions[int(index)]
        try:
            again = policy.act(decision.state, np.random.default_rng(decision.seed))
        except Exception as error:  # noqa: BLE001
            found.append(
                Violation(decision.conversation, decision.state.turn + 1, "no exception", repr(error))
            )
            continue
        if again != decision.action:
            found.append(
                Violation(
                    decision.conversation,
                    decision.state.turn + 1,
                    "stateless",
                    f"asked again after other conversations, gave {again!r} instead of {decision.action!r}",
                )
            )
    return found


def _thread_safety(
    policy: Policy, decisions: Sequence[_Decision], seed: int, sample: int = THREAD_SAMPLE
) -> list[Violation]:
    """Ask `sample` recorded states from `THREADS` threads at once, each starting elsewhere in
    the sample, with the interpreter switching threads as often as it can (restored after)."""
    order = np.random.default_rng([seed, 1]).permutation(len(decisions))[:sample]
    chosen = [decisions[int(i)] for i in order]
    found: dict[int, Violation] = {}  # one per recorded state
    lock = threading.Lock()

    def ask(start: int) -> None:
        for k in range(len(chosen)):
            index = (start + k) % len(chosen)
            decision = chosen[index]
            turn = decision.state.turn + 1
            try:
                again = policy.act(decision.state, np.random.default_rng(decision.seed))
            except Exception as error:  # noqa: BLE001
                violation = Violation(decision.conversation, turn, "no exception", repr(error))
            else:
                if again == decision.action:
                    continue
                violation = Violation(
                    decision.conversation,
                    turn,
                    "thread-safe",
                    f"asked from {THREADS} threads at once, gave {again!r} instead of {decision.action!r}",
                )
            with lock:
                found.setdefault(index, violation)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # races that a 5 ms interval hides for hours show up at once
    try:
        threads = [threading.Thread(target=ask, args=(t * len(chosen) // THREADS,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    return [found[index] for index in sorted(found)]
