"""Every registered policy passes the conformance check, on the LastFM datasets and MovieLens."""

from __future__ import annotations

import numpy as np
import pytest

from crs.data import Dataset
from crs.registry import POLICIES
from crs.scoring import PopularityScorer
from crs.tracker import update
from crs.types import Ask, DialogueState, GiveUp, InformReply, Recommend, User, new_state
from policy.base import top_k
from policy.conformance import check_policy
from policy.max_entropy import MaxEntropyPolicy


@pytest.mark.parametrize("name", POLICIES.names())
@pytest.mark.parametrize("dataset_name", ["lastfm_star", "lastfm", "movielens_dataset"])
def test_every_policy_conforms(name: str, dataset_name: str, request: pytest.FixtureRequest) -> None:
    dataset: Dataset = request.getfixturevalue(dataset_name)
    policy = POLICIES.create(name, dataset, PopularityScorer(dataset))
    violations = check_policy(policy, dataset, conversations=25)
    assert violations == [], "\n".join(map(str, violations[:10]))


class RepeatsItself:
    """A deliberately broken policy: the checker must catch it (a check that cannot fail is useless)."""

    name = "broken"

    def act(self, state: DialogueState, rng: np.random.Generator) -> Ask | Recommend | GiveUp:
        if state.rejected_items:
            return Recommend(state.rejected_items[:3])
        if state.turn < 4:
            return Ask(0)
        return Recommend((0, 0))


def test_the_checker_catches_violations(lastfm_star: Dataset) -> None:
    rules = {v.rule for v in check_policy(RepeatsItself(), lastfm_star, conversations=5)}
    assert {"no repeated question", "valid action", "no re-recommendation"} <= rules


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
