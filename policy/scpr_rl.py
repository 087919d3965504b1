"""SCPR with a learned ask/recommend switch (Lei et al., KDD 2020), trained by REINFORCE.

The conversation path reasoning is the `scpr_walk` policy's: candidates are filtered on "yes"
answers only, denied attributes lower item scores, and the question is the reachable attribute
of highest weighted entropy. What SCPR learns, and `scpr_walk` replaces by a threshold rule, is
*when* to stop asking: each turn a policy network chooses between two actions, ask the walk's
best attribute or recommend the top `list_size` candidates. Restricting the network to that
binary choice (not one action per attribute) is SCPR's point: the walk prunes the question space
so the learning problem stays small enough to solve with a few thousand simulated conversations.

State (`FEATURE_NAMES`), in the spirit of SCPR's entropy / candidate-length / history vector:
the turn (one-hot and as a fraction), the candidate count (log and SCPR-style length bins), how
much of the candidates' softmax weight the next list and the one after it hold, the weight
distribution's entropy, the best and top-5 question entropies, how many attributes are still
reachable, how many attributes were accepted, denied or unknown, how many lists failed, and the
last reply. Everything is scale-free, so one architecture serves LastFM, LastFM* and MovieLens.

Learning. Reward -1 per system action and, on failure, the turns left up to the protocol's 15:
the return of a conversation is then minus its contribution to AT, the protocol's own cost.
The policy is a one-hidden-layer MLP in numpy (a few microseconds per decision, no torch import)
giving P(recommend); a second MLP of the same shape estimates the return as a baseline.
REINFORCE with that baseline, advantages standardised per batch and an entropy bonus, suits a
two-action problem with a 14-step horizon and needs neither replay memory nor target networks.
Each batch serves `epochs` gradient steps under PPO's clipped probability ratio (the first step
is plain REINFORCE): on held-out tuning pairs, 4 steps learn in 600 episodes what one step needs
thousands for, and vary less from seed to seed. Episodes play the rule-based simulator on
`tuning_pairs` (valid pairs that are never the 4,000 evaluation pairs); the test split is never
read. Training data and every random choice come from `seed`, so the same settings give the
same network, which `load_or_train` caches.

Decisions are greedy (recommend when P >= 0.5) and so deterministic. Where the walk leaves no
choice (few candidates, nothing worth asking, last turn) the network is not consulted. A dataset
without tuning pairs gives no decision to learn from; the policy then uses `scpr_walk`'s mass rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from crs.env import ConversationEnv
from crs.index import FloatArray
from crs.protocol import tuning_pairs
from crs.types import Ask, DialogueState, GiveUp, Recommend, SystemAction
from policy.learning import Trained, TrainingContext, load_or_train
from policy.scpr_walk import ScprWalkPolicy
from simulators.rule_based import SimulatorOptions
from simulators.wrappers import simulated_user

if TYPE_CHECKING:
    from crs.data import Dataset
    from crs.scoring import Scorer

FORMAT_VERSION = 1
TRAIN_MAX_TURNS = 15  # the protocol's conversation length, the user's opening included
TURN_SLOTS = 14  # one-hot turn positions; later turns share the last slot
# Upper edges of SCPR-style candidate-count bins; counts up to `list_size` never reach the network.
LENGTH_BINS = (20, 50, 100, 200, 500, 1000, 2000)
TOP_QUESTIONS = 5
PPO_CLIP = 0.2  # how far one batch may move a decision's probability, as a ratio
Params = dict[str, FloatArray]

FEATURE_NAMES: tuple[str, ...] = (
    *(f"turn={t}" for t in range(TURN_SLOTS)),
    "turns_left_fraction",
    "log_candidates",
    *(f"candidates<={edge}" for edge in LENGTH_BINS),
    f"candidates>{LENGTH_BINS[-1]}",
    "list_mass",
    "second_list_mass",
    "top_weight",
    "weight_entropy",
    "best_question_entropy",
    "top_question_entropy",
    "log_reachable",
    "accepted",
    "denied",
    "unknown",
    "failed_lists",
    "last=opening",
    "last=yes",
    "last=no",
    "last=dont_know",
    "last=rejected_list",
)
N_FEATURES = len(FEATURE_NAMES)


@dataclass(frozen=True)
class WalkTurn:
    """One turn of the walk: the list it would show, the question it would ask, the network's input.

    `question` and `features` are None when there is nothing to decide (recommend is the only
    sensible action); `recommendation` is None when no candidate is left (give up).
    """

    recommendation: Recommend | None
    question: Ask | None = None
    features: FloatArray | None = None


# --- the networks: one hidden tanh layer, numpy ------------------------------------------------


def _init_mlp(rng: np.random.Generator, prefix: str, inputs: int, hidden: int, output_bias: float) -> Params:
    return {
        f"{prefix}_w1": rng.normal(0.0, 1.0 / math.sqrt(inputs), (inputs, hidden)),
        f"{prefix}_b1": np.zeros(hidden),
        # A small output layer starts every state at the same prior, so early batches explore evenly.
        f"{prefix}_w2": rng.normal(0.0, 0.1 / math.sqrt(hidden), hidden),
        f"{prefix}_b2": np.array([output_bias]),
    }


def _forward(params: Mapping[str, FloatArray], prefix: str, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(outputs, hidden activations) for a batch of feature rows."""
    hidden = np.tanh(x @ params[f"{prefix}_w1"] + params[f"{prefix}_b1"])
    return hidden @ params[f"{prefix}_w2"] + params[f"{prefix}_b2"][0], hidden


