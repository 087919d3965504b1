"""The FacT-CRS-style question tree: conformance, the questions it asks, cached training, and that
what the user already revealed is followed instead of asked again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crs.data import Dataset
from crs.scoring import PopularityScorer
from crs.tracker import update
from crs.types import (
    Answer,
    AnswerReply,
    Ask,
    Attribute,
    Catalog,
    DialogueState,
    InformReply,
    Interactions,
    Item,
    Recommend,
    RejectReply,
    SystemAction,
    User,
    new_state,
)
from policy.conformance import check_policy
from policy.fact_tree import LEAF, FactTreePolicy
from policy.learning import TrainingContext

EVERYTHING = 3  # attribute of every item in the hand-built catalog: volunteering it reveals nothing


def _binary_catalog() -> Dataset:
    """Eight items whose attributes 0, 1, 2 spell their index in binary (attribute 0 = highest bit),
    all carrying attribute 3. With equal weights every bit halves any node, so the tree must ask
    0, then 1, then 2 (ties go to the lower index) and end with one item per leaf."""
    attributes = tuple(Attribute(index=i, id=i, name=f"bit {i}") for i in range(3)) + (
        Attribute(index=EVERYTHING, id=EVERYTHING, name="everything"),
    )
    items = tuple(
        Item(
            index=i,
            id=i,
            title=f"item {i}",
            attributes=tuple(bit for bit in range(3) if i >> (2 - bit) & 1) + (EVERYTHING,),
        )
        for i in range(8)
    )
    return Dataset(
        name="binary",
        catalog=Catalog(items, attributes),
        users={0: User(id=0)},
        splits={"train": Interactions("train", {}), "valid": Interactions("valid", {0: (5,)})},
        source=Path("binary"),
    )


def _tree(dataset: Dataset, cache: Path, list_size: int = 1, prior: float = 30.0) -> FactTreePolicy:
    context = TrainingContext(cache)
    scorer = PopularityScorer(dataset)
    return FactTreePolicy(dataset, scorer, list_size, min_leaf_items=1, prior=prior, training=context)


def _converse(policy: FactTreePolicy, dataset: Dataset, target: int, opening: int) -> list[SystemAction]:
    """Exact answers about `target` until it is recommended or the turns run out."""
    truth = set(dataset.catalog.items[target].attributes)
    state = update(new_state(dataset.user(0)), None, InformReply((opening,)))
    actions: list[SystemAction] = []
    while not state.finished:
        action = policy.act(state, np.random.default_rng(0))
        actions.append(action)
        if isinstance(action, Ask):
            state = update(state, action, AnswerReply(Answer.YES if action.attribute in truth else Answer.NO))
        elif isinstance(action, Recommend) and target in action.items:
            break
        else:
            state = update(state, action, RejectReply())
    return actions


@pytest.mark.parametrize("dataset_name", ["lastfm_star", "lastfm", "tiny"])
def test_conforms(dataset_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    dataset: Dataset = request.getfixturevalue(dataset_name)
    policy = FactTreePolicy(dataset, PopularityScorer(dataset), training=TrainingContext(tmp_path))
    violations = check_policy(policy, dataset, conversations=25)
    assert violations == [], "\n".join(map(str, violations[:10]))


def test_the_tree_asks_the_balanced_questions_and_reaches_the_target(tmp_path: Path) -> None:
    dataset = _binary_catalog()
    policy = _tree(dataset, tmp_path)
    assert policy.node_attribute[0] == 0
    assert int((policy.node_attribute == LEAF).sum()) == 8
    for target in range(8):
        actions = _converse(policy, dataset, target, opening=EVERYTHING)
        assert actions == [Ask(0), Ask(1), Ask(2), Recommend((target,))], target


def test_target_weights_decide_the_split(tmp_path: Path) -> None:
    dataset = _binary_catalog()
    assert _tree(dataset, tmp_path, prior=1.0).node_attribute[0] == 0
    # When items 0-3 (no bit 0) are the training targets, bit 0 splits off little weight and the
    # weighted halves are made by bit 1 (tied with bit 2, which has the higher index).
    chosen = Dataset(
        name="binary-weighted",
        catalog=dataset.catalog,
        users={0: User(id=0), 1: User(id=1)},
        splits={"train": Interactions("train", {1: (0, 1, 2, 3)})},
        source=dataset.source,
    )
    assert _tree(chosen, tmp_path, prior=0.1).node_attribute[0] == 1


def test_known_attributes_are_followed_without_asking(tmp_path: Path) -> None:
    dataset = _binary_catalog()
    policy = _tree(dataset, tmp_path)
    # Volunteering bit 0 (item 5 = 101 has it) skips the root question.
    assert _converse(policy, dataset, 5, opening=0) == [Ask(1), Ask(2), Recommend((5,))]
    # So does an earlier "no" or "don't know" to it; the questions below it are asked as usual.
    opened = update(new_state(dataset.user(0)), None, InformReply((EVERYTHING,)))
    for answer in (Answer.NO, Answer.DONT_KNOW):
        state = update(opened, Ask(0), AnswerReply(answer))
        action = policy.act(state, np.random.default_rng(0))
        assert isinstance(action, Ask) and action.attribute not in state.asked_attributes
        assert action.attribute == 1


def test_last_turn_recommends_and_rejected_items_move_down_the_ranking(tmp_path: Path) -> None:
    dataset = _binary_catalog()
    policy = _tree(dataset, tmp_path, list_size=2)
    state = update(new_state(dataset.user(0), max_turns=2), None, InformReply((EVERYTHING,)))
    first = policy.act(state, np.random.default_rng(0))
    assert isinstance(first, Recommend) and len(first.items) == 2
    state = update(new_state(dataset.user(0), max_turns=4), None, InformReply((0,)))
    state = update(state, Ask(1), AnswerReply(Answer.YES))  # items 6, 7 remain: small enough to show
    shown = policy.act(state, np.random.default_rng(0))
    assert shown == Recommend((6, 7))
    state = update(state, shown, RejectReply())
    after = policy.act(state, np.random.default_rng(0))
    # Next come the items contradicting one answer (4, 5 lack bit 1; 2, 3 lack bit 0), never 6 or 7.
    assert isinstance(after, Recommend) and not set(after.items) & {6, 7}


def test_cached_training_loads_the_same_tree(lastfm: Dataset, tmp_path: Path) -> None:
    reports: list[tuple[str, float]] = []
    context = TrainingContext(
        tmp_path, progress=lambda event: reports.append((event.stage, event.done / event.total))
    )
    first = FactTreePolicy(lastfm, PopularityScorer(lastfm), training=context)
    assert not first.trained.loaded and first.trained.path.exists()
    assert reports and reports[-1][1] == 1.0 and all(0.0 <= f <= 1.0 for _, f in reports)
    second = FactTreePolicy(lastfm, PopularityScorer(lastfm), training=TrainingContext(tmp_path))
    assert second.trained.loaded
    assert second.trained.train_seconds == pytest.approx(first.trained.train_seconds)
    for name, array in first.trained.arrays.items():
        np.testing.assert_array_equal(second.trained.arrays[name], array)
    other = FactTreePolicy(lastfm, PopularityScorer(lastfm), training=TrainingContext(tmp_path), max_depth=3)
    assert not other.trained.loaded and other.trained.path != first.trained.path
    state: DialogueState = update(new_state(lastfm.user(0)), None, InformReply((0,)))
    assert first.act(state, np.random.default_rng(0)) == second.act(state, np.random.default_rng(1))
