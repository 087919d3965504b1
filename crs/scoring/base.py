"""The scorer interface and the popularity scorer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from crs.index import FloatArray
from crs.types import UserId

if TYPE_CHECKING:
    from crs.data import Dataset


class Scorer(Protocol):
    """Scores every item for a user: float64, one entry per catalog item, higher is better.

    Policies call `scores` once per conversation, so it must be cheap. The returned array belongs
    to the caller, who may change it (for example to mask items) without affecting later calls.
    """

    name: str

    def scores(self, user_id: UserId) -> FloatArray: ...


class PopularityScorer:
    """The same ranking for everyone: how many training interactions each item has."""

    name = "popularity"

    def __init__(self, dataset: Dataset) -> None:
        self._scores = np.array(dataset.popularity, dtype=np.float64)

    def scores(self, user_id: UserId) -> FloatArray:
        return self._scores.copy()
