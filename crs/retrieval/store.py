"""The persistent item index: a chromadb collection on disk plus a manifest that vouches for it.

Layout of an index folder (one per dataset and model, under the cache directory)::

    manifest.json        written last, atomically: format, model, content hash, count, vector fingerprint
    store-<nonce>/       the chromadb PersistentClient folder the manifest names
    attributes.npz       attribute-name vectors (see `crs.retrieval.retriever`)

Why a fresh `store-<nonce>` folder for every build rather than rebuilding in place: chromadb keeps
one shared system per path for the life of the process, so deleting and re-creating a store at the
same path can leave a stale SQLite connection behind. A new folder per build sidesteps that, and
makes the manifest the single commit point: an interrupted build leaves a folder no manifest names,
which is ignored and removed after the next successful build.

Opening never trusts the files: the manifest must match the model and the hash of the current item
texts, the collection must hold exactly one unit-length vector per item, and their fingerprint
(column sums) must match the one recorded at build time. Anything else (missing marker, garbled
SQLite, deleted folder, wrong count) raises `IndexUnusable` and the caller rebuilds. Only one
process should build a given index at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crs.progress import Progress, report
from crs.retrieval.encoder import Encoder, Vectors

MANIFEST = "manifest.json"
FORMAT = 1
COLLECTION = "items"
BATCH_SIZE = 128

EMBEDDING_STAGE = "embedding the catalog (once)"


class IndexUnusable(Exception):
    """An index on disk that must not be used: absent, half-written, stale or corrupt."""


@dataclass(frozen=True, eq=False)
class ItemIndex:
    """An opened, verified index: the chromadb collection and the same vectors in memory."""

    store: Path
    collection: Any  # chromadb.Collection; Any keeps chromadb out of the import graph
    vectors: Vectors  # (n_items, dim), row i is item i, L2-normalised


def _client(store: Path) -> Any:
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(store), settings=Settings(anonymized_telemetry=False))


def _fingerprint(vectors: Vectors) -> list[float]:
    # Column sums, plain and weighted by position: a fingerprint that survives chromadb's storage,
    # which returns float32 values a few ulps off the ones added (so a byte checksum would reject
    # every good index), while a garbled, zeroed or reordered vector moves it far past the tolerance.
    weights = np.arange(1, len(vectors) + 1, dtype=np.float64) / max(len(vectors), 1)
    values = vectors.astype(np.float64)
    return [float(x) for x in np.concatenate([values.sum(axis=0), weights @ values])]


SUM_TOLERANCE = 1e-3


def _write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(payload, file, sort_keys=True)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def open_index(folder: Path, model: str, items_hash: str, n_items: int) -> ItemIndex:
    """The verified index in `folder`, or `IndexUnusable` saying why it cannot be used."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise IndexUnusable(f"no readable manifest ({type(error).__name__})") from None
    expected = {"format": FORMAT, "model": model, "items_hash": items_hash, "count": n_items}
    for key, value in expected.items():
        if manifest.get(key) != value:
            raise IndexUnusable(f"manifest {key} is {manifest.get(key)!r}, expected {value!r}")
    store = folder / str(manifest.get("store", ""))
    # PersistentClient would silently create an empty store at a missing path.
    if not manifest.get("store") or not (store / "chroma.sqlite3").is_file():
        raise IndexUnusable(f"store folder {store.name!r} is missing")
    try:
        collection = _client(store).get_collection(COLLECTION)
        count = collection.count()
        if count != n_items:
            raise IndexUnusable(f"collection holds {count} vectors, expected {n_items}")
        got = collection.get(include=["embeddings"])
        ids = [int(i) for i in got["ids"]]
        vectors = np.asarray(got["embeddings"], dtype=np.float32)
    except IndexUnusable:
        raise
    except Exception as error:  # chromadb raises many types for a garbled SQLite file
        raise IndexUnusable(f"store cannot be read ({type(error).__name__}: {error})") from None
    if vectors.shape != (n_items, manifest.get("dim")) or sorted(ids) != list(range(n_items)):
        raise IndexUnusable(f"store holds vectors of shape {vectors.shape} with unexpected ids")
    vectors = np.ascontiguousarray(vectors[np.argsort(np.asarray(ids, dtype=np.int64))])
    norms = np.linalg.norm(vectors, axis=1)
    if not np.isfinite(vectors).all() or np.abs(norms - 1.0).max() > SUM_TOLERANCE:
        raise IndexUnusable("store holds vectors that are not unit length")
    recorded = np.asarray(manifest.get("fingerprint"), dtype=np.float64)
    if recorded.shape != (2 * vectors.shape[1],) or not np.allclose(
        _fingerprint(vectors), recorded, rtol=0, atol=SUM_TOLERANCE
    ):
        raise IndexUnusable("vectors differ from the ones written at build time")
    try:
        # The HNSW files are separate from the SQLite rows read above: one self-query checks them.
        found = collection.query(query_embeddings=vectors[:1], n_results=1, include=["distances"])
        distance = float(found["distances"][0][0])
    except Exception as error:
        raise IndexUnusable(f"vector index cannot be queried ({type(error).__name__}: {error})") from None
    if distance > SUM_TOLERANCE:
        raise IndexUnusable(f"vector index answers a self-query at distance {distance:.3g}")
    return ItemIndex(store=store, collection=collection, vectors=vectors)


def build_index(
    folder: Path,
    texts: Sequence[str],
    encoder: Encoder,
    items_hash: str,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> ItemIndex:
    """Embed `texts` in batches into a new store, then commit it by writing the manifest.

    `progress` hears of every batch embedded; an exception it raises (or any other)
    aborts the build, and the half-written store is never named by a manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / f"store-{uuid.uuid4().hex[:12]}"
    collection = _client(store).create_collection(
        COLLECTION, metadata={"hnsw:space": "cosine"}, embedding_function=None
    )
    total = len(texts)
    parts: list[Vectors] = []
    report(progress, EMBEDDING_STAGE, 0, total, "item")
    for start in range(0, total, batch_size):
        batch = encoder.encode(texts[start : start + batch_size])
        collection.add(ids=[str(i) for i in range(start, start + len(batch))], embeddings=batch)
        parts.append(batch)
        report(progress, EMBEDDING_STAGE, start + len(batch), total, "item")
    vectors = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    manifest = {
        "format": FORMAT,
        "model": encoder.name,
        "items_hash": items_hash,
        "count": total,
        "dim": int(vectors.shape[1]),
        "store": store.name,
        "fingerprint": _fingerprint(vectors),
    }
    _write_json_atomically(folder / MANIFEST, manifest)
    for stale in folder.glob("store-*"):
        if stale != store:
            shutil.rmtree(stale, ignore_errors=True)
    return ItemIndex(store=store, collection=collection, vectors=vectors)


def open_or_build(
    folder: Path,
    texts: Sequence[str],
    encoder: Encoder,
    items_hash: str,
    progress: Progress | None = None,
) -> tuple[ItemIndex, str | None]:
    """The index, and None when it was reused or the reason it had to be (re)built."""
    try:
        return open_index(folder, encoder.name, items_hash, len(texts)), None
    except IndexUnusable as error:
        return build_index(folder, texts, encoder, items_hash, progress), str(error)
