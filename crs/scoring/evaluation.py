"""Offline ranking quality of a scorer on a split that has answers (valid), to choose settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from crs.data import Dataset
    from crs.scoring.base import Scorer


def ranking_metrics(
    scorer: Scorer, dataset: Dataset, split: str = "valid", k: Sequence[int] = (10, 50)
) -> dict[str, float]:
    """Mean Recall@k and NDCG@k (binary relevance) over the users with items in `split`.

    Every item is ranked except the user's training items: those are known already and would
    otherwise crowd the top of any collaborative ranking. Recall@k is hits / relevant items (not
    / min(k, relevant)), so it stays below 1 for a user with more than k relevant items.
    """
    cutoffs = sorted({int(c) for c in k})
    if not cutoffs or cutoffs[0] < 1:
        raise ValueError(f"cutoffs must be positive, got {tuple(k)}")
    sums = dict.fromkeys((f"{metric}@{c}" for c in cutoffs for metric in ("Recall", "NDCG")), 0.0)
    deepest = min(cutoffs[-1], dataset.catalog.n_items)
    discounts = 1.0 / np.log2(np.arange(2, cutoffs[-1] + 2))
    users = 0
    for user_id, relevant_items in dataset.split(split).by_user.items():
        relevant = np.unique(np.asarray(relevant_items, dtype=np.int64))
        if relevant.size == 0:
            continue
        scores = np.array(scorer.scores(user_id), dtype=np.float64)
        scores[np.asarray(dataset.train.items_of(user_id), dtype=np.int64)] = -np.inf
        top = np.argpartition(-scores, deepest - 1)[:deepest]
        # Ties broken by item index so the metrics do not depend on argpartition's internals.
        top = top[np.lexsort((top, -scores[top]))]
        hits = np.isin(top, relevant).astype(np.float64)
        for c in cutoffs:
            sums[f"Recall@{c}"] += float(hits[:c].sum()) / relevant.size
            ideal = float(discounts[: min(relevant.size, c)].sum())
            sums[f"NDCG@{c}"] += float((discounts[: len(hits[:c])] * hits[:c]).sum()) / ideal
        users += 1
    return {name: value / users if users else 0.0 for name, value in sums.items()}
