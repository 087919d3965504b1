"""What policies that learn share: where their parameters are kept, on which conversations they
learn, and how training reports progress.

A policy class that learns sets `learns = True` and accepts a keyword `training: TrainingContext`.
It calls `load_or_train` in its constructor, so `crs evaluate` trains or loads what it needs by
itself and `crs train --policy NAME` is nothing more than constructing the policy.

Learning data. Policies learn from the train split and from *tuning pairs*
(`crs.protocol.tuning_pairs`): the shuffled valid pairs after the first 4,000. The first 4,000
shuffled valid pairs, the protocol's standard evaluation set, are never learned from, so numbers
reported on them are out-of-sample; the test split is never read.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crs.artifacts import ArtifactError, load_arrays, save_arrays
from crs.progress import Progress, fractions

if TYPE_CHECKING:
    from crs.data import Dataset

# (stage, fraction done in [0, 1]): how a policy's training code reports to its TrainingContext.
StageReport = Callable[[str, float], None]


@dataclass(frozen=True)
class TrainingContext:
    cache_dir: Path | None = None  # None: crs.scoring.default_cache_dir()
    progress: Progress | None = None
    retrain: bool = False  # train even when a matching file is cached

    def report(self, stage: str, fraction: float) -> None:
        """`fraction` of `stage` done, as a percentage event."""
        fractions(self.progress, stage)(fraction)

    def directory(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        from crs.scoring import default_cache_dir

        return default_cache_dir()


@dataclass(frozen=True)
class Trained:
    """Learned arrays plus how they were obtained (for the benchmark's training-time column)."""

    arrays: Mapping[str, np.ndarray]
    path: Path
    train_seconds: float  # the time training took, also when loaded from the cache
    loaded: bool


def data_fingerprint(dataset: Dataset) -> str:
    """Hash of what learned policies may depend on: catalog attributes, friends, train and valid."""
    digest = hashlib.sha256()
    index = dataset.catalog.index
    digest.update(f"{dataset.name}\0{dataset.catalog.n_items}\0{dataset.catalog.n_attributes}\0".encode())
    digest.update(index.item_pointers.tobytes())
    digest.update(index.item_attributes.tobytes())
    for split in ("train", "valid"):
        if split in dataset.splits:
            for user_id, items in dataset.split(split).by_user.items():
                digest.update(f"\0{split}:{user_id!r}:".encode())
                digest.update(np.asarray(items, dtype=np.int64).tobytes())
    for user_id in sorted(dataset.users, key=repr):
        digest.update(f"\0{user_id!r}>{dataset.users[user_id].friends!r}".encode())
    return digest.hexdigest()[:16]


def load_or_train(
    context: TrainingContext,
    dataset: Dataset,
    kind: str,
    settings: Mapping[str, Any],
    train: Callable[[], Mapping[str, np.ndarray]],
) -> Trained:
    """The cached arrays of `kind` for this data and these settings, else `train()`'s, saved.

    `settings` must hold everything the result depends on besides the data (hyperparameters,
    a format version, the scorer's name and parameters); it must be JSON-serialisable.
    """
    key = hashlib.sha256(
        json.dumps({"kind": kind, "settings": dict(settings)}, sort_keys=True, default=str).encode()
    ).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset.name).strip("._") or "dataset"
    path = context.directory() / f"{safe}-{kind}-{key}-{data_fingerprint(dataset)}.npz"
    if path.exists() and not context.retrain:
        try:
            meta, arrays = load_arrays(path)
            if meta.get("kind") == kind and meta.get("settings_key") == key:
                return Trained(arrays, path, float(meta.get("train_seconds", 0.0)), loaded=True)
        except ArtifactError:
            pass  # unusable: retrained and replaced below
    started = time.perf_counter()
    arrays = {name: np.asarray(array) for name, array in train().items()}
    seconds = time.perf_counter() - started
    save_arrays(path, {"kind": kind, "settings_key": key, "train_seconds": seconds}, arrays)
    return Trained(arrays, path, seconds, loaded=False)
