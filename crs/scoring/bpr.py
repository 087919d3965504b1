"""BPR matrix factorisation (Rendle et al., 2009) in numpy, trained on the train split only.

Each mini-batch takes training pairs (user, liked item), draws one item uniformly at random per
pair as the negative, and takes an SGD step on `-log sigmoid(score(u, i) - score(u, j))` plus L2.
A score is `user vector · item vector + item bias`.

Two optional kinds of side information change what the vectors are; both are used in training
and in scoring alike, so the model is trained exactly as it is scored:

* `use_attributes` (default): an item's vector is its own factor plus the sum of its attributes'
  factors divided by sqrt(number of attributes), as in LightFM. On the LastFM benchmark 38 % of the
  valid interactions are with artists that no training interaction touches: plain BPR can only
  push those down as negatives, while their tags are known and shared with artists that were liked.
  On lastfm_star valid this doubles Recall@10.
* `use_friends`: a user's vector is their own factor plus `friend_weight` times the mean of their
  friends' own factors (the benchmark allows using friends). Off by default: on valid it changed
  nothing beyond seed noise, and it costs about half as much training time again.

Gradients of rows repeated within a batch are summed, so one batch step is close to the same
number of sequential per-example SGD steps; the learning rate is per example, not per batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crs.artifacts import ArtifactError, load_arrays, save_arrays
from crs.index import FloatArray, IntArray
from crs.progress import Progress, report
from crs.settings import Checked, setting
from crs.types import UserId

if TYPE_CHECKING:
    from crs.data import Dataset

# Bump when the file layout or the meaning of a setting changes: older files are then retrained.
FORMAT_VERSION = 2


# Standard deviation of the initial factors: small, so that early scores are near zero and the
# first updates are decided by the data rather than the draw.
INIT_SCALE = 0.1


COMPOSE_BLOCK = 65_536  # rows composed at a time when every item's (or user's) vector is built


class ModelFileError(ArtifactError):
    """A saved model that cannot be used: unreadable, of another format, or trained on other data."""


@dataclass(frozen=True)
class BprConfig(Checked):
    """Training settings.

    The defaults were tuned a little on the valid split of lastfm_star (learning rate, epochs, L2,
    dimension, batch size, friends): Recall@10 varies by about ±0.003 between seeds there, so only
    changes beyond that were taken. A learning rate of 0.2 or more is unstable at this batch size.
    """

    # Checked by crs.settings' one validator, which also stores whole numbers given for a float as
    # floats, so `reg = 0` and `reg = 0.0` give the same fingerprint and so the same cached model.
    dim: int = setting(32, minimum=1)
    epochs: int = setting(30, minimum=1)
    learning_rate: float = setting(0.1, minimum=1e-12)
    reg: float = setting(1e-5, minimum=0.0)
    batch_size: int = setting(4096, minimum=1)
    seed: int = setting(0, minimum=0)
    use_friends: bool = setting(False)
    friend_weight: float = setting(0.25, minimum=0.0)
    use_attributes: bool = setting(True)
    # Largest change of one factor row in one step. An attribute shared by thousands of items in a
    # batch (a MovieLens genre) otherwise sums thousands of gradients into one step and diverges
    # (factors of 1e150). 3 is the smallest value that leaves LastFM training bit for bit as before.
    max_step_norm: float = setting(3.0, minimum=1e-12)
    # Most (user, item) updates in all training: a large dataset makes many updates per epoch, so
    # it needs fewer epochs; this caps their number (at least one). 0 = `epochs` whatever the size.
    # Every bundled dataset stays below it (LastFM*: 30 epochs of 52,910 pairs, 1.6 million).
    max_updates: int = setting(3_000_000, minimum=0)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> BprConfig:
        """A config from stored or user-given values; unknown names are an error, not ignored."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown BPR setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        return cls(**values)


# --- side information as sparse rows ----------------------------------------------------------


