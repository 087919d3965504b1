"""The personal prior of the belief policy: how likely each item is to be what this user wants,
before the conversation says anything.

Which signals predict a held-out item differs from what predicts a training item: on the LastFM
benchmark 38 % of valid targets are artists with no training interaction at all, and the most
popular training artists are almost never valid targets. So rather than trusting one
collaborative model, the prior is a log-linear model over a handful of signals, fitted by maximum
likelihood on conversations with *tuning* targets (valid pairs outside the evaluation set; see
`policy.learning`):

    log prior(i | u) = w · features(u, i) + const

Signals, all from the train split, the user's friends and the catalog (never the user's "like"
list, which the protocol does not allow, nor the test split):
- the collaborative scorer's score, standardised per user (BPR by default);
- log popularity, and whether the item has no training interaction at all ("cold");
- tag-profile similarity: cosine between the TF-IDF attribute vector of the item and the sum of
  those of the user's training items (works for cold items, which have attributes);
- user-kNN: items of users whose training items overlap the user's, weighted by cosine overlap;
- friends: how many of the user's friends have the item in training;
- log number of attributes: the simulated user opens with one attribute drawn from the target's,
  so an item with many attributes explains any one opening less well.

The model is fitted conditionally on the opening, as it is used: a softmax over the items that
carry the opening attribute, the target's likelihood maximised by Newton's method.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from crs.index import FloatArray, IntArray, csr, row_positions
from crs.types import UserId

if TYPE_CHECKING:
    from crs.data import Dataset
    from crs.scoring import Scorer

FEATURES = (
    "score",
    "log_popularity",
    "cold",
    "tag_profile",
    "user_knn",
    "friends",
    "any_friend",
    "cold_x_score",
    "cold_x_tag_profile",
    "log_attributes",
)
# Each fitted conversation keeps its candidate set in memory; above this many rows in total the
# fitting set is subsampled (evenly over the tuning pairs) to bound memory and time.
MAX_FIT_ROWS = 3_000_000


class PriorFeatures:
    """Computes the feature matrix (items x FEATURES) of one user in about a millisecond."""

    def __init__(self, dataset: Dataset, scorer: Scorer) -> None:
        catalog, index = dataset.catalog, dataset.catalog.index
        self.n_items = catalog.n_items
        self.dataset = dataset
        self.scorer = scorer
        train = dataset.train.by_user
        self.user_ids: list[UserId] = list(train)
        self.row_of = {user_id: row for row, user_id in enumerate(self.user_ids)}
        self.user_pointers, self.user_items = csr([train[u] for u in self.user_ids])
        # The transpose: each item's users, in ascending row order (a stable sort by item).
        entry_rows = np.repeat(np.arange(len(self.user_ids), dtype=np.int64), np.diff(self.user_pointers))
        self.item_users = entry_rows[np.argsort(self.user_items, kind="stable")]
        self.item_pointers = np.zeros(self.n_items + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.user_items, minlength=self.n_items), out=self.item_pointers[1:])
        popularity = np.diff(self.item_pointers).astype(np.float64)
        self.user_sizes = np.diff(self.user_pointers).astype(np.float64)
        # TF-IDF weight of each (item, attribute) entry of the index, rows normalised to length 1.
        lengths = np.diff(index.item_pointers)
        self.index_pointers = index.item_pointers
        self.entry_item = np.repeat(np.arange(self.n_items), lengths)
        self.entry_attribute = index.item_attributes
        frequency = index.item_frequency().astype(np.float64)
        idf = np.log((self.n_items + 1.0) / (frequency + 1.0)) + 1.0
        weights = idf[self.entry_attribute]
        norms = np.sqrt(np.bincount(self.entry_item, weights=weights**2, minlength=self.n_items))
        self.entry_weight = weights / np.maximum(norms, 1e-12)[self.entry_item]
        self.n_attributes = index.n_attributes
        # The same entries as a sparse items x attributes matrix: a user's tag similarity to every
        # item is one sparse product, each item's terms summed in its own (ascending attribute)
        # order, as a bincount over the entries would, bit for bit, at a fraction of the cost.
        from scipy.sparse import csr_matrix

        self.tfidf = csr_matrix(
            (self.entry_weight, self.entry_attribute, self.index_pointers),
            shape=(self.n_items, self.n_attributes),
        )
        # The user-independent columns, computed once.
        self.log_popularity = np.log1p(popularity)
        self.cold = (popularity == 0).astype(np.float64)
        self.log_attributes = np.log(np.maximum(lengths, 1).astype(np.float64))

    def _items_of_rows(self, rows: IntArray, weights: FloatArray) -> FloatArray:
        """Sum over users `rows` of `weights` times their training-item indicator vectors."""
        counts = self.user_pointers[rows + 1] - self.user_pointers[rows]
        entries = row_positions(self.user_pointers, rows)
        summed = np.bincount(
            self.user_items[entries], weights=np.repeat(weights, counts), minlength=self.n_items
        )
        return np.asarray(summed, dtype=np.float64)

    def matrix(self, user_id: UserId, items: IntArray | None = None) -> FloatArray:
        """The user's features (rows: `items`, default every item; columns: FEATURES)."""
        columns = self.columns(user_id)
        if items is not None:
            columns = tuple(column[items] for column in columns)
        return np.stack(columns, axis=1)

    def logits(self, user_id: UserId, weights: FloatArray) -> FloatArray:
        """`matrix(user_id) @ weights`, a column at a time: no items x FEATURES matrix is built."""
        columns = self.columns(user_id)
        logits = columns[0] * weights[0]
        for column, weight in zip(columns[1:], weights[1:], strict=True):
            logits += column * weight
        return logits

    def columns(self, user_id: UserId) -> tuple[FloatArray, ...]:
        """The columns of `matrix`, one array over every item each."""
        items = np.asarray(self.dataset.train.items_of(user_id), dtype=np.int64)
        score = np.asarray(self.scorer.scores(user_id), dtype=np.float64)
        spread = score.std()
        score = (score - score.mean()) / spread if spread > 0 else np.zeros(self.n_items)

        tag = np.zeros(self.n_items)
        knn = np.zeros(self.n_items)
        if len(items):
            entries = row_positions(self.index_pointers, items)
            profile = np.bincount(
                self.entry_attribute[entries], weights=self.entry_weight[entries], minlength=self.n_attributes
            )
            norm = np.linalg.norm(profile)
            if norm > 0:
                tag = np.asarray(self.tfidf @ (profile / norm), dtype=np.float64)
            co_users = self.item_users[row_positions(self.item_pointers, items)]
            overlap = np.bincount(co_users, minlength=len(self.user_ids)).astype(np.float64)
            own_row = self.row_of.get(user_id)
            if own_row is not None:
                overlap[own_row] = 0.0
            neighbours = np.flatnonzero(overlap)
            if len(neighbours):
                similarity = overlap[neighbours] / np.sqrt(len(items) * self.user_sizes[neighbours])
                knn = self._items_of_rows(neighbours, similarity)

        friend_rows = np.array(
            [self.row_of[f] for f in self.dataset.user(user_id).friends if f in self.row_of], dtype=np.int64
        )
        friends = self._items_of_rows(friend_rows, np.ones(len(friend_rows))) if len(friend_rows) else None
        friends = friends if friends is not None else np.zeros(self.n_items)

        return (
            score,
            self.log_popularity,
            self.cold,
            tag,
            np.log1p(10.0 * knn),
            np.log1p(friends),
            (friends > 0).astype(np.float64),
            self.cold * score,
            self.cold * tag,
            self.log_attributes,
        )


