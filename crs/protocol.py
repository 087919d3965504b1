"""The evaluation protocol's bookkeeping: which conversations a run has, and where their randomness
comes from. Everything that decides *which* (user, item) pair conversation i is about, and *which*
random numbers it draws, lives here, so the runner, learned policies and the conformance check
cannot disagree about it.

- Targets are the (user, item) pairs of a split in file order, shuffled once with
  `numpy.random.seed(1)` as SCPR and UNICORN do (`target_pairs`).
- Conversation i draws all its randomness from `SeedSequence([seed, i])`, split into one stream
  for the simulated user and one for the policy (`conversation_rngs`), so results depend neither
  on the number of worker processes nor on the order chunks finish in. `i` is the position in
  the whole shuffled list: a pair gets the same conversation whatever the offset and limit.
- The first `EVALUATION_PAIRS` shuffled valid pairs are the standard evaluation set and are never
  learned from; learned policies may use the rest (`tuning_pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crs.types import UserId

if TYPE_CHECKING:
    from crs.data import Dataset

PROTOCOL_SHUFFLE_SEED = 1
EVALUATION_PAIRS = 4000
# Below this many tuning pairs (small catalogs), the second half of the valid pairs is used instead.
MIN_TUNING_PAIRS = 200


@dataclass(frozen=True, slots=True)
class Target:
    """Conversation `conversation_id` of a run: `user_id` looks for the item at `item` (an index)."""

    conversation_id: int
    user_id: UserId
    item: int


def target_pairs(dataset: Dataset, split: str, limit: int | None = None) -> np.ndarray:
    """The protocol's conversation targets: rows of (user id, item index), shuffled."""
    pairs = dataset.split(split).pairs()
    if not pairs:
        raise ValueError(f"split {split!r} of {dataset.name!r} has no (user, item) pairs to evaluate")
    # Generic catalogs may have string user ids; those pairs are shuffled as objects.
    dtype = np.int64 if all(isinstance(user, int) for user, _ in pairs) else object
    array = np.array(pairs, dtype=dtype)
    np.random.RandomState(PROTOCOL_SHUFFLE_SEED).shuffle(array)
    return array[:limit] if limit else array


def target_at(pairs: np.ndarray, conversation_id: int) -> Target:
    """Row `conversation_id` of `target_pairs` as plain Python values."""
    user_id, item = pairs[conversation_id]
    return Target(conversation_id, plain_id(user_id), int(item))


def plain_id(value: object) -> UserId:
    """A user id as the dataset has it: numpy scalars (from the pairs array) become Python ints."""
    if isinstance(value, np.generic):
        return value.item()
    return value  # type: ignore[return-value]


def conversation_rngs(seed: int, conversation_id: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(the simulated user's stream, the policy's stream) of one conversation."""
    user_seed, policy_seed = np.random.SeedSequence([seed, conversation_id]).spawn(2)
    return np.random.default_rng(user_seed), np.random.default_rng(policy_seed)


def conversation_range(n_pairs: int, offset: int = 0, limit: int | None = None) -> range:
    """The conversation ids of a run over `n_pairs` shuffled pairs, after `offset`, at most `limit`."""
    if offset < 0:
        raise ValueError(f"offset must be a number of pairs to skip (0 or more), got {offset}")
    if offset >= n_pairs:
        raise ValueError(f"offset {offset} skips all {n_pairs} pairs")
    end = n_pairs if limit is None else min(n_pairs, offset + limit)
    return range(offset, end)


def tuning_pairs(dataset: Dataset, split: str = "valid") -> np.ndarray:
    """Rows of (user id, item index) a policy may learn from: never the evaluation pairs."""
    if split not in dataset.splits:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = target_pairs(dataset, split)
    if len(pairs) - EVALUATION_PAIRS >= MIN_TUNING_PAIRS:
        return pairs[EVALUATION_PAIRS:]
    return pairs[len(pairs) // 2 :]