def _row_sums(rows: IntArray, values: FloatArray, n_rows: int) -> FloatArray:
    """`out[r] = sum of values[k] where rows[k] == r`, for a (n_rows, d) result.

    One flat bincount: several times faster than np.add.at on 2-D rows, which dominated training.
    """
    dim = values.shape[1]
    flat = (rows[:, None] * dim + np.arange(dim)).ravel()
    sums = np.bincount(flat, weights=values.ravel(), minlength=n_rows * dim)
    return np.asarray(sums, dtype=np.float64).reshape(n_rows, dim)


@dataclass(frozen=True)
class _Side:
    """A CSR relation from rows of one table to rows of another: row r's vector is its own factor
    plus `weight[r]` times the sum of its members' factors."""

    pointers: IntArray
    members: IntArray
    weight: FloatArray

    @classmethod
    def build(cls, rows: Sequence[Sequence[int]], weight: FloatArray) -> _Side:
        lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
        pointers = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=pointers[1:])
        members = np.fromiter((m for row in rows for m in row), dtype=np.int64, count=int(pointers[-1]))
        return cls(pointers, members, weight)

    def gather(self, rows: IntArray) -> tuple[IntArray, IntArray]:
        """Members of `rows`, flattened, and for each the position of its row in `rows`."""
        starts = self.pointers[rows]
        lengths = self.pointers[rows + 1] - starts
        owners = np.repeat(np.arange(len(rows)), lengths)
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return self.members[np.repeat(starts, lengths) + offsets], owners

    def compose(self, own: FloatArray, table: FloatArray, rows: IntArray) -> FloatArray:
        """The vectors of `rows`: their own factors (`own`, already gathered) plus the weighted
        sum of their members' rows of `table`."""
        members, owners = self.gather(rows)
        return own + self.weight[rows][:, None] * _row_sums(owners, table[members], len(rows))

    def compose_all(self, own: FloatArray, table: FloatArray) -> FloatArray:
        """`compose` of every row, a block of rows at a time: the members' factors of a million
        items at once would take gigabytes. Each row's sum is the same, bit for bit."""
        composed = np.empty_like(own)
        for start in range(0, len(own), COMPOSE_BLOCK):
            rows = np.arange(start, min(start + COMPOSE_BLOCK, len(own)))
            composed[rows] = self.compose(own[rows], table, rows)
        return composed


def _friend_side(dataset: Dataset, user_ids: list[UserId], friend_weight: float) -> _Side:
    """Friends' mean, scaled by `friend_weight`. Friends without a row (unknown ids) are skipped."""
    row = {user_id: r for r, user_id in enumerate(user_ids)}
    friends = [[row[f] for f in dataset.user(u).friends if f in row and f != u] for u in user_ids]
    lengths = np.fromiter((len(f) for f in friends), dtype=np.float64, count=len(friends))
    return _Side.build(friends, friend_weight / np.maximum(lengths, 1.0))


def _attribute_side(dataset: Dataset) -> _Side:
    """Attribute sum scaled by 1/sqrt(count): a plain mean would drown each tag of a popular
    artist (68 tags on average, weighted by training interactions) and tuned clearly worse on
    valid; a plain sum lets heavily tagged items dominate and diverged."""
    index = dataset.catalog.index  # its item rows are the items' attributes, in order
    lengths = np.diff(index.item_pointers).astype(np.float64)
    return _Side(index.item_pointers, index.item_attributes, 1.0 / np.sqrt(np.maximum(lengths, 1.0)))


def _user_rows(dataset: Dataset) -> list[UserId]:
    """Users with training interactions first (in file order), then profile-only users."""
    return list(dict.fromkeys([*dataset.train.by_user.keys(), *dataset.users.keys()]))


# --- fingerprint --------------------------------------------------------------------------------