def fit_conditional_logit(
    groups: Sequence[tuple[FloatArray, int]],
    l2: float = 1e-3,
    iterations: int = 25,
    progress: Callable[[float], None] | None = None,
) -> FloatArray:
    """Weights maximising sum over groups of log softmax(F w)[target] - l2/2 |w|^2 (Newton's method).

    The objective is concave, so Newton with a backtracking step converges in a few iterations.
    """
    d = groups[0][0].shape[1]
    weights = np.zeros(d)

    def objective(w: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        value = -0.5 * l2 * len(groups) * float(w @ w)
        gradient, hessian = -l2 * len(groups) * w, np.zeros((d, d))
        for features, target in groups:
            z = features @ w
            z -= z.max()
            p = np.exp(z)
            p /= p.sum()
            mean = p @ features
            value += float(z[target] - np.log(np.exp(z).sum()))
            gradient += features[target] - mean
            hessian += (features * p[:, None]).T @ features - np.outer(mean, mean)
        hessian += l2 * len(groups) * np.eye(d)
        return value, gradient, hessian

    value, gradient, hessian = objective(weights)
    for iteration in range(iterations):
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-4:
            candidate = weights + scale * step
            new_value, new_gradient, new_hessian = objective(candidate)
            if new_value >= value - 1e-9:
                break
            scale /= 2.0
        improvement = new_value - value
        weights, value, gradient, hessian = candidate, new_value, new_gradient, new_hessian
        if progress is not None:
            progress((iteration + 1) / iterations)
        if improvement < 1e-6 * len(groups):
            break
    return weights


def opening_groups(
    features: PriorFeatures,
    dataset: Dataset,
    pairs: np.ndarray,
    seed: int = 0,
    max_rows: int = MAX_FIT_ROWS,
    progress: Callable[[float], None] | None = None,
) -> list[tuple[FloatArray, int]]:
    """One fitting group per tuning pair: the items that carry a random opening attribute of the
    target (as the simulated user volunteers), minus the user's training items. Pairs are taken
    in a seeded random order until `max_rows` candidate rows are gathered."""
    index = dataset.catalog.index
    rng = np.random.default_rng(seed)
    groups: list[tuple[FloatArray, int]] = []
    rows = 0
    order = rng.permutation(len(pairs))
    for done, row in enumerate(order):
        user_id, target = pairs[row]
        user_id = user_id.item() if isinstance(user_id, np.generic) else user_id
        attributes = index.attributes_of(int(target))
        if len(attributes) == 0:
            continue
        opening = int(attributes[rng.integers(len(attributes))])
        seen = np.asarray(dataset.train.items_of(user_id), dtype=np.int64)
        candidates = index.filter(required=(opening,), excluded_items=seen)
        position = int(np.searchsorted(candidates, target))
        if position >= len(candidates) or candidates[position] != target or len(candidates) < 2:
            continue  # a target among the user's training items cannot be predicted
        groups.append((features.matrix(user_id, candidates), position))
        rows += len(candidates)
        if progress is not None:
            progress(min(1.0, max((done + 1) / len(order), rows / max_rows)))
        if rows >= max_rows:
            break
    return groups
