"""The user-item-attribute graph of a dataset, its CPR adjacency walk, and path explanations.

The networkx graph is the readable form: explanations and tests walk it. Policies call the walk on
every turn, so `AttributeGraph.reachable_attributes` answers the same question from the catalog's
CSR arrays and never builds the networkx graph; `reachable_attributes_nx` is the reference version
that the tests hold it to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal, TypeAlias

import networkx
import numpy as np
import numpy.typing as npt

from crs.types import DialogueState, UserId

if TYPE_CHECKING:
    from crs.data import Dataset

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

NodeKind: TypeAlias = Literal["user", "item", "attribute"]
Relation: TypeAlias = Literal["interacts", "friend", "likes", "has_attribute"]
NodeId: TypeAlias = tuple[str, int | str]

RELATIONS: tuple[Relation, ...] = ("interacts", "friend", "likes", "has_attribute")


def user_node(user_id: UserId) -> NodeId:
    return ("user", user_id)


def item_node(item: int) -> NodeId:
    return ("item", int(item))


def attribute_node(attribute: int) -> NodeId:
    return ("attribute", int(attribute))


def build_graph(dataset: Dataset) -> networkx.Graph:
    """The typed graph of `dataset` (schema in the package docstring).

    A simple `Graph` is enough: each pair of node kinds is joined by exactly one relation, so two
    nodes never need two edges. Every item and attribute becomes a node even when isolated, so
    node counts match the catalog.
    """
    catalog = dataset.catalog
    train = dataset.train
    graph = networkx.Graph(name=dataset.name)

    # Users come from profiles, every split and friend lists: a user known only from the
    # validation split can still be explained to, and a friend without a profile is still a path.
    user_ids: dict[UserId, None] = dict.fromkeys(dataset.users)
    for split in dataset.splits.values():
        user_ids.update(dict.fromkeys(split.by_user))
    for user in dataset.users.values():
        user_ids.update(dict.fromkeys(user.friends))

    graph.add_nodes_from((user_node(u), {"kind": "user", "label": f"user {u}", "id": u}) for u in user_ids)
    graph.add_nodes_from(
        (item_node(item.index), {"kind": "item", "label": item.title, "id": item.id})
        for item in catalog.items
    )
    graph.add_nodes_from(
        (attribute_node(a.index), {"kind": "attribute", "label": a.name, "id": a.id, "group": a.group})
        for a in catalog.attributes
    )

    # One relation per batch: add_edges_from with a shared keyword is several times faster than
    # a per-edge attribute dict on ~200k edges.
    graph.add_edges_from(
        ((item_node(item.index), attribute_node(a)) for item in catalog.items for a in item.attributes),
        relation="has_attribute",
    )
    graph.add_edges_from(
        ((user_node(u), item_node(i)) for u, items in train.by_user.items() for i in items),
        relation="interacts",
    )
    graph.add_edges_from(
        (
            (user_node(user.id), attribute_node(a))
            for user in dataset.users.values()
            for a in user.liked_attributes
        ),
        relation="likes",
    )
    graph.add_edges_from(
        (
            (user_node(user.id), user_node(friend))
            for user in dataset.users.values()
            for friend in user.friends
            if friend != user.id
        ),
        relation="friend",
    )
    return graph


def neighbors(graph: networkx.Graph, node: NodeId, relation: Relation) -> Iterator[NodeId]:
    """Neighbours of `node` joined to it by `relation`."""
    for other, data in graph.adj[node].items():
        if data["relation"] == relation:
            yield other


def _id_key(user_id: UserId) -> tuple[bool, int | str]:
    # Datasets use int or str user ids; putting the type first keeps sorting total if they mix.
    return (isinstance(user_id, str), user_id)


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


@dataclass(frozen=True)
class Explanation:
    """Why an item was recommended, as graph paths; `text` renders it for the user.

    `paths` run user -> attribute -> item. Their first hop is the conversation (the user accepted
    the attribute) for `matched_attributes`, and a `likes` edge of the profile for
    `liked_attributes`; the second hop is always a `has_attribute` edge.
    `social_paths` run user -> friend -> item, or user -> shared item -> similar user -> item.
    """

    item: int
    item_label: str
    user_id: UserId | None
    matched_attributes: tuple[int, ...]  # accepted in the conversation and carried by the item
    matched_labels: tuple[str, ...]
    liked_attributes: tuple[int, ...]  # from the user's profile, carried by the item, not matched
    liked_labels: tuple[str, ...]
    paths: tuple[tuple[NodeId, ...], ...]
    friends: tuple[UserId, ...]  # up to `max_users` friends who interacted with the item
    n_friends: int  # all such friends
    similar_users: tuple[UserId, ...]  # up to `max_users` non-friends sharing training items
    n_similar_users: int
    social_paths: tuple[tuple[NodeId, ...], ...]

    @property
    def text(self) -> str:
        sentences: list[str] = []

        def it() -> str:
            # Name the item once, in the first sentence; later sentences refer back to it.
            return "it" if sentences else self.item_label

        if self.matched_labels:
            matched = _join(self.matched_labels)
            sentences.append(f"You said you like {matched}.")
            sentences.append(f"{self.item_label} has {matched}.")
        if self.liked_labels:
            # Profiles can list dozens of attributes; three is enough to make the point.
            shown = _join(self.liked_labels[:3])
            also = " also" if self.matched_labels else ""
            subject = "It" if sentences else self.item_label
            sentences.append(f"{subject}{also} has {shown}, which you liked before.")
        if self.n_friends:
            who = "One of your friends" if self.n_friends == 1 else f"{self.n_friends} of your friends"
            sentences.append(f"{who} chose {it()}.")
        if self.n_similar_users:
            who = (
                "One user like you" if self.n_similar_users == 1 else f"{self.n_similar_users} users like you"
            )
            sentences.append(f"{who} chose {it()}.")
        if not sentences:
            sentences.append(f"{self.item_label} fits what you told us so far.")
        return " ".join(sentences)


class AttributeGraph:
    """The dataset's graph, with the CPR walk (fast, on arrays) and path explanations (on networkx).

    Construction is cheap; the networkx graph is built on the first use of `.nx`.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.index = dataset.catalog.index
        self._frequency: IntArray = np.diff(self.index.attribute_pointers)
        # Attributes carried by at least one item: the walk's answer before anything is accepted.
        self._attributes_in_use: BoolArray = self._frequency > 0
        # Per user, filled on first use: a few hundred ints each, so no eviction is needed.
        self._social: dict[UserId, tuple[IntArray, IntArray] | None] = {}

    @cached_property
    def nx(self) -> networkx.Graph:
        return build_graph(self.dataset)

    def to_networkx(self) -> networkx.Graph:
        return self.nx

    @cached_property
    def _friends(self) -> dict[UserId, tuple[UserId, ...]]:
        # Symmetric closure of the friend lists, so the array walk sees exactly the undirected
        # `friend` edges of the networkx graph even when a dataset lists a friendship one way only.
        closure: dict[UserId, dict[UserId, None]] = {}
        for user in self.dataset.users.values():
            for friend in user.friends:
                if friend != user.id:
                    closure.setdefault(user.id, {})[friend] = None
                    closure.setdefault(friend, {})[user.id] = None
        return {user_id: tuple(friends) for user_id, friends in closure.items()}

    def friends_of(self, user_id: UserId) -> tuple[UserId, ...]:
        """The user's friends (friendships count both ways)."""
        return self._friends.get(user_id, ())

    def neighbors_of_user(self, user_id: UserId, relation: Relation | None = None) -> list[NodeId]:
        """Graph neighbours of the user, optionally only those joined by `relation`."""
        node = user_node(user_id)
        if node not in self.nx:
            return []
        if relation is None:
            return list(self.nx.adj[node])
        return list(neighbors(self.nx, node, relation))

    # --- the CPR adjacency walk ---------------------------------------------------------------

    def _gather(self, items: IntArray) -> IntArray:
        """Attributes of `items`, concatenated."""
        pointers = self.index.item_pointers
        starts = pointers[items]
        lengths = pointers[items + 1] - starts
        total = int(lengths.sum())
        offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
        return self.index.item_attributes[offsets]

    def _adjacent(self, items: IntArray) -> BoolArray:
        """Mask of the attributes carried by any of `items`."""
        if 2 * len(items) > self.index.n_items:
            # Large candidate sets (early turns, or everything minus a few rejected items): gather
            # the few non-candidates instead. An attribute is adjacent iff not all of its items
            # are outside the candidates.
            is_candidate = np.zeros(self.index.n_items, dtype=bool)
            is_candidate[items] = True
            outside = np.bincount(
                self._gather(np.flatnonzero(~is_candidate)), minlength=self.index.n_attributes
            )
            return self._frequency > outside
        mask = np.zeros(self.index.n_attributes, dtype=bool)
        mask[self._gather(items)] = True
        return mask

    def _social_of(self, user_id: UserId) -> tuple[IntArray, IntArray] | None:
        """(items the friends interacted with, attributes the friends like), or None without friends."""
        if user_id in self._social:
            return self._social[user_id]
        friends = self.friends_of(user_id)
        social: tuple[IntArray, IntArray] | None = None
        if friends:
            train = self.dataset.train
            items = [i for f in friends for i in train.items_of(f)]
            liked = [a for f in friends for a in self.dataset.user(f).liked_attributes]
            social = (
                np.unique(np.asarray(items, dtype=np.int64)),
                np.unique(np.asarray(liked, dtype=np.int64)),
            )
        self._social[user_id] = social
        return social

    def reachable_attributes(
        self,
        accepted: Sequence[int],
        candidates: npt.ArrayLike | None = None,
        user_id: UserId | None = None,
        through_friends: bool = False,
        *,
        exclude: Iterable[int] = (),
    ) -> IntArray:
        """Attributes one hop from the candidate items, sorted, without the accepted ones.

        Candidates are the items having every accepted attribute, or `candidates` when given.
        `exclude` drops further attributes (e.g. already asked) before the friend rule applies.

        Friend rule, with `through_friends` and a user who has friends: keep only the reachable
        attributes that are also reachable through a friend, i.e. attributes a with a path
        user -friend- f -likes- a, or user -friend- f -interacts- i -has_attribute- a with i a
        candidate. If that leaves nothing, the unrestricted set is returned, so that following
        friends never ends the walk early. (Adding friends' attributes instead would change
        nothing: anything not adjacent to a candidate is a question whose "yes" empties the list.)
        """
        accepted_array = np.asarray(accepted, dtype=np.int64)
        if candidates is None:
            if accepted_array.size == 0:
                items = np.arange(self.index.n_items, dtype=np.int64)
                mask = self._attributes_in_use.copy()
            else:
                items = self.index.filter(accepted_array.tolist())
                mask = self._adjacent(items)
        else:
            items = np.asarray(candidates, dtype=np.int64).reshape(-1)
            mask = self._adjacent(items)
        mask[accepted_array] = False
        excluded = np.fromiter(exclude, dtype=np.int64)
        mask[excluded] = False

        social = self._social_of(user_id) if through_friends and user_id is not None else None
        if social is not None:
            friend_items, friend_liked = social
            is_friend_item = np.zeros(self.index.n_items, dtype=bool)
            is_friend_item[friend_items] = True
            via_friends = self._adjacent(items[is_friend_item[items]])
            via_friends[friend_liked] = True
            restricted = mask & via_friends
            if restricted.any():
                mask = restricted
        return np.flatnonzero(mask).astype(np.int64, copy=False)

    def reachable_attributes_nx(
        self,
        accepted: Sequence[int],
        candidates: npt.ArrayLike | None = None,
        user_id: UserId | None = None,
        through_friends: bool = False,
        *,
        exclude: Iterable[int] = (),
    ) -> IntArray:
        """`reachable_attributes` by walking the networkx graph: the slow reference for tests."""
        graph = self.nx
        if candidates is None:
            if len(accepted):
                item_sets = [set(neighbors(graph, attribute_node(a), "has_attribute")) for a in accepted]
                items = set.intersection(*item_sets)
            else:
                items = {node for node, kind in graph.nodes(data="kind") if kind == "item"}
        else:
            items = {item_node(i) for i in np.asarray(candidates, dtype=np.int64).reshape(-1).tolist()}
        dropped = {attribute_node(a) for a in accepted} | {attribute_node(a) for a in exclude}
        reachable = {a for i in items for a in neighbors(graph, i, "has_attribute")} - dropped

        user = user_node(user_id) if user_id is not None else None
        if through_friends and user is not None and user in graph:
            friends = list(neighbors(graph, user, "friend"))
            if friends:
                via_friends: set[NodeId] = set()
                for friend in friends:
                    via_friends.update(neighbors(graph, friend, "likes"))
                    for item in neighbors(graph, friend, "interacts"):
                        if item in items:
                            via_friends.update(neighbors(graph, item, "has_attribute"))
                restricted = reachable & via_friends
                if restricted:
                    reachable = restricted
        return np.array(sorted(int(node[1]) for node in reachable), dtype=np.int64)

    # --- explanations -------------------------------------------------------------------------

    def explain(
        self,
        item: int,
        state_or_accepted: DialogueState | Sequence[int],
        user_id: UserId | None = None,
        *,
        max_users: int = 3,
    ) -> Explanation:
        """Path explanation of recommending `item`.

        With a `DialogueState`, the user defaults to the state's user. Social evidence needs a
        user: friends who interacted with the item in training, then other users who share
        training items with the user and interacted with it, most shared items first.
        """
        if isinstance(state_or_accepted, DialogueState):
            accepted: Sequence[int] = state_or_accepted.accepted_attributes
            if user_id is None:
                user_id = state_or_accepted.user.id
        else:
            accepted = state_or_accepted
        graph = self.nx
        target = item_node(item)
        if target not in graph:
            raise KeyError(f"unknown item index {item!r}")
        labels = graph.nodes
        carried = set(neighbors(graph, target, "has_attribute"))
        matched = tuple(dict.fromkeys(a for a in accepted if attribute_node(a) in carried))

        user = user_node(user_id) if user_id is not None else None
        paths_from: tuple[NodeId, ...] = (user,) if user is not None else ()
        liked: tuple[int, ...] = ()
        friends: list[NodeId] = []
        similar: list[tuple[int, NodeId, NodeId]] = []  # (shared count, one shared item, user)
        if user is not None and user in graph:
            matched_set = set(matched)
            liked = tuple(
                sorted(
                    int(a[1])
                    for a in neighbors(graph, user, "likes")
                    if a in carried and a[1] not in matched_set
                )
            )
            friend_set = set(neighbors(graph, user, "friend"))
            friends = sorted(
                (f for f in friend_set if graph.has_edge(f, target)), key=lambda n: _id_key(n[1])
            )
            # Having played the recommended item itself is no evidence of similar taste.
            own_items = set(neighbors(graph, user, "interacts")) - {target}
            for player in neighbors(graph, target, "interacts"):
                if player == user or player in friend_set:
                    continue
                shared = own_items.intersection(neighbors(graph, player, "interacts"))
                if shared:
                    similar.append((len(shared), min(shared, key=lambda n: int(n[1])), player))
            similar.sort(key=lambda entry: (-entry[0], _id_key(entry[2][1])))

        paths = tuple((*paths_from, attribute_node(a), target) for a in matched + liked)
        social_paths = tuple(
            [(*paths_from, friend, target) for friend in friends[:max_users]]
            + [(*paths_from, shared, player, target) for _, shared, player in similar[:max_users]]
        )

        return Explanation(
            item=int(item),
            item_label=str(labels[target]["label"]),
            user_id=user_id,
            matched_attributes=matched,
            matched_labels=tuple(str(labels[attribute_node(a)]["label"]) for a in matched),
            liked_attributes=liked,
            liked_labels=tuple(str(labels[attribute_node(a)]["label"]) for a in liked),
            paths=paths,
            friends=tuple(f[1] for f in friends[:max_users]),
            n_friends=len(friends),
            similar_users=tuple(entry[2][1] for entry in similar[:max_users]),
            n_similar_users=len(similar),
            social_paths=social_paths,
        )
