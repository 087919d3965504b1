"""An SCPR-style graph walk (Lei et al., KDD 2020), without the learned ask/recommend switch.

Like SCPR and UNICORN it filters candidates on "yes" answers only: an item is dropped when it lacks
an accepted attribute, never because of a "no". Denied attributes instead lower the score of the
items that carry them. Questions are restricted to the attributes reachable on the attribute
graph from the accepted ones through the current candidates (the CPR adjacency walk) and ranked
by weighted entropy, each candidate weighted by the softmax of its score.

SCPR learns when to recommend with a policy network; here a rule stands in for it: recommend when
the list can hold every candidate, when the top of the list holds `recommend_mass` of the
candidates' weight, or on the last turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from crs.index import FloatArray, IntArray
from crs.types import Ask, DialogueState, GiveUp, Recommend, SystemAction
from knowledge_graph import AttributeGraph
from policy.base import PolicyBase, binary_entropy, top_k

if TYPE_CHECKING:
    from crs.data import Dataset
    from crs.scoring import Scorer


class ScprWalkPolicy(PolicyBase):
    name = "scpr_walk"

    def __init__(
        self,
        dataset: Dataset,
        scorer: Scorer,
        list_size: int = 10,
        temperature: float = 1.0,
        recommend_mass: float = 0.9,
        rejected_penalty: float = 1.0,
        through_friends: bool = False,
        questions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(dataset, scorer, list_size, questions)
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if not 0.0 < recommend_mass <= 1.0:
            raise ValueError(f"recommend_mass must be in (0, 1], got {recommend_mass}")
        self.temperature = temperature
        self.recommend_mass = recommend_mass
        self.rejected_penalty = rejected_penalty
        self.through_friends = through_friends
        self.graph = AttributeGraph(dataset)

    def candidate_scores(self, state: DialogueState, candidates: IntArray) -> FloatArray:
        """Standardised collaborative scores of the candidates, minus a penalty per denied attribute."""
        scores, _ = self.user_context(state.user.id)
        values = scores[candidates]
        spread = values.std()
        values = (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)
        if state.rejected_attributes and self.rejected_penalty:
            flat, owners = self.index.gather_attributes(candidates)
            hits = np.isin(flat, np.asarray(state.rejected_attributes))
            values = values - self.rejected_penalty * np.bincount(owners[hits], minlength=len(candidates))
        return values

    def walk_step(self, state: DialogueState) -> WalkStep:
        """One turn of the walk before the ask/recommend decision: the list, the best question."""
        candidates = self.index.filter(
            required=state.accepted_attributes, excluded_items=self.excluded_items(state)
        )
        if len(candidates) == 0:
            return WalkStep(None)
        values = self.candidate_scores(state, candidates)
        full = np.full(self.index.n_items, -np.inf)
        full[candidates] = values
        recommendation = Recommend(top_k(candidates, full, self.list_size))
        if len(candidates) <= self.list_size or self.is_last_action(state) or not self.may_ask(state):
            return WalkStep(recommendation)
        weights = np.exp((values - values.max()) / self.temperature)
        weights /= weights.sum()
        reachable = self.graph.reachable_attributes(
            state.accepted_attributes,
            candidates,
            state.user.id,
            through_friends=self.through_friends,
            exclude=state.asked_attributes,
        )
        rules = self.question_rules
        if rules is not None:
            reachable = reachable[rules.askable[reachable] & (rules.weights[reachable] > 0)]
        if len(reachable) == 0:
            return WalkStep(recommendation, weights=weights)
        entropy = binary_entropy(self.index.attribute_counts(candidates, weights)[reachable])
        if rules is not None and rules.weighted:
            entropy = entropy * rules.weights[reachable]
        best = int(np.argmax(entropy))
        if entropy[best] <= 1e-12:
            return WalkStep(recommendation, weights=weights)
        return WalkStep(recommendation, Ask(int(reachable[best])), weights, entropy)

    def act(self, state: DialogueState, rng: np.random.Generator) -> SystemAction:
        step = self.walk_step(state)
        if step.recommendation is None:
            return GiveUp()
        if step.question is None or step.weights is None:
            return step.recommendation
        if np.sort(step.weights)[-self.list_size :].sum() >= self.recommend_mass:
            return step.recommendation
        return step.question


@dataclass(frozen=True)
class WalkStep:
    """The walk's view of a turn. `question` is None when recommending is the only sensible action,
    `recommendation` None when no candidate is left (give up)."""

    recommendation: Recommend | None
    question: Ask | None = None
    weights: FloatArray | None = None  # softmax weight of each candidate
    entropy: FloatArray | None = None  # weighted entropy of each reachable attribute