def fingerprint(dataset: Dataset, config: BprConfig) -> str:
    """Hash of everything a trained model depends on: changes with the data or any setting.

    The train split is hashed in file order because the order decides which pair lands in which
    batch; item attributes and friends only when the config uses them.
    """
    digest = hashlib.sha256()
    digest.update(f"crs-bpr/{FORMAT_VERSION}\0{dataset.name}\0{dataset.catalog.n_items}\0".encode())
    digest.update(json.dumps(asdict(config), sort_keys=True).encode())
    for user_id, items in dataset.train.by_user.items():
        digest.update(f"\0{user_id!r}:".encode())
        digest.update(np.asarray(items, dtype=np.int64).tobytes())
    user_ids = _user_rows(dataset)
    digest.update(repr(user_ids).encode())
    if config.use_friends:
        digest.update(repr([dataset.user(u).friends for u in user_ids]).encode())
    if config.use_attributes:
        index = dataset.catalog.index
        digest.update(index.item_pointers.tobytes())
        digest.update(index.item_attributes.tobytes())
    return digest.hexdigest()[:16]


# --- the scorer ---------------------------------------------------------------------------------


class BprScorer:
    """Scores every item for a user with one matrix-vector product; nothing is cached per user."""

    name = "bpr"

    def __init__(
        self,
        dataset: Dataset,
        config: BprConfig,
        user_factors: FloatArray,
        item_factors: FloatArray,
        item_bias: FloatArray,
        attribute_factors: FloatArray | None = None,
    ) -> None:
        self.config = config
        self.data_fingerprint = fingerprint(dataset, config)
        self.user_ids = _user_rows(dataset)
        if user_factors.shape != (len(self.user_ids), config.dim):
            raise ValueError(f"user factors of shape {user_factors.shape} do not fit the dataset's users")
        if item_factors.shape != (dataset.catalog.n_items, config.dim) or item_bias.shape != (
            dataset.catalog.n_items,
        ):
            raise ValueError(f"item factors of shape {item_factors.shape} do not fit the dataset's items")
        if config.use_attributes and (
            attribute_factors is None or attribute_factors.shape != (dataset.catalog.n_attributes, config.dim)
        ):
            raise ValueError("an attribute model needs one attribute factor per catalog attribute")
        self.user_factors = user_factors
        self.item_factors = item_factors
        self.item_bias = item_bias
        self.attribute_factors = attribute_factors if config.use_attributes else None
        self._row = {user_id: r for r, user_id in enumerate(self.user_ids)}
        # Composed once here, so that `scores` is a single matrix-vector product.
        self._user_vectors = user_factors
        if config.use_friends:
            self._user_vectors = _friend_side(dataset, self.user_ids, config.friend_weight).compose_all(
                user_factors, user_factors
            )
        self._item_vectors = item_factors
        if self.attribute_factors is not None:
            self._item_vectors = _attribute_side(dataset).compose_all(item_factors, self.attribute_factors)
        # A trained model is shared by every conversation: make accidental writes fail loudly.
        for array in (
            self.user_factors,
            self.item_factors,
            self.item_bias,
            self._user_vectors,
            self._item_vectors,
        ):
            array.setflags(write=False)
        if self.attribute_factors is not None:
            self.attribute_factors.setflags(write=False)

    def user_vector(self, user_id: UserId) -> FloatArray:
        """The vector scored against the items; a user unknown to training gets zeros (bias only)."""
        row = self._row.get(user_id)
        if row is None:
            return np.zeros(self.config.dim, dtype=np.float64)
        return np.asarray(self._user_vectors[row])

    def scores(self, user_id: UserId) -> FloatArray:
        return np.asarray(self._item_vectors @ self.user_vector(user_id) + self.item_bias, dtype=np.float64)

    # --- persistence ----------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write atomically (temporary file, then rename): `path` never holds a half-written model."""
        meta = {"format": FORMAT_VERSION, "config": asdict(self.config), "fingerprint": self.data_fingerprint}
        arrays = {
            "user_factors": self.user_factors,
            "item_factors": self.item_factors,
            "item_bias": self.item_bias,
        }
        if self.attribute_factors is not None:
            arrays["attribute_factors"] = self.attribute_factors
        save_arrays(path, meta, arrays)

    @classmethod
    def load(cls, path: Path, dataset: Dataset) -> BprScorer:
        """A saved model for `dataset`. Raises ModelFileError when the file is unreadable, of another
        format, or was trained on other data than `dataset` (its fingerprint does not match)."""
        try:
            meta, raw = load_arrays(path, "BPR model")
        except ArtifactError as error:
            raise ModelFileError(str(error)) from None
        if meta.get("format") != FORMAT_VERSION:
            raise ModelFileError(
                f"{path}: model file format {meta.get('format')!r}, expected {FORMAT_VERSION}"
            )
        try:
            config = BprConfig.from_mapping(meta["config"])
            stored = str(meta["fingerprint"])
            arrays = {name: np.asarray(array, dtype=np.float64) for name, array in raw.items()}
        except Exception as error:  # a missing key or a bad setting both mean "unusable"
            raise ModelFileError(
                f"{path}: not a readable BPR model ({type(error).__name__}: {error})"
            ) from None
        expected = fingerprint(dataset, config)
        if stored != expected:
            raise ModelFileError(
                f"{path}: trained on other data than dataset {dataset.name!r} "
                f"(fingerprint {stored}, expected {expected}); retrain it"
            )
        try:
            return cls(
                dataset,
                config,
                arrays["user_factors"],
                arrays["item_factors"],
                arrays["item_bias"],
                arrays.get("attribute_factors"),
            )
        except (KeyError, ValueError) as error:
            raise ModelFileError(f"{path}: inconsistent BPR model ({error})") from None


