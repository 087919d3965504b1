"""The knowledge graph: schema, the CPR adjacency walk (array form vs networkx form), explanations."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from crs.data import Dataset
from crs.types import Attribute, Catalog, DialogueState, Interactions, Item, User, UserId
from knowledge_graph import AttributeGraph, attribute_node, build_graph, item_node, user_node

ATTRIBUTES = ("rock", "jazz", "80s", "90s", "live", "unused")
ROCK, JAZZ, EIGHTIES, NINETIES, LIVE, UNUSED = range(6)
ITEMS = (
    ("Alpha", (ROCK, EIGHTIES)),
    ("Beta", (ROCK, NINETIES)),
    ("Gamma", (JAZZ, EIGHTIES)),
    ("Delta", (JAZZ, NINETIES, LIVE)),
    ("Epsilon", (ROCK, EIGHTIES, LIVE)),
)


def make_social_dataset() -> Dataset:
    """User 0 has friends 1 and 2, who played the jazz items; user 3 is no friend but shares item 0
    with user 0. User 4 lists 3 as a friend without 3 listing 4 back. Attribute 5 is on no item."""
    attributes = tuple(Attribute(index=i, id=f"a{i}", name=name) for i, name in enumerate(ATTRIBUTES))
    items = tuple(
        Item(index=i, id=f"i{i}", title=title, attributes=attrs) for i, (title, attrs) in enumerate(ITEMS)
    )
    users: dict[UserId, User] = {
        0: User(id=0, friends=(1, 2), liked_attributes=(LIVE,)),
        1: User(id=1, friends=(0,), liked_attributes=(NINETIES,)),
        2: User(id=2, friends=(0,)),
        3: User(id=3, liked_attributes=(JAZZ,)),
        4: User(id=4, friends=(3,)),
    }
    splits = {
        "train": Interactions("train", {0: (0,), 1: (2, 3), 2: (3,), 3: (0, 3), 4: ()}),
        "valid": Interactions("valid", {0: (3,)}),
    }
    return Dataset(
        name="social", catalog=Catalog(items, attributes), users=users, splits=splits, source=Path("social")
    )


@pytest.fixture
def social() -> AttributeGraph:
    return AttributeGraph(make_social_dataset())


# --- schema -------------------------------------------------------------------------------------


def test_tiny_graph_nodes_and_edges() -> None:
    graph = build_graph(make_social_dataset())
    kinds = Counter(kind for _, kind in graph.nodes(data="kind"))
    assert kinds == {"user": 5, "item": 5, "attribute": 6}
    relations = Counter(relation for *_, relation in graph.edges(data="relation"))
    assert relations == {"has_attribute": 12, "interacts": 6, "likes": 3, "friend": 3}
    assert graph.nodes[item_node(3)]["label"] == "Delta"
    assert graph.nodes[attribute_node(JAZZ)]["label"] == "jazz"
    assert graph.nodes[user_node(0)]["kind"] == "user"
    assert graph.edges[user_node(0), item_node(0)]["relation"] == "interacts"
    assert graph.edges[user_node(4), user_node(3)]["relation"] == "friend"
    # Only the training split makes edges: user 0's validation item stays unconnected to them.
    assert not graph.has_edge(user_node(0), item_node(3))
    assert graph.degree(attribute_node(UNUSED)) == 0


def test_networkx_graph_is_lazy_and_cached(social: AttributeGraph) -> None:
    social.reachable_attributes((ROCK,), user_id=0, through_friends=True)
    assert "nx" not in vars(social)
    assert social.to_networkx() is social.nx


def test_friendships_count_both_ways(social: AttributeGraph) -> None:
    assert social.friends_of(3) == (4,)
    assert social.friends_of(0) == (1, 2)
    assert social.friends_of(99) == ()
    assert set(social.neighbors_of_user(0, "friend")) == {user_node(1), user_node(2)}
    assert set(social.neighbors_of_user(0)) == {
        user_node(1),
        user_node(2),
        item_node(0),
        attribute_node(LIVE),
    }
    assert social.neighbors_of_user(99) == []


# --- the walk -----------------------------------------------------------------------------------

WALKS = [
    # (accepted, candidates, user, through_friends, exclude, expected)
    (
        (),
        None,
        None,
        False,
        (),
        [ROCK, JAZZ, EIGHTIES, NINETIES, LIVE],
    ),  # the unused attribute is unreachable
    ((ROCK,), None, None, False, (), [EIGHTIES, NINETIES, LIVE]),
    ((ROCK, EIGHTIES), None, None, False, (), [LIVE]),
    ((JAZZ,), None, None, False, (), [EIGHTIES, NINETIES, LIVE]),
    ((), [1], None, False, (), [ROCK, NINETIES]),
    ((ROCK,), [0, 4], None, False, (), [EIGHTIES, LIVE]),
    ((ROCK,), None, 0, False, (), [EIGHTIES, NINETIES, LIVE]),  # friends only count when asked to
    # Friends of 0 played no rock item, but friend 1 likes 90s: the walk narrows to it.
    ((ROCK,), None, 0, True, (), [NINETIES]),
    # Friends played both jazz items, so every reachable attribute is reachable through them.
    ((JAZZ,), None, 0, True, (), [EIGHTIES, NINETIES, LIVE]),
    # Once 90s is excluded nothing is left via friends: fall back to the unrestricted walk.
    ((ROCK,), None, 0, True, (NINETIES,), [EIGHTIES, LIVE]),
    ((ROCK,), None, 3, True, (), [EIGHTIES, NINETIES, LIVE]),  # friend 4 has neither items nor likes
    ((ROCK,), None, 99, True, (), [EIGHTIES, NINETIES, LIVE]),  # unknown user
    ((ROCK,), None, None, True, (), [EIGHTIES, NINETIES, LIVE]),
    ((ROCK, JAZZ), None, None, False, (), []),  # no item has both
]


@pytest.mark.parametrize(("accepted", "candidates", "user", "through_friends", "exclude", "expected"), WALKS)
def test_walk_on_tiny_graph(
    social: AttributeGraph,
    accepted: tuple[int, ...],
    candidates: list[int] | None,
    user: int | None,
    through_friends: bool,
    exclude: tuple[int, ...],
    expected: list[int],
) -> None:
    cands = None if candidates is None else np.asarray(candidates)
    fast = social.reachable_attributes(accepted, cands, user, through_friends, exclude=exclude)
    slow = social.reachable_attributes_nx(accepted, cands, user, through_friends, exclude=exclude)
    assert fast.dtype == np.int64
    assert fast.tolist() == expected
    assert slow.tolist() == expected


@pytest.mark.parametrize(("dataset_name", "states"), [("lastfm_star", 50), ("lastfm", 15)])
def test_fast_walk_matches_networkx_walk_on_real_data(
    dataset_name: str, states: int, request: pytest.FixtureRequest
) -> None:
    dataset: Dataset = request.getfixturevalue(dataset_name)
    graph = AttributeGraph(dataset)
    rng = np.random.default_rng(7)
    users = list(dataset.users)
    restricted = 0
    for _ in range(states):
        item = dataset.catalog.items[int(rng.integers(dataset.catalog.n_items))]
        # Mostly one or two accepted attributes, as in real conversations; the networkx walk over
        # the whole catalog (nothing accepted) is slow, so that case is drawn less often.
        size = min(int(rng.choice([0, 1, 1, 1, 2, 2, 2])), len(item.attributes))
        accepted = tuple(int(a) for a in rng.choice(item.attributes, size=size, replace=False))
        user = users[int(rng.integers(len(users)))]
        candidates = dataset.catalog.index.filter(
            accepted, excluded_items=rng.choice(dataset.catalog.n_items, 5)
        )
        for through_friends in (False, True):
            fast = graph.reachable_attributes(accepted, None, user, through_friends)
            np.testing.assert_array_equal(
                fast, graph.reachable_attributes_nx(accepted, None, user, through_friends)
            )
            given = graph.reachable_attributes(accepted, candidates, user, through_friends)
            np.testing.assert_array_equal(
                given, graph.reachable_attributes_nx(accepted, candidates, user, through_friends)
            )
            assert not set(fast.tolist()) & set(accepted)
        plain = graph.reachable_attributes(accepted, None, user)
        social = graph.reachable_attributes(accepted, None, user, through_friends=True)
        assert set(social.tolist()) <= set(plain.tolist())
        restricted += len(social) < len(plain)
    # The friend rule must actually do something on real data, or the agreement above is hollow.
    assert restricted > 0


def test_real_graph_counts(lastfm_star: Dataset) -> None:
    graph = AttributeGraph(lastfm_star).nx
    catalog = lastfm_star.catalog
    kinds = Counter(kind for _, kind in graph.nodes(data="kind"))
    assert kinds == {
        "user": len(lastfm_star.users),
        "item": catalog.n_items,
        "attribute": catalog.n_attributes,
    }
    relations = Counter(relation for *_, relation in graph.edges(data="relation"))
    # Recorded from the SCPR files: 52910 training pairs (as in test_data_scpr); 94446 item tags
    # (12.71 per item); 23958 friend-list entries, each friendship listed from both sides.
    assert relations == {"has_attribute": 94446, "interacts": 52910, "likes": 33120, "friend": 23958 // 2}


# --- explanations -------------------------------------------------------------------------------


def test_explanation_on_tiny_graph(social: AttributeGraph) -> None:
    explanation = social.explain(3, (JAZZ, NINETIES), 0)
    assert explanation.item_label == "Delta"
    assert explanation.matched_attributes == (JAZZ, NINETIES)
    assert explanation.matched_labels == ("jazz", "90s")
    assert explanation.liked_attributes == (LIVE,)
    user, delta = user_node(0), item_node(3)
    assert explanation.paths == (
        (user, attribute_node(JAZZ), delta),
        (user, attribute_node(NINETIES), delta),
        (user, attribute_node(LIVE), delta),
    )
    assert (explanation.friends, explanation.n_friends) == ((1, 2), 2)
    assert (explanation.similar_users, explanation.n_similar_users) == ((3,), 1)
    assert explanation.social_paths == (
        (user, user_node(1), delta),
        (user, user_node(2), delta),
        (user, item_node(0), user_node(3), delta),
    )
    assert explanation.text == (
        "You said you like jazz and 90s. Delta has jazz and 90s. It also has live, which you liked before. "
        "2 of your friends chose it. One user like you chose it."
    )
    for path in explanation.paths + explanation.social_paths:
        # Every hop after the first (the conversation) is an edge of the graph.
        assert all(social.nx.has_edge(a, b) for a, b in zip(path[1:], path[2:], strict=False))


def test_explanation_from_state_and_edge_cases(social: AttributeGraph) -> None:
    state = DialogueState(user=User(0), accepted_attributes=(ROCK, JAZZ))
    from_state = social.explain(3, state)
    assert from_state.user_id == 0
    assert from_state.matched_attributes == (JAZZ,)  # Delta is not rock
    assert social.explain(3, state, max_users=1).friends == (1,)
    assert social.explain(3, state, max_users=1).n_friends == 2

    anonymous = social.explain(3, (JAZZ,))
    assert anonymous.paths == ((attribute_node(JAZZ), item_node(3)),)
    assert anonymous.social_paths == ()
    assert anonymous.text == "You said you like jazz. Delta has jazz."
    assert social.explain(1, ()).text == "Beta fits what you told us so far."
    assert (
        social.explain(2, (), 1).text == "Gamma fits what you told us so far."
    )  # own item, no friends on it
    assert social.explain(3, (), 3).text == "Delta has jazz, which you liked before."
    with pytest.raises(KeyError):
        social.explain(42, ())


def test_explanation_on_real_data_mentions_matched_attributes(lastfm_star: Dataset) -> None:
    graph = AttributeGraph(lastfm_star)
    rng = np.random.default_rng(3)
    user_ids = list(lastfm_star.users)
    for _ in range(10):
        user_id = user_ids[int(rng.integers(len(user_ids)))]
        items = lastfm_star.train.items_of(user_id) or (0,)
        item = lastfm_star.catalog.items[items[0]]
        accepted = item.attributes[:2]
        # A wish the item does not have is not matched, and the explanation does not claim it.
        outside = next(a for a in range(lastfm_star.catalog.n_attributes) if a not in item.attributes)
        explanation = graph.explain(item.index, (*accepted, outside), user_id)
        assert accepted and explanation.matched_attributes == accepted
        for attribute in accepted:
            assert lastfm_star.catalog.attributes[attribute].name in explanation.text
        assert lastfm_star.catalog.attributes[outside].name not in explanation.text, explanation.text
        assert item.title in explanation.text
