"""Item-to-item similarity: what "something like X" means when a person names a film.

Two views of "like", averaged:
- **content**: the items' attributes, each weighted by how distinctive it is (inverse document
  frequency: sharing "Film-Noir" says more than sharing "Drama"), compared by cosine;
- **collaborative**: how many training users interacted with both items (`co`), as an
  asymmetric cosine `co / (n_x^(1-a) n_j^a)` with `a = POPULAR_PENALTY` > 1/2 (plain cosine is
  a = 1/2): with plain cosine the films everybody rated are everybody's neighbours, and "like
  Toy Story" brought Pulp Fiction. Shrunk toward 0 by `co / (co + SHRINK)`: three shared fans of
  an obscure film are weak evidence. Items without interactions fall back to content.

Each view is scaled to its best match, mixed, and clipped to [0, 1]. `to(item)` gives one row
of the item-item matrix, computed on demand (a sparse product, about a millisecond on
MovieLens) rather than stored whole.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from crs.data.dataset import Dataset
from crs.index import FloatArray

SHRINK = 10.0  # shared users at which a collaborative cosine counts half
POPULAR_PENALTY = 0.8  # the asymmetric cosine's exponent on the candidate's audience size
CONTENT_SHARE = 0.3  # of the mix: an audience says more about "like X" than a few shared tags


class ItemSimilarity:
    def __init__(self, dataset: Dataset) -> None:
        catalog = dataset.catalog
        n_items, n_attributes = catalog.n_items, catalog.n_attributes
        rows = [item.index for item in catalog.items for _ in item.attributes]
        cols = [a for item in catalog.items for a in item.attributes]
        has = sparse.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(n_items, n_attributes), dtype=np.float64
        )
        frequency = np.asarray(has.sum(axis=0)).ravel()
        idf = np.log((1 + n_items) / (1 + frequency))
        self._content = _normalise_rows(has @ sparse.diags(idf))

        users = list(dataset.train.by_user)
        user_rows = [u for u, user in enumerate(users) for _ in dataset.train.by_user[user]]
        item_cols = [i for user in users for i in dataset.train.by_user[user]]
        seen = sparse.csr_matrix(
            (np.ones(len(user_rows)), (item_cols, user_rows)), shape=(n_items, max(1, len(users)))
        )
        seen.data[:] = 1.0  # an item interacted with twice by one user counts once
        self._seen = sparse.csr_matrix(seen)
        self._audience = np.asarray(seen.sum(axis=1)).ravel()
        self._has_interactions = self._audience > 0

    def to(self, item: int) -> FloatArray:
        """How similar every item is to `item`, in [0, 1] (`item` itself scores 1)."""
        content = (self._content @ self._content[item].T).toarray().ravel()
        if not self._has_interactions[item]:
            return content
        shared = (self._seen @ self._seen[item].T).toarray().ravel()
        audience = np.maximum(self._audience, 1.0)
        cosine = shared / (audience[item] ** (1 - POPULAR_PENALTY) * audience**POPULAR_PENALTY)
        collaborative = cosine * shared / (shared + SHRINK)
        # Cosines over many users run lower than over a few attributes: each view is scaled to
        # its best match other than the item itself before they are mixed.
        collaborative /= max(_best_other(collaborative, item), 1e-12)
        content /= max(_best_other(content, item), 1e-12)
        mixed = CONTENT_SHARE * content + (1 - CONTENT_SHARE) * collaborative
        mixed = np.where(self._has_interactions, mixed, content)
        return np.asarray(np.clip(mixed, 0.0, 1.0), dtype=np.float64)


def _best_other(values: FloatArray, item: int) -> float:
    saved, values[item] = values[item], -np.inf
    best = float(values.max())
    values[item] = saved
    return best


def _normalise_rows(matrix: sparse.spmatrix) -> sparse.csr_matrix:
    matrix = sparse.csr_matrix(matrix, dtype=np.float64)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix)


__all__ = ["ItemSimilarity"]