# --- training -----------------------------------------------------------------------------------


def _sigmoid(x: FloatArray) -> FloatArray:
    # tanh form: no overflow warnings for large |x|, unlike 1 / (1 + exp(-x)).
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)))


def clip_rows(change: FloatArray, max_norm: float) -> FloatArray:
    """Rows of `change` scaled down to at most `max_norm` (Euclidean); the others unchanged."""
    norms = np.linalg.norm(change, axis=1)
    if not (norms > max_norm).any():
        return change  # the usual case: leaves the arithmetic, and so the model, bit for bit as before
    return change * np.minimum(1.0, max_norm / np.maximum(norms, 1e-300))[:, None]


class _Table:
    """One trained entity table (users or items), optionally composed with side information.

    A batch touches each row once however often it occurs: vectors are composed for the unique
    rows only and the gradients of repeated rows are summed first. Popular artists (many tags) fill
    most of a batch, so this does the costly attribute work on about a third of the rows.
    """

    def __init__(self, factors: FloatArray, side: _Side | None, side_factors: FloatArray | None) -> None:
        self.factors = factors
        self.side = side
        self.side_factors = side_factors

    def forward(self, rows: IntArray) -> tuple[FloatArray, IntArray, IntArray, IntArray]:
        """(vectors of the unique rows, the unique rows, their counts, inverse index into them)."""
        unique, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
        vectors = self.factors[unique]
        if self.side is not None and self.side_factors is not None:
            vectors = self.side.compose(vectors, self.side_factors, unique)
        return vectors, unique, counts, inverse

    def step(
        self, unique: IntArray, counts: IntArray, gradient: FloatArray, lr: float, reg: float, max_norm: float
    ) -> None:
        """Ascend `gradient` (summed over each unique row's occurrences), with L2 applied once per
        occurrence as in per-example SGD. All changes are computed before any is applied, because
        for friends the side table is the factor table itself."""
        own = lr * (gradient - reg * counts[:, None] * self.factors[unique])
        side_change = None
        if self.side is not None and self.side_factors is not None:
            members, owners = self.side.gather(unique)
            share = self.side.weight[unique][:, None] * gradient
            side_change = _row_sums(
                members,
                lr * (share[owners] - reg * counts[owners][:, None] * self.side_factors[members]),
                len(self.side_factors),
            )
        self.factors[unique] += clip_rows(own, max_norm)
        if side_change is not None and self.side_factors is not None:
            self.side_factors += clip_rows(side_change, max_norm)


