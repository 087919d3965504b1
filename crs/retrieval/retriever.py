"""Free-text retrieval over a catalog: rank items, score them for a belief, map words to attributes.

Scoring is cosine similarity between the query's embedding and each item's embedding (all vectors
are L2-normalised, so cosine is a dot product). Two ways to rank:

- `backend="chroma"`: the HNSW index of the persistent collection (approximate);
- `backend="numpy"`: one matrix-vector product over the in-memory copy of the vectors (exact).

The default ("auto") uses numpy for everything. Measured on MovieLens (9,742 items, 2 busy cores):
embedding the query costs ~10 ms; on top of it the exact product with top-k costs ~1 ms and a
chromadb query ~1 ms (whole catalog), while a chromadb query restricted to a 10% candidate subset
(`ids=`) costs 14-35 ms at p50 and up to ~450 ms at p95. HNSW also agrees with the exact top 10
only ~95% of the time. So numpy is exact and never slower here; chromadb is the store of record
(persistence, verification) and stays available as `backend="chroma"` for catalogs large enough
for an approximate index to pay off.

Combining with a belief: `text_log_likelihood(text, temperature)` is log softmax(cos / T) over the
items, i.e. the log-probability of each item under a text-only model. Adding it to a belief's
logits (or to log-scores of a collaborative scorer) is a product of experts; a constant per query
does not change any ranking, so the normalisation only makes the numbers readable. A smaller T
trusts the text more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from crs.artifacts import ArtifactError, load_arrays, save_arrays
from crs.progress import Progress
from crs.retrieval.encoder import Encoder, MiniLmEncoder, Vectors
from crs.retrieval.store import ItemIndex, open_or_build
from crs.retrieval.text import attribute_texts, content_hash, item_texts
from crs.types import Catalog

FloatArray = npt.NDArray[np.float64]
Backend = Literal["auto", "numpy", "chroma"]
DEFAULT_TEMPERATURE = 0.05
ATTRIBUTES_FILE = "attributes.npz"


def cosine_scores(vectors: Vectors, query: Vectors) -> FloatArray:
    # einsum, not `@`: right after torch has encoded the query its OpenMP threads are still
    # spinning, and a multi-threaded BLAS product then waits for them (measured: p50 17 ms, p95
    # 107 ms for 10k items, against ~1 ms single-threaded).
    return np.einsum("ij,j->i", vectors, query).astype(np.float64)


@dataclass(frozen=True, eq=False)
class Retriever:
    """A catalog's item and attribute vectors, ready to be queried with free text."""

    catalog: Catalog
    encoder: Encoder
    index: ItemIndex
    attribute_vectors: Vectors  # (n_attributes, dim), row a is attribute a
    rebuilt: str | None = None  # why the item index was (re)built on open; None when reused

    @property
    def item_vectors(self) -> Vectors:
        return self.index.vectors

    def warm_up(self) -> None:
        """Load the model and run it once now, so that a person's first message does not wait
        for it (a chat calls this at start-up)."""
        self.embed("warm up")

    def embed(self, text: str) -> Vectors:
        return self.encoder.encode([text])[0]

    def scores(self, text: str) -> FloatArray:
        """Cosine similarity of `text` to every item (float64, one entry per item)."""
        return cosine_scores(self.item_vectors, self.embed(text))

    def text_log_likelihood(self, text: str, temperature: float = DEFAULT_TEMPERATURE) -> FloatArray:
        """log softmax(cos / temperature) over all items: add it to a belief's logits."""
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        logits = self.scores(text) / temperature
        top = logits.max()
        return logits - (top + np.log(np.exp(logits - top).sum()))

    def rank(
        self,
        text: str,
        candidates: npt.ArrayLike | None = None,
        k: int = 10,
        backend: Backend = "auto",
    ) -> list[tuple[int, float]]:
        """The `k` best (item index, cosine) for `text`, best first, within `candidates` (item
        indices; None means the whole catalog)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if backend == "chroma":
            return self._rank_chroma(self.embed(text), candidates, k)
        if backend not in ("auto", "numpy"):
            raise ValueError(f"unknown backend {backend!r}; choose auto, numpy or chroma")
        query = self.embed(text)
        if candidates is None:
            pool = np.arange(self.catalog.n_items)
            similarity = cosine_scores(self.item_vectors, query)  # no fancy-index copy of the matrix
        else:
            pool = np.unique(np.asarray(candidates, dtype=np.int64))
            similarity = cosine_scores(self.item_vectors[pool], query)
        k = min(k, len(pool))
        top = np.argpartition(-similarity, k - 1)[:k] if k < len(pool) else np.arange(len(pool))
        # Stable order: higher score first, then lower item index.
        order = top[np.lexsort((pool[top], -similarity[top]))]
        return [(int(pool[i]), float(similarity[i])) for i in order]

    def _rank_chroma(
        self, query: Vectors, candidates: npt.ArrayLike | None, k: int
    ) -> list[tuple[int, float]]:
        extra: dict[str, Any] = {}
        if candidates is not None:
            ids = [str(int(i)) for i in np.unique(np.asarray(candidates, dtype=np.int64))]
            if not ids:
                return []
            extra["ids"] = ids
            k = min(k, len(ids))
        found = self.index.collection.query(
            query_embeddings=query[None, :],
            n_results=min(k, self.catalog.n_items),
            include=["distances"],
            **extra,
        )
        # chromadb's cosine space returns distance = 1 - cosine.
        return [(int(i), 1.0 - float(d)) for i, d in zip(found["ids"][0], found["distances"][0], strict=True)]

    def nearest_attributes(self, text: str, k: int = 5) -> list[tuple[int, float]]:
        """The `k` attributes whose names are closest to `text`: (attribute index, cosine)."""
        similarity = cosine_scores(self.attribute_vectors, self.embed(text))
        order = np.lexsort((np.arange(len(similarity)), -similarity))[:k]
        return [(int(a), float(similarity[a])) for a in order]


def _safe_name(name: str) -> str:
    # Dataset names may be folder paths (generic catalogs): keep the folder name flat.
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._") or "dataset"


def index_folder(cache_dir: Path, dataset_name: str, encoder: Encoder) -> Path:
    """`<cache>/retrieval/<dataset>-<model hash>`: one index per dataset and model; the item texts'
    hash lives in the manifest, so a changed catalog is rebuilt in place rather than piling up."""
    return cache_dir / "retrieval" / f"{_safe_name(dataset_name)}-{content_hash(encoder.name, [])[:10]}"


def _attribute_vectors(folder: Path, catalog: Catalog, encoder: Encoder, chroma_url: str = "") -> Vectors:
    texts = attribute_texts(catalog)
    key = content_hash(encoder.name, texts)
    if chroma_url and texts:
        # On a shared server the attribute names are an index of their own, so that a replica
        # starting on a fresh machine embeds nothing.
        index, _ = open_or_build(
            folder.with_name(folder.name + "-attributes"), texts, encoder, key, None, chroma_url
        )
        return index.vectors
    path = folder / ATTRIBUTES_FILE
    try:
        meta, arrays = load_arrays(path, "attribute vectors")
        vectors = arrays["vectors"]
        if meta.get("hash") == key and vectors.shape[0] == len(texts):
            return np.ascontiguousarray(vectors, dtype=np.float32)
    except (ArtifactError, KeyError):
        pass  # absent, corrupt or another catalog: re-embedded below
    vectors = encoder.encode(texts)
    save_arrays(path, {"hash": key, "model": encoder.name}, {"vectors": vectors})
    return vectors


def open_retriever(
    catalog: Catalog,
    dataset_name: str,
    cache_dir: Path | None = None,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
    chroma_url: str = "",
) -> Retriever:
    """Open the dataset's index from the cache, building (or rebuilding) it when it is absent, stale
    or corrupt; an interrupted build is resumed. `cache_dir` None means
    `crs.scoring.default_cache_dir()`; `progress` hears only of items being embedded.
    `chroma_url` ("http://HOST:PORT"): keep the item and attribute vectors on that chroma server,
    shared by every process that names it, instead of in the cache folder (see `store`)."""
    from crs.scoring import default_cache_dir

    if catalog.n_items == 0:
        raise ValueError("cannot build a retriever for an empty catalog")
    encoder = encoder or MiniLmEncoder()
    folder = index_folder(cache_dir or default_cache_dir(), dataset_name, encoder)
    texts = item_texts(catalog)
    index, reason = open_or_build(
        folder, texts, encoder, content_hash(encoder.name, texts), progress, chroma_url
    )
    return Retriever(
        catalog=catalog,
        encoder=encoder,
        index=index,
        attribute_vectors=_attribute_vectors(folder, catalog, encoder, chroma_url),
        rebuilt=reason,
    )