def _backward(
    params: Mapping[str, FloatArray], prefix: str, x: FloatArray, hidden: FloatArray, d_out: FloatArray
) -> Params:
    """Gradients of sum(d_out * outputs) with respect to the MLP's parameters."""
    d_hidden = np.outer(d_out, params[f"{prefix}_w2"]) * (1.0 - hidden**2)
    return {
        f"{prefix}_w1": x.T @ d_hidden,
        f"{prefix}_b1": d_hidden.sum(axis=0),
        f"{prefix}_w2": hidden.T @ d_out,
        f"{prefix}_b2": np.array([d_out.sum()]),
    }


class _Adam:
    """Adam ascent on a dict of arrays (in place)."""

    def __init__(self, params: Params, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.m = {name: np.zeros_like(value) for name, value in params.items()}
        self.v = {name: np.zeros_like(value) for name, value in params.items()}
        self.steps = 0

    def ascend(self, params: Params, grads: Params) -> None:
        self.steps += 1
        correction = math.sqrt(1.0 - 0.999**self.steps) / (1.0 - 0.9**self.steps)
        for name, grad in grads.items():
            self.m[name] = 0.9 * self.m[name] + 0.1 * grad
            self.v[name] = 0.999 * self.v[name] + 0.001 * grad**2
            params[name] += self.learning_rate * correction * self.m[name] / (np.sqrt(self.v[name]) + 1e-8)


def _sigmoid(x: FloatArray) -> FloatArray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # tanh form: no overflow warning for large |x|


# --- the policy -------------------------------------------------------------------------------


class ScprRlPolicy(ScprWalkPolicy):
    name = "scpr_rl"
    learns: ClassVar[bool] = True

    def __init__(
        self,
        dataset: Dataset,
        scorer: Scorer,
        list_size: int = 10,
        temperature: float = 1.0,
        rejected_penalty: float = 1.0,
        through_friends: bool = False,
        recommend_mass: float = 0.9,
        hidden: int = 32,
        episodes: int = 4000,
        batch_episodes: int = 50,
        learning_rate: float = 0.01,
        epochs: int = 4,
        entropy_bonus: float = 0.01,
        initial_recommend: float = 0.2,
        train_answer_noise: float = 0.0,
        train_dont_know: float = 0.0,
        seed: int = 0,
        training: TrainingContext | None = None,
        questions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            dataset,
            scorer,
            list_size,
            temperature,
            recommend_mass,
            rejected_penalty,
            through_friends,
            questions=questions,
        )
        if hidden < 1 or episodes < 0 or batch_episodes < 1 or epochs < 1:
            raise ValueError(
                f"need hidden, batch_episodes and epochs >= 1 and episodes >= 0, got {hidden}, "
                f"{batch_episodes}, {epochs}, {episodes}"
            )
        if not 0.0 < initial_recommend < 1.0:
            raise ValueError(f"initial_recommend must be in (0, 1), got {initial_recommend}")
        self.hidden = hidden
        self.episodes = episodes
        self.batch_episodes = batch_episodes
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.entropy_bonus = entropy_bonus
        self.initial_recommend = initial_recommend
        # Validated here, by SimulatorOptions, rather than after the cache lookup.
        self.train_options = SimulatorOptions(
            answer_noise=train_answer_noise, dont_know=train_dont_know, list_size=list_size
        )
        self.seed = seed
        self._log_items = math.log1p(self.index.n_items)
        self._log_attributes = math.log1p(self.index.n_attributes)
        self.params: Params = {}
        settings: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "features": list(FEATURE_NAMES),
            "list_size": list_size,
            "temperature": temperature,
            "rejected_penalty": rejected_penalty,
            "through_friends": through_friends,
            "recommend_mass": recommend_mass,
            "hidden": hidden,
            "episodes": episodes,
            "batch_episodes": batch_episodes,
            "learning_rate": learning_rate,
            "epochs": epochs,
            "ppo_clip": PPO_CLIP,
            "entropy_bonus": entropy_bonus,
            "initial_recommend": initial_recommend,
            "train_answer_noise": train_answer_noise,
            "train_dont_know": train_dont_know,
            "train_max_turns": TRAIN_MAX_TURNS,
            "seed": seed,
            "scorer": getattr(scorer, "name", type(scorer).__name__),
            "scorer_fingerprint": getattr(scorer, "data_fingerprint", None),
        }
        if self.question_rules is not None:  # the walk asks differently: another network to learn
            settings["questions"] = self.question_rules.fingerprint()
            settings["max_questions"] = self.question_rules.max_questions
        context = training or TrainingContext()
        self.trained: Trained = load_or_train(
            context, dataset, "scpr_rl", settings, lambda: self._train(context.report)
        )
        self.params = {
            name: np.asarray(value, dtype=np.float64) for name, value in self.trained.arrays.items()
        }
        self.learned_decisions = int(self.params.pop("decisions")[0])

    # --- one turn -----------------------------------------------------------------------------

    def walk(self, state: DialogueState) -> WalkTurn:
        """`scpr_walk`'s turn without its threshold rule, plus the state features at a choice."""
        step = self.walk_step(state)
        if step.question is None or step.weights is None or step.entropy is None:
            return WalkTurn(step.recommendation)
        return WalkTurn(step.recommendation, step.question, self.features(state, step.weights, step.entropy))

    def features(self, state: DialogueState, weights: FloatArray, entropy: FloatArray) -> FloatArray:
        """The network's input (`FEATURE_NAMES`) for a turn with a choice to make."""
        x = np.zeros(N_FEATURES)
        t = state.system_actions_taken
        x[min(t, TURN_SLOTS - 1)] = 1.0
        at = TURN_SLOTS
        x[at] = state.turns_left / state.max_turns
        n = len(weights)
        x[at + 1] = math.log1p(n) / self._log_items
        x[at + 2 + int(np.searchsorted(LENGTH_BINS, n))] = 1.0
        at += 3 + len(LENGTH_BINS)
        k = self.list_size
        # Partition, not sort: only the top two lists' weights matter and candidates run to thousands.
        head = -np.partition(-weights, min(2 * k, n) - 1)[: min(2 * k, n)]
        head[::-1].sort()
        x[at] = head[:k].sum()
        x[at + 1] = head[k:].sum()
        x[at + 2] = head[0]
        x[at + 3] = float(-(weights * np.log(weights + 1e-300)).sum()) / math.log(n)
        top = min(TOP_QUESTIONS, len(entropy))
        x[at + 4] = entropy.max()
        x[at + 5] = np.partition(entropy, len(entropy) - top)[-top:].mean()
        x[at + 6] = math.log1p(len(entropy)) / self._log_attributes
        # Tens of attributes or lists would be an unusually long conversation: /10 keeps these near [0, 1].
        x[at + 7] = len(state.accepted_attributes) / 10.0
        x[at + 8] = len(state.rejected_attributes) / 10.0
        x[at + 9] = len(state.unknown_attributes) / 10.0
        x[at + 10] = len(state.rejected_items) / (10.0 * self.list_size)
        at += 11
        last = state.history[-1] if state.history else None
        if last is None or last.action is None:
            x[at] = 1.0
        elif isinstance(last.action, Ask):
            if last.action.attribute in state.accepted_attributes:
                x[at + 1] = 1.0
            elif last.action.attribute in state.rejected_attributes:
                x[at + 2] = 1.0
            else:
                x[at + 3] = 1.0
        else:
            x[at + 4] = 1.0
        return x

    def recommend_probability(self, features: FloatArray) -> float:
        logit, _ = _forward(self.params, "policy", features[None, :])
        return float(_sigmoid(logit)[0])

    def wants_recommendation(self, turn: WalkTurn) -> bool:
        """The learned switch (the walk's mass rule where nothing was learned)."""
        assert turn.features is not None
        if self.learned_decisions == 0:
            return bool(turn.features[FEATURE_NAMES.index("list_mass")] >= self.recommend_mass)
        return self.recommend_probability(turn.features) >= 0.5

    def act(self, state: DialogueState, rng: np.random.Generator) -> SystemAction:
        turn = self.walk(state)
        if turn.recommendation is None:
            return GiveUp()
        if turn.question is None or self.wants_recommendation(turn):
            return turn.recommendation
        return turn.question

    # --- training -----------------------------------------------------------------------------

    def _train(self, report: Callable[[str, float], None]) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        params = {
            **_init_mlp(
                rng,
                "policy",
                N_FEATURES,
                self.hidden,
                math.log(self.initial_recommend / (1.0 - self.initial_recommend)),
            ),
            **_init_mlp(rng, "value", N_FEATURES, self.hidden, -0.5),
        }
        self.params = params
        policy_opt = _Adam({k: v for k, v in params.items() if k.startswith("policy")}, self.learning_rate)
        value_opt = _Adam({k: v for k, v in params.items() if k.startswith("value")}, self.learning_rate)
        pairs = self._training_targets()
        decisions = 0
        stage = f"training scpr_rl on {self.dataset.name}"
        report(stage, 0.0)
        episodes = self.episodes if len(pairs) else 0
        done = 0
        while done < episodes:
            size = min(self.batch_episodes, episodes - done)
            xs: list[FloatArray] = []
            actions: list[float] = []
            returns: list[float] = []
            for episode in range(done, done + size):
                user_id, target = pairs[int(rng.integers(len(pairs)))]
                self._play(episode, user_id, int(target), rng, xs, actions, returns)
            done += size
            if xs:
                decisions += len(xs)
                self._update(
                    params, policy_opt, value_opt, np.array(xs), np.array(actions), np.array(returns)
                )
            report(stage, done / episodes)
        report(stage, 1.0)
        return {**params, "decisions": np.array([float(decisions)])}

    def _training_targets(self) -> list[tuple[Any, int]]:
        pairs = tuning_pairs(self.dataset)
        catalog = self.dataset.catalog
        # A target without attributes cannot be talked about (the simulator refuses it).
        return [
            (user.item() if isinstance(user, np.generic) else user, int(item))
            for user, item in pairs
            if catalog.items[int(item)].attributes
        ]

    def _play(
        self,
        episode: int,
        user_id: Any,
        target: int,
        rng: np.random.Generator,
        xs: list[FloatArray],
        actions: list[float],
        returns: list[float],
    ) -> None:
        """One conversation with the stochastic policy; appends its decisions and their returns."""
        user = simulated_user(self.dataset.catalog, target, self.train_options)
        env = ConversationEnv(self.dataset.user(user_id), user, TRAIN_MAX_TURNS)
        state, _ = env.reset(np.random.SeedSequence([self.seed, episode]))
        rewards: list[float] = []  # the environment's reward of each system action, in order
        decided_at: list[int] = []  # how many system actions came before each decision
        while not state.finished:
            turn = self.walk(state)
            # Nothing left to recommend: giving up ends the episode as a failure.
            action: SystemAction = turn.recommendation or GiveUp()
            if turn.question is not None and turn.features is not None:
                recommend = rng.random() < self.recommend_probability(turn.features)
                xs.append(turn.features)
                actions.append(float(recommend))
                decided_at.append(len(rewards))
                if not recommend:
                    action = turn.question
            state, reward, *_ = env.step(action)
            rewards.append(reward)
        # The return from a decision is the sum of the rewards from it on: minus the actions left
        # and, on failure, the rest of the protocol's turns (the environment's reward), scaled to
        # about [-1, 0] by the turn limit.
        to_go = np.cumsum(rewards[::-1])[::-1]
        returns.extend(float(to_go[t]) / TRAIN_MAX_TURNS for t in decided_at)

    def _update(
        self,
        params: Params,
        policy_opt: _Adam,
        value_opt: _Adam,
        x: FloatArray,
        actions: FloatArray,
        returns: FloatArray,
    ) -> None:
        n = len(x)
        baseline, _ = _forward(params, "value", x)
        advantage = returns - baseline
        spread = advantage.std()
        # Standardised advantages keep the step size independent of the dataset's typical return.
        scaled = (advantage - advantage.mean()) / spread if spread > 1e-8 else advantage
        old_logits, _ = _forward(params, "policy", x)
        old_p = _sigmoid(old_logits)
        old_taken = np.where(actions > 0.5, old_p, 1.0 - old_p)
        for _ in range(self.epochs):
            logits, policy_hidden = _forward(params, "policy", x)
            p = _sigmoid(logits)
            ratio = np.where(actions > 0.5, p, 1.0 - p) / old_taken
            # PPO's clipped surrogate: no gradient once the ratio has moved past the clip in the
            # advantage's direction. The first epoch has ratio 1: plain REINFORCE with baseline.
            active = ~(((scaled > 0) & (ratio > 1.0 + PPO_CLIP)) | ((scaled < 0) & (ratio < 1.0 - PPO_CLIP)))
            # d/dlogit of pi(a)/pi_old(a): ratio * (a - p); of the Bernoulli entropy: -logit * p * (1 - p).
            d_logits = (
                active * scaled * ratio * (actions - p) - self.entropy_bonus * logits * p * (1.0 - p)
            ) / n
            policy_opt.ascend(params, _backward(params, "policy", x, policy_hidden, d_logits))
            values, value_hidden = _forward(params, "value", x)
            value_opt.ascend(params, _backward(params, "value", x, value_hidden, (returns - values) / n))
