"""The belief policy: the conversation as Bayesian inference over which item the user wants.

Belief. p(i) ∝ prior(i) x likelihood(answers | i), recomputed from the dialogue state each turn
(the policy keeps nothing between turns):
- prior: `policy.prior`, a log-linear model of the user's history, friends and the catalog, fitted
  on tuning conversations;
- a volunteered attribute is a "yes" with a small error rate `inform_error`; an unwanted one is
  a "no";
- an item the user names as liked ("something like The Matrix") adds `similar_weight` x its
  similarity to every item (`crs.scoring.similarity`: distinctive shared attributes and shared
  audiences), a disliked one takes it away: evidence, never a filter. The named item itself is
  ruled out, since the user knows it;
- a yes/no answer agrees with an item with probability 1 - e and contradicts it with probability
  e, where the user's error rate e is itself uncertain: a mixture over `error_rates` with weights
  `error_weights`. A user who never contradicts themselves is soon believed to be exact, one who
  does keeps every item alive. Nothing is ever ruled out by an answer alone;
- "don't know" says nothing about the item (the simulated user's don't-knows are independent of
  it; a real user's might not be, which a learned rate could capture later);
- a rejected list rules its items out, as do the user's training items: the protocol never
  shows an item twice, and a training item is already known to the user.

Questions. The attribute with the largest expected information gain about the item under the
noisy answer channel, among those not yet asked: this is the one whose belief mass is closest
to one half.

Ask or recommend. One-step lookahead with a recommend-only continuation (a rollout): the
expected number of turns to success when recommending the most probable items block after block
from now on, against asking the best few questions first and then doing so. Failing within the
turn limit costs the remaining turns plus `failure_penalty`, and a success earns back
`gain_weight` times hDCG's discount of its turn and rank (a person would rather see the item
early and at the top of the list). Asking wins only when the answer is expected to save more
than the turn it costs, which makes the policy recommend early when the prior is confident and
ask when the belief is spread. A "don't know" is expected at the user's own rate so far, and
costs a turn without changing the belief.

Large catalogs. Above `max_candidates` items, a conversation weighs only the `max_candidates`
items most probable after the user's opening (a pool chosen once per conversation from the
prior and the opening, so every later turn costs the size of the pool, not of the catalog). The
pool is a function of the user and the opening alone, so decisions stay a function of the state.
Smaller catalogs (every benchmark dataset) are weighed whole, exactly as without a pool.

Every decision can be explained: `decide(state)` returns the numbers behind it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from crs.index import AttributeIndex, BoolArray, FloatArray, IntArray
from crs.protocol import tuning_pairs
from crs.types import (
    Answer,
    AnswerReply,
    Ask,
    DialogueState,
    Exchange,
    GiveUp,
    InformReply,
    Recommend,
    RejectReply,
    SystemAction,
    UserId,
)
from policy.base import Candidate, PolicyBase, binary_entropy
from policy.learning import Trained, TrainingContext, load_or_train
from policy.prior import FEATURES, PriorFeatures, fit_conditional_logit, opening_groups

if TYPE_CHECKING:
    from crs.data import Dataset
    from crs.scoring import Scorer
    from crs.scoring.similarity import ItemSimilarity

PRIOR_FORMAT = 1
# Items whose belief is below this share of the most probable item's cannot matter within 15
# turns; dropping them keeps every per-turn computation small.
NEGLIGIBLE = 1e-5


def _said_last(history: Sequence[Exchange]) -> dict[int, int]:
    """Attribute -> the history position of the user's last volunteered statement about it ("no
    comedy after all"): it overrides what they said or answered about it before. Answers do not
    override each other: contradicting answers are evidence of a noisy user, which the error
    model learns from. In the simulated protocol nothing is ever stated twice."""
    last: dict[int, int] = {}
    for turn, exchange in enumerate(history):
        reply = exchange.reply
        if isinstance(reply, InformReply):
            for attribute in (*reply.attributes, *reply.unwanted):
                last[attribute] = turn
    return last


@dataclass(frozen=True)
class Decision:
    """What the policy decided and why: the numbers a person can check."""

    action: SystemAction
    candidates: int  # items still believed possible (above the negligible share)
    top_mass: float  # belief mass of the list that would be recommended now
    cost_if_recommending: float  # expected turns to success, recommending from now on, minus the
    # gain of an early success (see BeliefPolicy.expected_turns)
    cost_if_asking: float | None  # the same after asking the best question first
    question: int | None  # attribute index of the best question
    question_yes: float | None  # probability of a "yes" to it
    error_rate: float  # the user's answer error rate the belief currently expects
    asking_costs: tuple[tuple[int, float], ...] = ()  # (attribute, cost if asking it first) for
    # every shortlisted question the lookahead weighed, most informative first

    def trace(self) -> tuple[Candidate, ...]:
        """The decision trace: each question weighed and recommending now, cheapest first."""
        if isinstance(self.action, GiveUp):
            return (Candidate("give_up", self.cost_if_recommending, chosen=True),)
        asked = self.action.attribute if isinstance(self.action, Ask) else None
        trace = [Candidate("ask", cost, attribute=a, chosen=a == asked) for a, cost in self.asking_costs]
        trace.append(
            Candidate("recommend", self.cost_if_recommending, chosen=isinstance(self.action, Recommend))
        )
        return tuple(sorted(trace, key=lambda candidate: candidate.score))


@dataclass(frozen=True, eq=False)
class CandidatePool:
    """The items a conversation on a large catalog weighs (ascending), with which of them carry
    each attribute the conversation has touched (filled as it goes: a conversation touches a
    dozen attributes, and each costs one pass over the catalog's mask of it)."""

    items: IntArray
    catalog_index: AttributeIndex
    memberships: dict[int, BoolArray] = field(default_factory=dict)

    def mask_of(self, attribute: int) -> BoolArray:
        """Which pool items carry `attribute`, in pool order."""
        mask = self.memberships.get(attribute)
        if mask is None:  # the same array whoever computes it first: safe to share between threads
            mask = self.memberships[attribute] = self.catalog_index.mask_of(attribute)[self.items]
        return mask

    def positions(self, items: IntArray) -> IntArray:
        """Positions in the pool of those of `items` that are in it."""
        if len(self.items) == 0:
            return np.zeros(0, dtype=np.int64)
        positions = np.minimum(np.searchsorted(self.items, items), len(self.items) - 1)
        return positions[self.items[positions] == items]


class BeliefPolicy(PolicyBase):
    name = "belief"
    cache_attributes = (*PolicyBase.cache_attributes, "_prior", "_last_decision", "_similarity", "_pool")
    learns = True
    trace_score = "expected turns to the item, minus the worth of an early success (lower is better)"

    def __init__(
        self,
        dataset: Dataset,
        scorer: Scorer,
        list_size: int = 10,
        error_rates: Sequence[float] = (0.01, 0.1, 0.25),
        error_weights: Sequence[float] = (0.6, 0.3, 0.1),
        inform_error: float = 1e-4,
        failure_penalty: float = 5.0,
        gain_weight: float = 30.0,
        lookahead_questions: int = 6,
        dont_know_prior: float = 0.05,
        dont_know_strength: float = 4.0,
        prior_weight: float = 1.0,
        cold_user_popularity: float = 1.0,
        similar_weight: float = 8.0,
        use_prior: bool = True,
        prior_l2: float = 0.001,
        prior_seed: int = 0,
        max_candidates: int = 20_000,
        training: TrainingContext | None = None,
        questions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(dataset, scorer, list_size, questions)
        if len(error_rates) != len(error_weights) or not error_rates:
            raise ValueError("error_rates and error_weights must be non-empty and of the same length")
        if any(not 0.0 < e < 0.5 for e in error_rates):
            raise ValueError(f"error rates must lie strictly between 0 and 0.5, got {list(error_rates)}")
        if any(w <= 0 for w in error_weights):
            raise ValueError(f"error weights must be positive, got {list(error_weights)}")
        if not 0.0 < inform_error < 0.5:
            raise ValueError(f"inform_error must lie strictly between 0 and 0.5, got {inform_error}")
        if failure_penalty < 0:
            raise ValueError(f"failure_penalty must be non-negative, got {failure_penalty}")
        if lookahead_questions < 1:
            raise ValueError(f"lookahead_questions must be at least 1, got {lookahead_questions}")
        self.error_rates = np.asarray(error_rates, dtype=np.float64)
        weights = np.asarray(error_weights, dtype=np.float64)
        self.log_error_weights = np.log(weights / weights.sum())
        self.inform_error = inform_error
        self.failure_penalty = failure_penalty
        if gain_weight < 0:
            raise ValueError(f"gain_weight must be non-negative, got {gain_weight}")
        self.gain_weight = gain_weight
        self._weights_cache: dict[tuple[int, int], tuple[FloatArray, FloatArray]] = {}
        self.lookahead_questions = lookahead_questions
        if not 0.0 <= dont_know_prior < 1.0 or dont_know_strength <= 0:
            raise ValueError("dont_know_prior must be in [0, 1) and dont_know_strength positive")
        self.dont_know_prior = dont_know_prior
        self.dont_know_strength = dont_know_strength
        self.prior_weight = prior_weight
        self.cold_user_popularity = cold_user_popularity
        if similar_weight < 0:
            raise ValueError(f"similar_weight must be non-negative, got {similar_weight}")
        self.similar_weight = similar_weight
        if max_candidates < 0:
            raise ValueError(f"max_candidates must be 0 (every item) or positive, got {max_candidates}")
        self.max_candidates = max_candidates
        # The last conversation's candidate pool, keyed by (user, opening): one tuple, replaced whole.
        self._pool: tuple[tuple[UserId, Any], CandidatePool] | None = None
        self._similarity: ItemSimilarity | None = None
        self.features = PriorFeatures(dataset, scorer)
        self.trained: Trained | None = None
        if use_prior:
            context = training or TrainingContext()
            settings = {
                "format": PRIOR_FORMAT,
                "features": list(FEATURES),
                "l2": prior_l2,
                "seed": prior_seed,
                "scorer": getattr(scorer, "name", type(scorer).__name__),
                "scorer_fingerprint": getattr(scorer, "data_fingerprint", None),
            }

            def fit() -> dict[str, np.ndarray]:
                return {"weights": self._fit_prior(context, prior_l2, prior_seed)}

            self.trained = load_or_train(context, dataset, "belief_prior", settings, fit)
            self.prior_weights = np.asarray(self.trained.arrays["weights"], dtype=np.float64)
        else:
            self.prior_weights = np.zeros(len(FEATURES))
        self._prior: tuple[UserId, FloatArray] | None = None  # the last user's prior logits
        # The last decision and the state object it was made in (`considered` asks right after
        # `act`): one tuple, and used only for that very state, so other threads cannot mix it up.
        self._last_decision: tuple[DialogueState, Decision] | None = None
        n_attributes = dataset.catalog.index.n_attributes
        self._attribute_names = [a.name for a in dataset.catalog.attributes][:n_attributes]

    # --- learning -------------------------------------------------------------------------------

    def _fit_prior(self, context: TrainingContext, l2: float, seed: int) -> FloatArray:
        pairs = tuning_pairs(self.dataset)
        if len(pairs) == 0:
            return np.zeros(len(FEATURES))
        groups = opening_groups(
            self.features, self.dataset, pairs, seed, progress=lambda f: context.report("prior: features", f)
        )
        if not groups:
            return np.zeros(len(FEATURES))
        return fit_conditional_logit(groups, l2, progress=lambda f: context.report("prior: fitting", f))

    # --- belief ---------------------------------------------------------------------------------

    def prior_logits(self, user_id: UserId) -> FloatArray:
        """log prior(i | user) up to a constant; the user's training items at -inf.

        The fitted prior describes users with a history: for them popular items are *less* likely
        to be what they look for (they know them already). A user without any history (a visitor
        of the chat) is the opposite case, and gets `cold_user_popularity` x log popularity."""
        cached = self._prior  # one tuple, read and replaced whole: see PolicyBase.user_context
        if cached is None or cached[0] != user_id:
            # Not `user_context`: its scores are the scorer's, which the prior's features hold.
            seen = np.asarray(self.dataset.train.items_of(user_id), dtype=np.int64)
            if len(seen) == 0:
                logits = self.cold_user_popularity * np.log1p(self.dataset.popularity)
            else:
                logits = self.prior_weight * self.features.logits(user_id, self.prior_weights)
            logits[seen] = -np.inf
            cached = self._prior = (user_id, logits)
        return cached[1]

    def warm_up(self) -> None:
        """Build now what the first "like X" would otherwise build (a chat calls this at start)."""
        self._item_similarity()

    def _item_similarity(self) -> ItemSimilarity:
        if self._similarity is None:
            from crs.scoring.similarity import ItemSimilarity  # scipy: only when someone names an item

            self._similarity = ItemSimilarity(self.dataset)
        return self._similarity

    def similarity_to(self, item: int) -> FloatArray:
        """How similar every item is to `item`, in [0, 1] (what "like `item`" weighs by)."""
        return self._item_similarity().to(item)

    def similar_evidence(self, liked: Sequence[int], disliked: Sequence[int]) -> FloatArray:
        """Per-item log-odds from items the user named: toward items like the liked ones, away
        from items like the disliked ones (`crs.scoring.similarity`). The named items themselves
        are ruled out: the user knows them."""
        similarity = self._item_similarity()
        evidence = np.zeros(self.dataset.catalog.n_items)
        for item in liked:
            evidence += self.similar_weight * similarity.to(item)
        for item in disliked:
            evidence -= self.similar_weight * similarity.to(item)
        evidence[np.asarray([*liked, *disliked], dtype=np.int64)] = -np.inf
        return evidence

    def candidate_pool(self, state: DialogueState) -> CandidatePool | None:
        """The items this conversation weighs, or None for every item: see "Large catalogs"
        above. Chosen from the prior and the opening only, once per conversation."""
        limit = self.max_candidates
        if not limit or self.dataset.catalog.n_items <= limit or not state.history:
            return None
        key = (state.user.id, state.history[0])
        cached = self._pool  # one tuple, read and replaced whole: see PolicyBase.user_context
        if cached is None or cached[0] != key:
            # After the opening alone every item has the same answers' likelihood, so the most
            # probable items are those of the highest prior plus statements.
            logits, _, _ = self._read(state.user.id, state.history[:1], (), None, None)
            keep = np.argpartition(-logits, limit - 1)[:limit]
            items = np.sort(keep[np.isfinite(logits[keep])])
            cached = self._pool = (key, CandidatePool(items, self.index))
        return cached[1]

    def belief(
        self, state: DialogueState, evidence: FloatArray | None = None
    ) -> tuple[IntArray, FloatArray, float]:
        """The items still worth considering, their probabilities (summing to 1, best first not
        guaranteed) and the posterior mean of the user's error rate."""
        pool = self.candidate_pool(state) if evidence is None else None
        logits, agree, disagree = self._read(
            state.user.id, state.history, state.rejected_items, evidence, pool
        )
        # Mixture over the error rate: log sum_k w_k (1-e_k)^agree e_k^disagree, per item.
        per_rate = (
            self.log_error_weights[:, None]
            + np.log1p(-self.error_rates)[:, None] * agree[None, :]
            + np.log(self.error_rates)[:, None] * disagree[None, :]
        )
        top = per_rate.max(axis=0)
        posterior = logits + top + np.log(np.exp(per_rate - top).sum(axis=0))
        finite = np.isfinite(posterior)
        if not finite.any():
            return np.zeros(0, dtype=np.int64), np.zeros(0), float(self.error_rates[0])
        best = posterior[finite].max()
        kept = np.flatnonzero(finite & (posterior >= best + np.log(NEGLIGIBLE)))
        probabilities = np.exp(posterior[kept] - best)
        probabilities /= probabilities.sum()
        # Posterior over the error rate (summed over items), for the next answer's model.
        joint = logits[kept][None, :] + per_rate[:, kept]
        rate_posterior = np.exp(joint - joint.max()).sum(axis=1)
        error_rate = float(rate_posterior @ self.error_rates / rate_posterior.sum())
        items = kept if pool is None else pool.items[kept]
        return items, probabilities, error_rate

    def _read(
        self,
        user_id: UserId,
        history: Sequence[Exchange],
        rejected_items: Sequence[int],
        evidence: FloatArray | None,
        pool: CandidatePool | None,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """What the conversation says about each item of `pool` (None: of the catalog), in that
        order: log prior plus statements, and how many answers agree and disagree with it."""
        prior = self.prior_logits(user_id)
        if evidence is not None:  # e.g. how well each item matches the user's own words
            prior = prior + evidence
        logits = prior.copy() if pool is None else prior[pool.items]
        masks = self.index if pool is None else pool  # mask_of(attribute): in `logits` order
        n = len(logits)
        agree = np.zeros(n)
        disagree = np.zeros(n)
        log_inform_yes, log_inform_no = np.log1p(-self.inform_error), np.log(self.inform_error)
        said_last = _said_last(history)

        def rule_out(items: Sequence[int]) -> None:
            ruled = np.asarray(items, dtype=np.int64)
            logits[ruled if pool is None else pool.positions(ruled)] = -np.inf

        for turn, exchange in enumerate(history):
            action, reply = exchange.action, exchange.reply
            if isinstance(reply, InformReply):
                for attribute in reply.attributes:
                    if said_last.get(attribute, turn) == turn:
                        logits += np.where(masks.mask_of(attribute), log_inform_yes, log_inform_no)
                for attribute in reply.unwanted:
                    if said_last.get(attribute, turn) == turn:
                        logits += np.where(masks.mask_of(attribute), log_inform_no, log_inform_yes)
                if reply.liked_items or reply.disliked_items:
                    similar = self.similar_evidence(reply.liked_items, reply.disliked_items)
                    logits += similar if pool is None else similar[pool.items]
            elif isinstance(reply, AnswerReply) and isinstance(action, Ask):
                if reply.answer is Answer.DONT_KNOW or said_last.get(action.attribute, turn) > turn:
                    continue
                has = masks.mask_of(action.attribute)
                agrees = has if reply.answer is Answer.YES else ~has
                agree += agrees
                disagree += ~agrees
            if isinstance(action, Recommend) and isinstance(reply, (RejectReply, InformReply)):
                rule_out(action.items)
        if rejected_items:  # also films turned down one by one ("not this one" in the chat)
            rule_out(rejected_items)
        return logits, agree, disagree

    # --- decisions ------------------------------------------------------------------------------

    def expected_turns(
        self,
        ranked: FloatArray,
        turns_left: int,
        mass: float = 1.0,
        step: int = 0,
        gain_weight: float | None = None,
    ) -> float:
        """Expected cost of recommending the most probable items, `list_size` per turn, for at
        most `turns_left` turns: the turns to success (a failure costs turns_left + 1 +
        failure_penalty) minus `gain_weight` (default: the policy's) times the discounted gain of
        the success (hDCG's discount of the turn and rank, the next action being at index `step`).
        With gain_weight 0 it is the expected number of turns.

        `ranked` holds item probabilities in decreasing order (at least the first
        list_size x turns_left of them), `mass` their normalising total."""
        if turns_left <= 0 or mass <= 0:
            return 1.0 + self.failure_penalty
        weight = self.gain_weight if gain_weight is None else gain_weight
        top = ranked[: self.list_size * turns_left] / mass
        turn_weights, gain_weights = self._rollout_weights(step, turns_left)
        found = float(top.sum())
        cost = float(top @ turn_weights[: len(top)])
        cost += max(0.0, 1.0 - found) * (turns_left + 1 + self.failure_penalty)
        if weight:
            cost -= weight * float(top @ gain_weights[: len(top)])
        return cost

    def _rollout_weights(self, step: int, turns_left: int) -> tuple[FloatArray, FloatArray]:
        """Per position j of the ranking: the turn (1-based) it is shown in, and hDCG's gain then."""
        key = (step, turns_left)
        weights = self._weights_cache.get(key)
        if weights is None:
            position = np.arange(self.list_size * turns_left)
            block, rank = position // self.list_size, position % self.list_size + 1
            t = step + block
            head = 1.0 / np.log2(t + 3.0)
            gain = head + (1.0 / np.log2(t + 2.0) - head) / np.log2(rank + 1.0)
            weights = ((block + 1).astype(np.float64), gain)
            self._weights_cache[key] = weights
        return weights

    def decide(self, state: DialogueState, evidence: FloatArray | None = None) -> Decision:
        """The next action and the numbers behind it. `evidence`: per-item log-likelihoods of
        anything the dialogue state cannot hold (the chat passes the text retriever's)."""
        items, probabilities, error_rate = self.belief(state, evidence)
        if len(items) == 0:
            return Decision(GiveUp(), 0, 0.0, float("inf"), None, None, None, error_rate)
        # `items` ascend, so a stable sort sends ties to the lower index: a reproducible list.
        order = np.argsort(-probabilities, kind="stable")
        items, probabilities = items[order], probabilities[order]
        recommendation = Recommend(tuple(int(i) for i in items[: self.list_size]))
        top_mass = float(probabilities[: self.list_size].sum())
        turns_left, step = state.turns_left, state.system_actions_taken
        if_recommending = self.expected_turns(probabilities, turns_left, step=step)

        def decision(
            action: SystemAction,
            asking: float | None = None,
            question: int | None = None,
            yes: float | None = None,
        ) -> Decision:
            return Decision(
                action, len(items), top_mass, if_recommending, asking, question, yes, error_rate, tuple(costs)
            )

        costs: list[tuple[int, float]] = []  # the lookahead's numbers, kept for the decision trace

        if self.is_last_action(state) or len(items) <= self.list_size or not self.may_ask(state):
            return decision(recommendation)
        # The candidates' attributes, gathered once: the shares and the lookahead's memberships.
        flat, owners = self.index.gather_attributes(items)
        share = np.bincount(flat, weights=probabilities[owners], minlength=self.index.n_attributes)
        yes = share * (1.0 - error_rate) + (1.0 - share) * error_rate
        gain = binary_entropy(yes) - float(binary_entropy(np.array([error_rate]))[0])
        asked = list(state.asked_attributes)
        if asked:
            gain[asked] = -1.0
        gain = self.rule_question_scores(gain, floor=-1.0)
        rules = self.question_rules
        weights = rules.weights if rules is not None and rules.weighted else None
        k = min(self.lookahead_questions, len(gain))
        shortlist = np.argpartition(-gain, k - 1)[:k]
        shortlist = shortlist[gain[shortlist] > 1e-9]
        if len(shortlist) == 0:
            return decision(recommendation)
        dont_know = self.dont_know_rate(state)
        best_cost, best_question, best_score = np.inf, -1, -np.inf
        for attribute in shortlist[np.lexsort((shortlist, -gain[shortlist]))]:
            has = np.zeros(len(items), dtype=bool)
            has[owners[flat == attribute]] = True
            cost = self.ask_cost(
                items, probabilities, int(attribute), error_rate, dont_know, turns_left, step, has=has
            )
            costs.append((int(attribute), float(cost)))
            if weights is None:
                better = cost < best_cost - 1e-12
            else:
                # A designer's weight multiplies the turns a question is expected to save (and
                # divides what it would lose), so the ask-or-recommend verdict keeps its sign.
                saving, weight = if_recommending - cost, float(weights[attribute])
                score = saving * weight if saving > 0 else saving / weight
                better = score > best_score + 1e-12
                best_score = max(best_score, score)
            if better:
                best_cost, best_question = cost, int(attribute)
        if best_cost < if_recommending:
            return decision(Ask(best_question), best_cost, best_question, float(yes[best_question]))
        return decision(recommendation, best_cost, best_question, float(yes[best_question]))

    def ask_cost(
        self,
        items: IntArray,
        probabilities: FloatArray,
        attribute: int,
        error_rate: float,
        dont_know: float,
        turns_left: int,
        step: int,
        gain_weight: float | None = None,
        has: BoolArray | None = None,
    ) -> float:
        """Expected cost of asking `attribute` now and then recommending only (see
        `expected_turns`). `probabilities` must be in decreasing order; `has`: which of `items`
        carry `attribute`, when the caller knows it already."""
        if has is None:
            has = self.index.mask_of(attribute)[items]
        # Within each group the order of `probabilities` is kept, so each branch's ranking is a
        # merge of the two groups' heads: no sort of the whole belief per branch.
        with_attribute, without_attribute = probabilities[has], probabilities[~has]
        mass_with, mass_without = float(with_attribute.sum()), float(without_attribute.sum())
        depth = self.list_size * (turns_left - 1)
        heads = (with_attribute[:depth], without_attribute[:depth])
        # A "don't know" leaves the belief as it is, one turn later.
        cost = 1.0 + dont_know * self.expected_turns(
            probabilities, turns_left - 1, 1.0, step + 1, gain_weight
        )
        for agree, disagree in ((1.0 - error_rate, error_rate), (error_rate, 1.0 - error_rate)):
            mass = mass_with * agree + mass_without * disagree
            ranked = np.sort(np.concatenate((heads[0] * agree, heads[1] * disagree)))[::-1]
            branch = self.expected_turns(ranked, turns_left - 1, mass, step + 1, gain_weight)
            cost += (1.0 - dont_know) * mass * branch
        return cost

    def dont_know_rate(self, state: DialogueState) -> float:
        """Expected share of "don't know" answers: the user's own so far, shrunk towards
        `dont_know_prior` as if it had been observed on `dont_know_strength` earlier answers."""
        answers = unknown = 0
        for exchange in state.history:
            if isinstance(exchange.reply, AnswerReply):
                answers += 1
                unknown += exchange.reply.answer is Answer.DONT_KNOW
        strength = self.dont_know_strength
        return (unknown + strength * self.dont_know_prior) / (answers + strength)

    def act(
        self, state: DialogueState, rng: np.random.Generator, evidence: FloatArray | None = None
    ) -> SystemAction:
        decision = self.decide(state, evidence)
        if evidence is None:
            self._last_decision = (state, decision)  # for `considered`, asked right after
        return decision.action

    def considered(self, state: DialogueState, action: SystemAction) -> tuple[Candidate, ...]:
        """The rollout values `act` compared in `state` (the decision trace): taken from the
        decision just made when it was made in this very state, else decided again."""
        last = self._last_decision
        decision = last[1] if last is not None and last[0] is state else self.decide(state)
        return decision.trace()

    def explain(self, state: DialogueState, evidence: FloatArray | None = None) -> str:
        """Why the policy does what it does in this state, in a sentence or two."""
        d = self.decide(state, evidence)
        # Plain words for a person: "my 10 best guesses" and "how sure", not "belief mass".
        considered = f"{d.candidates:,} {'item' if d.candidates == 1 else 'items'} I still consider"
        guesses = "my best guess" if self.list_size == 1 else f"my {self.list_size} best guesses"
        mass = f"{guesses} {'is' if self.list_size == 1 else 'are'} {d.top_mass:.0%} likely to hold yours"
        if isinstance(d.action, GiveUp):
            return "Giving up: no item fits the answers."
        if d.question is None or d.question_yes is None:
            return f"Recommending: {mass} (of the {considered})."
        # In turns alone (no gain for early success), which a person can check more easily.
        items, probabilities, error_rate = self.belief(state, evidence)
        order = np.argsort(-probabilities, kind="stable")
        turns_left, step = state.turns_left, state.system_actions_taken
        recommending = self.expected_turns(probabilities[order], turns_left, step=step, gain_weight=0.0)
        asking = self.ask_cost(
            items[order],
            probabilities[order],
            d.question,
            error_rate,
            self.dont_know_rate(state),
            turns_left,
            step,
            gain_weight=0.0,
        )
        name = self._attribute_names[d.question]
        turns = f"about {asking:.1f} turns to your item if I ask first, {recommending:.1f} if I recommend now"
        if isinstance(d.action, Ask):
            return (
                f"Asking about {name!r}: {d.question_yes:.0%} of the {considered} have it, so either "
                f"answer rules many out; {mass}; {turns}."
            )
        if asking < recommending:
            return (
                f"Recommending: {mass}, and finding it now is worth more than the turn my best question "
                f"(about {name!r}) could save ({turns})."
            )
        return f"Recommending: {mass}; my best question, about {name!r}, is not worth a turn ({turns})."

    def describe(self) -> dict[str, Any]:
        return {name: float(w) for name, w in zip(FEATURES, self.prior_weights, strict=True)}