def train_bpr(
    dataset: Dataset, config: BprConfig | None = None, progress: Progress | None = None
) -> BprScorer:
    """Train on `dataset.train` only, reporting each epoch and its mean BPR loss to `progress`."""
    config = config or BprConfig()
    rng = np.random.default_rng(config.seed)
    user_ids = _user_rows(dataset)
    row = {user_id: r for r, user_id in enumerate(user_ids)}
    train = dataset.train.by_user
    pair_users = np.fromiter((row[u] for u, items in train.items() for _ in items), dtype=np.int64)
    pair_items = np.fromiter((i for items in train.values() for i in items), dtype=np.int64)
    if len(pair_users) == 0:
        raise ValueError(f"dataset {dataset.name!r} has no training interactions to train BPR on")
    n_items, dim = dataset.catalog.n_items, config.dim

    user_factors = rng.normal(0.0, INIT_SCALE, (len(user_ids), dim))
    # Users without training interactions get no BPR step of their own: start them at zero, so that
    # their scores are the item bias (plus their friends' taste) rather than noise.
    user_factors[np.bincount(pair_users, minlength=len(user_ids)) == 0] = 0.0
    item_factors = rng.normal(0.0, INIT_SCALE, (n_items, dim))
    item_bias = np.zeros(n_items)
    attribute_factors = None
    if config.use_attributes:
        attribute_factors = rng.normal(0.0, INIT_SCALE, (dataset.catalog.n_attributes, dim))
    users = _Table(
        user_factors,
        _friend_side(dataset, user_ids, config.friend_weight) if config.use_friends else None,
        user_factors,
    )
    items = _Table(
        item_factors, _attribute_side(dataset) if config.use_attributes else None, attribute_factors
    )
    lr, reg = config.learning_rate, config.reg

    def run_epoch() -> float:
        order = rng.permutation(len(pair_users))
        total_loss = 0.0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            size = len(batch)
            # The liked and the sampled items go through one forward and one step together.
            batch_items = np.concatenate([pair_items[batch], rng.integers(0, n_items, size)])
            user_vectors, user_rows, user_counts, user_inverse = users.forward(pair_users[batch])
            item_vectors, item_rows, item_counts, item_inverse = items.forward(batch_items)
            p = user_vectors[user_inverse]
            difference = item_vectors[item_inverse[:size]] - item_vectors[item_inverse[size:]]
            margin = (
                np.einsum("bd,bd->b", p, difference)
                + item_bias[batch_items[:size]]
                - item_bias[batch_items[size:]]
            )
            total_loss += float(np.logaddexp(0.0, -margin).sum())
            # d log sigmoid(m) / dm = sigmoid(-m); every gradient below ascends log sigmoid(m).
            weight = _sigmoid(-margin)[:, None]
            user_gradient = _row_sums(user_inverse, weight * difference, len(user_rows))
            item_gradient = _row_sums(item_inverse, np.concatenate([weight * p, -weight * p]), len(item_rows))
            users.step(user_rows, user_counts, user_gradient, lr, reg, config.max_step_norm)
            items.step(item_rows, item_counts, item_gradient, lr, reg, config.max_step_norm)
            signed = np.concatenate([weight[:, 0], -weight[:, 0]])
            # Summed per batch item in the batch's order (as a full-length bincount would, bit for
            # bit), without touching the other items: the cost stays the batch's, not the catalog's.
            item_bias[item_rows] += lr * np.bincount(
                item_inverse, weights=signed - reg * item_bias[batch_items], minlength=len(item_rows)
            )
        return total_loss / len(pair_users)

    epochs = config.epochs
    if config.max_updates:
        epochs = min(epochs, max(1, config.max_updates // len(pair_users)))
    for epoch in range(1, epochs + 1):
        # Too large a learning rate makes the factors grow without bound; stop at the first
        # overflow rather than save and serve a model of infinities.
        try:
            with np.errstate(over="raise", invalid="raise"):
                loss = run_epoch()
        except FloatingPointError:
            loss = float("nan")
        if not np.isfinite(loss):
            raise ValueError(
                f"BPR training diverged in epoch {epoch} (learning_rate {lr}); use a smaller learning rate"
            )
        report(progress, f"training bpr on {dataset.name}", epoch, epochs, "epoch", f"loss {loss:.4f}")

    return BprScorer(dataset, config, user_factors, item_factors, item_bias, attribute_factors)
