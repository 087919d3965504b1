"""A static decision tree of attribute questions, learned offline (in the spirit of FacT-CRS).

FacT-CRS (Tu et al., 2023) replaces a learned dialogue policy by decision trees: each node asks
one attribute, the yes/no answer picks the child, and at a leaf the system recommends the leaf's
items, moving further down their ranking after each rejected list. This module is that baseline,
kept deliberately simple: its value is to show what a *fixed* question plan achieves next to
policies that adapt their questions to each conversation.

Learning (offline, cached with `load_or_train`). The tree is grown greedily over every catalog
item, each weighted by how often it is a target in the learning data plus a prior:
`weight = prior + train interactions + tuning-pair targets`. The prior keeps items no one chose
reachable (38 % of LastFM's valid targets have no training interaction). A node asks the
attribute with the largest information gain about the weighted target; since the answer is a
function of the item, that gain is just the entropy of the weighted yes/no split, so the most
balanced split wins (ties: the lower attribute index). Growth stops at `max_depth`, at nodes of
`min_leaf_items` items or fewer, and where no attribute splits the items. The test split is
never read and the first 4,000 shuffled valid pairs (the evaluation set) are never used. The
tree does not depend on the scorer, so one tree serves every scorer.

Defaults were chosen on tuning pairs only (tree grown with half of them, scored on the other
half, LastFM and LastFM*): a shallow tree (depth 7) beats deeper ones because every question it
does not ask leaves a turn for another list, and a large prior (30, against about 8 targets per
item on average) beats popularity-heavy weights: the targets are spread over the catalog, so
near-uniform weights split them more evenly. Learning from the data therefore matters little
here, which is itself a finding about this baseline.

Decisions (per turn, stateless, from the `DialogueState` alone). The path is walked from the
root using what the user has revealed: a node whose attribute is already known (volunteered in
turn 1, or answered earlier) follows the known answer without asking; a "don't know" follows
the child holding more of the items still consistent with the other answers (ties: the heavier
child in training), a cheap stand-in for FacT-CRS's exploring both branches that keeps one path
and so one question per turn; a question whose answer is implied by everything known (every
consistent item has the attribute, or none has) is followed without asking, since asking it
would waste a turn. The first node on the path that is none of these asks its attribute.

It recommends instead at a leaf, when `list_size` or fewer consistent items remain (the node is
small), and on the last turn. Items are ranked by how many known yes/no answers they contradict,
then by the scorer: with exact answers and no "don't know", the uncontradicted items are exactly
the current node's items that also carry the volunteered attribute, so this is "the node's top
items, then the next best ones after a rejection"; once those run out the list widens to items
one answer away (the sibling branches), like moving up the tree. A wrong (noisy) answer sends the
walk down the wrong branch and asks the wrong questions afterwards; the target is only demoted,
not lost, but the static tree cannot revise its plan: that weakness is expected and is what this
baseline measures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from crs.index import AttributeIndex, BoolArray, FloatArray, IntArray
from crs.protocol import tuning_pairs
from crs.types import Ask, DialogueState, GiveUp, Recommend, SystemAction
from policy.base import PolicyBase, binary_entropy, top_k
from policy.learning import StageReport, Trained, TrainingContext, load_or_train

if TYPE_CHECKING:
    from crs.data import Dataset
    from crs.scoring import Scorer

FORMAT_VERSION = 1
LEAF = -1  # node_attribute of a leaf, and the child index of a leaf


def target_weights(dataset: Dataset, prior: float) -> FloatArray:
    """How much each item matters as a target: training interactions + tuning targets + `prior`."""
    n_items = dataset.catalog.n_items
    train = dataset.splits.get("train")
    chosen = [np.asarray(items, dtype=np.int64) for items in (train.by_user.values() if train else ())]
    pairs = tuning_pairs(dataset)
    if len(pairs):
        chosen.append(pairs[:, 1].astype(np.int64))
    counts = np.bincount(np.concatenate(chosen), minlength=n_items) if chosen else np.zeros(n_items)
    return counts.astype(np.float64) + prior


def grow_tree(
    index: AttributeIndex,
    weights: FloatArray,
    max_depth: int,
    min_leaf_items: int,
    progress: StageReport | None = None,
    question_weights: FloatArray | None = None,
) -> dict[str, np.ndarray]:
    """Grow the tree greedily (most balanced weighted split first) and encode it as arrays.

    Nodes are numbered in creation order, the root is 0. Every node's items are the contiguous
    slice `item_order[node_start:node_stop]` (a node's slice is partitioned in place into its
    yes child followed by its no child), so the tree needs no per-node item lists.
    """
    n_items = index.n_items
    item_order = np.arange(n_items, dtype=np.int64)
    attribute: list[int] = [LEAF]
    yes: list[int] = [LEAF]
    no: list[int] = [LEAF]
    start: list[int] = [0]
    stop: list[int] = [n_items]
    depth: list[int] = [0]
    settled, reported = 0, 0  # items already in a finished leaf, and the last percentage reported
    stack = [0]
    while stack:
        node = stack.pop()
        items = item_order[start[node] : stop[node]]
        splittable = depth[node] < max_depth and len(items) > min_leaf_items
        best = _best_split(index, items, weights, question_weights) if splittable else None
        if best is None:
            settled += len(items)
            percent = settled * 100 // max(n_items, 1)
            if progress is not None and percent > reported:  # at most 100 reports for thousands of leaves
                reported = percent
                progress("growing the question tree", settled / n_items)
            continue
        has = index.mask_of(best)[items]
        item_order[start[node] : stop[node]] = np.concatenate([items[has], items[~has]])
        middle = start[node] + int(has.sum())
        attribute[node] = best
        for begin, end in ((start[node], middle), (middle, stop[node])):
            attribute.append(LEAF)
            yes.append(LEAF)
            no.append(LEAF)
            start.append(begin)
            stop.append(end)
            depth.append(depth[node] + 1)
        yes[node], no[node] = len(attribute) - 2, len(attribute) - 1
        stack.extend((no[node], yes[node]))  # the yes subtree is grown first
    cumulative = np.concatenate([[0.0], np.cumsum(weights[item_order])])
    node_weight = cumulative[np.asarray(stop)] - cumulative[np.asarray(start)]
    return {
        "node_attribute": np.asarray(attribute, dtype=np.int64),
        "node_yes": np.asarray(yes, dtype=np.int64),
        "node_no": np.asarray(no, dtype=np.int64),
        "node_start": np.asarray(start, dtype=np.int64),
        "node_stop": np.asarray(stop, dtype=np.int64),
        "node_depth": np.asarray(depth, dtype=np.int64),
        "node_weight": np.asarray(node_weight, dtype=np.float64),
        "item_order": item_order,
    }


def _best_split(
    index: AttributeIndex, items: IntArray, weights: FloatArray, question_weights: FloatArray | None = None
) -> int | None:
    """The attribute with the largest information gain on `items` (None when none splits them),
    the gain multiplied by `question_weights` when given (question rules: 0 = never asked)."""
    total = float(weights[items].sum())
    if len(items) < 2 or total <= 0.0:
        return None
    with_attribute = index.attribute_counts(items, weights)
    counts = index.attribute_counts(items)
    gain = binary_entropy(with_attribute / total)
    # Zero-weight items can make a non-split look balanced: an attribute on all items or none splits nothing.
    gain[(counts == 0) | (counts == len(items))] = 0.0
    if question_weights is not None:
        gain = gain * question_weights
    best = int(np.argmax(gain))
    return best if gain[best] > 0.0 else None


class FactTreePolicy(PolicyBase):
    """Walk a static, offline-learned question tree; recommend at its leaves (see module docstring)."""

    name = "fact_tree"
    learns = True

    def __init__(
        self,
        dataset: Dataset,
        scorer: Scorer,
        list_size: int = 10,
        max_depth: int = 7,
        min_leaf_items: int = 10,
        prior: float = 30.0,
        training: TrainingContext | None = None,
        questions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(dataset, scorer, list_size, questions)
        if max_depth < 0:
            raise ValueError(f"max_depth must be at least 0, got {max_depth}")
        if min_leaf_items < 1:
            raise ValueError(f"min_leaf_items must be at least 1, got {min_leaf_items}")
        if prior <= 0.0:
            raise ValueError(f"prior must be positive (every item must stay reachable), got {prior}")
        context = training or TrainingContext()
        settings: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "max_depth": max_depth,
            "min_leaf_items": min_leaf_items,
            "prior": prior,
        }
        rules = self.question_rules
        # The tree is grown with the question rules (unaskable attributes never become a node), so
        # rules are part of the cache key; without rules the key, and the tree, stay as before.
        question_weights = None
        if rules is not None:
            question_weights = np.where(rules.askable, rules.weights, 0.0)
            settings["questions"] = rules.fingerprint()

        def train() -> Mapping[str, np.ndarray]:
            context.report("counting targets", 0.0)
            weights = target_weights(dataset, prior)
            tree = grow_tree(self.index, weights, max_depth, min_leaf_items, context.report, question_weights)
            context.report("growing the question tree", 1.0)
            return tree

        self.trained: Trained = load_or_train(context, dataset, self.name, settings, train)
        arrays = self.trained.arrays
        self.node_attribute: IntArray = arrays["node_attribute"].astype(np.int64)
        self.node_yes: IntArray = arrays["node_yes"].astype(np.int64)
        self.node_no: IntArray = arrays["node_no"].astype(np.int64)
        self.node_start: IntArray = arrays["node_start"].astype(np.int64)
        self.node_stop: IntArray = arrays["node_stop"].astype(np.int64)
        self.node_weight: FloatArray = arrays["node_weight"].astype(np.float64)
        self.item_order: IntArray = arrays["item_order"].astype(np.int64)

    def act(self, state: DialogueState, rng: np.random.Generator) -> SystemAction:
        contradictions = self.contradictions(state)
        available = np.ones(self.index.n_items, dtype=bool)
        available[self.excluded_items(state)] = False
        if not available.any():
            return GiveUp()
        # The best tier: items contradicting the fewest answers (none at all unless answers were noisy).
        fewest = int(contradictions[available].min())
        consistent = available & (contradictions == fewest)
        node = self.walk(state, consistent)
        attribute = int(self.node_attribute[node])
        small = int(consistent.sum()) <= self.list_size
        if attribute == LEAF or small or self.is_last_action(state) or not self.may_ask(state):
            return Recommend(self.ranked(state, contradictions, available))
        return Ask(attribute)

    def contradictions(self, state: DialogueState) -> IntArray:
        """For each item, how many known yes/no answers it contradicts ("don't know" counts for none)."""
        counts = np.full(self.index.n_items, len(state.accepted_attributes), dtype=np.int64)
        for attribute in state.accepted_attributes:
            counts[self.index.items_with(attribute)] -= 1
        for attribute in state.rejected_attributes:
            counts[self.index.items_with(attribute)] += 1
        return counts

    def walk(self, state: DialogueState, consistent: BoolArray) -> int:
        """The node the conversation has reached: a leaf, or the first node whose question is open."""
        accepted, rejected = set(state.accepted_attributes), set(state.rejected_attributes)
        unknown = set(state.unknown_attributes)
        n_consistent = int(consistent.sum())
        node = 0
        while (attribute := int(self.node_attribute[node])) != LEAF:
            yes, no = int(self.node_yes[node]), int(self.node_no[node])
            if attribute in accepted:
                node = yes
            elif attribute in rejected:
                node = no
            elif attribute in unknown:
                node = self._likelier_child(yes, no, consistent)
            else:
                having = int(consistent[self.index.items_with(attribute)].sum())
                if n_consistent and having == n_consistent:
                    node = yes  # every consistent item has it: "yes" is implied
                elif n_consistent and having == 0:
                    node = no
                else:
                    return node
        return node

    def _likelier_child(self, yes: int, no: int, consistent: BoolArray) -> int:
        in_yes = int(consistent[self.item_order[self.node_start[yes] : self.node_stop[yes]]].sum())
        in_no = int(consistent[self.item_order[self.node_start[no] : self.node_stop[no]]].sum())
        if in_yes != in_no:
            return yes if in_yes > in_no else no
        return yes if self.node_weight[yes] >= self.node_weight[no] else no

    def ranked(self, state: DialogueState, contradictions: IntArray, available: BoolArray) -> tuple[int, ...]:
        """The best `list_size` available items: fewest contradicted answers first, then by score."""
        scores, _ = self.user_context(state.user.id)
        chosen: list[int] = []
        for level in np.unique(contradictions[available]):
            tier = np.flatnonzero(available & (contradictions == level))
            chosen.extend(top_k(tier, scores, self.list_size - len(chosen)))
            if len(chosen) == self.list_size:
                break
        return tuple(chosen)
