"""A loaded dataset: a catalog, its users and their interactions per split."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from pathlib import Path

import numpy as np

from crs.data.errors import DataError
from crs.types import Catalog, Interactions, User, UserId


@dataclass(frozen=True)
class Dataset:
    name: str
    catalog: Catalog
    users: Mapping[UserId, User]
    splits: Mapping[str, Interactions]
    source: Path
    # Splits a loader knows about but whose files are absent (e.g. the withheld test split).
    missing_splits: Mapping[str, Path] = field(default_factory=dict)

    def split(self, name: str) -> Interactions:
        if name in self.splits:
            return self.splits[name]
        if name in self.missing_splits:
            raise DataError(
                f"split {name!r} of dataset {self.name!r} is not available: its file is absent "
                f"(available: {', '.join(self.splits)})",
                self.missing_splits[name],
            )
        raise DataError(
            f"dataset {self.name!r} has no split {name!r} (available: {', '.join(self.splits)})", self.source
        )

    def user(self, user_id: UserId) -> User:
        """The user's profile; users without one (some SCPR users) get an empty profile."""
        return self.users.get(user_id) or User(id=user_id)

    @property
    def train(self) -> Interactions:
        return self.split("train")

    @cached_property
    def popularity(self) -> np.ndarray:
        """Training interactions per item: the simplest collaborative score."""
        interacted = np.fromiter(chain.from_iterable(self.train.by_user.values()), dtype=np.int64)
        return np.bincount(interacted, minlength=self.catalog.n_items).astype(np.float64)
