"""The scorer interface and the popularity scorer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from crs.index import FloatArray
from crs.types import UserId

if TYPE_CHECKING:
    from crs.data import Dataset


class Scorer(Protocol):
    """Scores every item for a user (higher is better). Called once per conversation."""

    name: str

    def scores(self, user_id: UserId) -> FloatArray: ...


class PopularityScorer:
    name = "popularity"

    def __init__(self, dataset: Dataset) -> None:
        self._scores = np.asarray(dataset.popularity, dtype=np.float64)
        self._scores.setflags(write=False)  # shared by every user: nobody may change it

    def scores(self, user_id: UserId) -> FloatArray:
        return self._scores
