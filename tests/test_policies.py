"""Every registered policy passes the conformance check, on the LastFM datasets and MovieLens."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from crs.data import Dataset
from crs.registry import POLICIES
from crs.scoring import PopularityScorer
from crs.tracker import update
from crs.types import Ask, DialogueState, GiveUp, InformReply, Recommend, User, new_state
from policy.base import top_k
from policy.conformance import RULES, check_policy
from policy.max_entropy import MaxEntropyPolicy


def conformance_cases() -> list[Any]:
    """Every policy on every dataset. scpr_rl trains fully here first (~30 s a dataset): the
    default run checks its conformance on a short training (tests/test_scpr_rl.py), `-m slow`
    here as registered."""
    return [
        pytest.param(
            name,
            dataset,
            id=f"{dataset}-{name}",
            marks=[pytest.mark.slow] if name == "scpr_rl" else [],
        )
        for dataset in ("lastfm_star", "lastfm", "movielens_dataset")
        for name in POLICIES.names()
    ]


@pytest.mark.parametrize(("name", "dataset_name"), conformance_cases())
def test_every_policy_conforms(name: str, dataset_name: str, request: pytest.FixtureRequest) -> None:
    dataset: Dataset = request.getfixturevalue(dataset_name)
    policy = POLICIES.create(name, dataset, PopularityScorer(dataset))
    violations = check_policy(policy, dataset, conversations=25)
    assert violations == [], "\n".join(map(str, violations[:10]))


class BreaksOneRule:
    """max_entropy, except that it breaks exactly one conformance rule (`rule`)."""

    name = "broken"

    def __init__(self, dataset: Dataset, rule: str) -> None:
        self.inner = MaxEntropyPolicy(dataset, PopularityScorer(dataset))
        self.dataset = dataset
        self.rule = rule
        self.calls = 0
        self.talking_to: object = None
        self.working_on: DialogueState | None = None
        self.last_state: DialogueState | None = None

    def act(self, state: DialogueState, rng: np.random.Generator) -> Ask | Recommend | GiveUp:
        action = self.inner.act(state, rng)
        catalog = self.dataset.catalog
        if self.rule == "valid action" and state.turn == 1:
            return Ask(catalog.n_attributes)  # no such attribute
        if self.rule == "no repeated question":
            return Ask(state.accepted_attributes[0])  # the opening attribute, known already
        if self.rule == "no re-recommendation" and state.rejected_items:
            return Recommend(state.rejected_items[:3])
        if self.rule == "no training items":
            seen = self.dataset.train.items_of(state.user.id)
            return Recommend(tuple(seen[:3])) if seen else action
        if self.rule == "reproducible":
            self.calls += 1  # asked twice for the same state and seed, it answers differently
            return action if self.calls % 2 else GiveUp()
        if self.rule == "stateless":
            # Remembers who it talks to from the opening on, as if conversations came one at a
            # time: right in a sequential run, wrong once conversations interleave.
            if state.turn == 1:
                self.talking_to = state.user.id
            return action if self.talking_to == state.user.id else GiveUp()
        if self.rule == "keeps no state":
            self.last_state = state  # harmless here, but state on a shared object all the same
            return action
        if self.rule == "thread-safe":
            # Keeps the state it works on as an attribute for the length of a call: right one
            # call at a time, whatever the order, wrong when two threads are in `act` at once.
            self.working_on = state
            time.sleep(0.001)  # any work long enough for another thread to come in
            return self.inner.act(self.working_on, rng)
        if self.rule == "no exception" and state.turn == 2:
            raise RuntimeError("broken on purpose")
        return action


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_fires_on_a_policy_that_breaks_it(lastfm_star: Dataset, rule: str) -> None:
    found = check_policy(BreaksOneRule(lastfm_star, rule), lastfm_star, conversations=6)
    assert rule in {violation.rule for violation in found}, [str(v) for v in found[:5]]
    assert (
        check_policy(
            MaxEntropyPolicy(lastfm_star, PopularityScorer(lastfm_star)), lastfm_star, conversations=6
        )
        == []
    )


def test_max_entropy_gives_up_when_answers_contradict_every_item(lastfm_star: Dataset) -> None:
    policy = MaxEntropyPolicy(lastfm_star, PopularityScorer(lastfm_star))
    item = lastfm_star.catalog.items[0]
    state = update(
        new_state(User(0)), None, InformReply((item.attributes[0],), unwanted=(item.attributes[0],))
    )
    assert policy.act(state, np.random.default_rng(0)) == GiveUp()


def test_top_k_orders_by_score_then_index() -> None:
    scores = np.array([0.5, 2.0, 2.0, 1.0, 3.0])
    assert top_k(np.arange(5), scores, 3) == (4, 1, 2)
    assert top_k(np.array([0, 3]), scores, 10) == (3, 0)
    assert top_k(np.array([], dtype=np.int64), scores, 3) == ()
