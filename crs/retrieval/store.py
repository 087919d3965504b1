"""The persistent item index: a verified chromadb collection, embedded on disk or on a server.

**Embedded** (the default): one folder per dataset and model, under the cache directory::

    manifest.json        written last, atomically: format, model, content hash, count, vector fingerprint
    building.json        while a build is under way: the store it is filling (what a resume continues)
    store-<nonce>/       the chromadb PersistentClient folder the manifest names
    attributes.npz       attribute-name vectors (see `crs.retrieval.retriever`)

Why a fresh `store-<nonce>` folder for every build rather than rebuilding in place: chromadb keeps
one shared system per path for the life of the process, so deleting and re-creating a store at the
same path can leave a stale SQLite connection behind. A new folder per build sidesteps that, and
makes the manifest the single commit point: a store no manifest names is never used; it is either
resumed (the one `building.json` names, for the same model and texts) or removed after the next
successful build.

**Server** (`chroma_url`, e.g. a `chroma run` that several chat replicas share): there is no local
folder, so everything that vouches for the index lives with the collection, in its metadata
(format, model, items hash, count, dimension, fingerprint, and a state: "building" until the
build is verified, then "complete"). The collection's name holds the folder's name and the items
hash (`collection_name`), so two catalogs, two models or two versions of one catalog never share
a collection, and a replica with an older catalog never rebuilds over a newer one's index.

**Resumable builds**: texts are embedded in batches and each batch is added as soon as it is
embedded; a build that finds an unfinished one for the same model and texts (a `building.json`,
or a collection in state "building") skips the ids already stored and embeds only the rest. A
finished build, fresh or resumed, reads every vector back and checks it (see below) before it
commits; a committed index that later fails a check is never resumed, but built again from
nothing.

Opening never trusts the store: the model and the hash of the current item texts must match, the
collection must hold exactly one unit-length vector per item, their fingerprint (column sums) must
match the one recorded at build time, and the HNSW index must answer a self-query. Anything else
(missing marker, garbled SQLite, deleted folder, wrong count, unfinished build) raises
`IndexUnusable` and the caller builds. Two processes may build the same server index at once (a
batch that both embed is stored twice with the same vectors); on disk, only one should.
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
from crs.retrieval.server import http_client

MANIFEST = "manifest.json"
BUILDING = "building.json"
FORMAT = 1
COLLECTION = "items"
BATCH_SIZE = 128  # texts embedded and added at a time: what an interruption can lose
READ_PAGE = 5000  # vectors read back per request (chromadb's largest batch is 5,461)

EMBEDDING_STAGE = "embedding the catalog (once)"
COMPLETE, UNFINISHED = "complete", "building"


class IndexUnusable(Exception):
    """An index that must not be used: absent, half-written, stale or corrupt."""


@dataclass(frozen=True, eq=False)
class ItemIndex:
    """An opened, verified index: the chromadb collection and the same vectors in memory."""

    store: str  # the embedded store's folder, or "<server URL>/<collection name>"
    collection: Any  # chromadb.Collection; Any keeps chromadb out of the import graph
    vectors: Vectors  # (n_items, dim), row i is item i, L2-normalised


def _client(store: Path) -> Any:
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(store), settings=Settings(anonymized_telemetry=False))


def collection_name(key: str, items_hash: str) -> str:
    """The server collection of the index `key` (its folder's name: dataset and model hash) for
    these texts: 3-512 characters of [a-zA-Z0-9_-], starting and ending with a letter or digit."""
    # Periods become "_" too: older chroma versions refuse ".." inside a name.
    flat = "".join(c if (c.isalnum() and c.isascii()) or c in "-_" else "_" for c in key).strip("_-")
    return f"crs-{flat[:400] or 'index'}-{items_hash[:16]}"


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


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_vectors(collection: Any, n_items: int, dim: Any) -> Vectors:
    """Every vector of the collection in item order, checked: ids 0..n-1 exactly, finite, unit
    length. Read page by page by id, so a million vectors never travel in one answer."""
    count = collection.count()
    if count != n_items:
        raise IndexUnusable(f"collection holds {count} vectors, expected {n_items}")
    if not isinstance(dim, int) or dim < 1:
        raise IndexUnusable(f"recorded dimension {dim!r} is not a positive whole number")
    vectors = np.empty((n_items, dim), dtype=np.float32)
    for start in range(0, n_items, READ_PAGE):
        wanted = [str(i) for i in range(start, min(start + READ_PAGE, n_items))]
        got = collection.get(ids=wanted, include=["embeddings"])
        page = np.asarray(got["embeddings"], dtype=np.float32)
        if len(got["ids"]) != len(wanted) or page.shape != (len(wanted), dim):
            raise IndexUnusable(f"store holds vectors of shape {page.shape} with unexpected ids")
        rows = np.asarray([int(i) for i in got["ids"]], dtype=np.int64)
        vectors[rows] = page
    norms = np.linalg.norm(vectors, axis=1)
    if not np.isfinite(vectors).all() or np.abs(norms - 1.0).max() > SUM_TOLERANCE:
        raise IndexUnusable("store holds vectors that are not unit length")
    return vectors


def _verified(collection: Any, n_items: int, dim: Any, fingerprint: Any) -> Vectors:
    """The collection's vectors, once they and its HNSW index pass every check."""
    try:
        vectors = _read_vectors(collection, n_items, dim)
    except IndexUnusable:
        raise
    except Exception as error:  # chromadb raises many types for a garbled SQLite file
        raise IndexUnusable(f"store cannot be read ({type(error).__name__}: {error})") from None
    recorded = np.asarray(fingerprint, dtype=np.float64)
    if recorded.shape != (2 * vectors.shape[1],) or not np.allclose(
        _fingerprint(vectors), recorded, rtol=0, atol=SUM_TOLERANCE
    ):
        raise IndexUnusable("vectors differ from the ones written at build time")
    _check_self_query(collection, vectors)
    return vectors


def _check_self_query(collection: Any, vectors: Vectors) -> None:
    try:
        # The HNSW files are separate from the SQLite rows read above: one self-query checks them.
        found = collection.query(query_embeddings=vectors[:1], n_results=1, include=["distances"])
        distance = float(found["distances"][0][0])
    except Exception as error:
        raise IndexUnusable(f"vector index cannot be queried ({type(error).__name__}: {error})") from None
    if distance > SUM_TOLERANCE:
        raise IndexUnusable(f"vector index answers a self-query at distance {distance:.3g}")


def _checked_build(
    collection: Any, n_items: int, embedded: dict[int, Vectors]
) -> tuple[Vectors, list[float]]:
    """What a finished build stored, read back and checked (ids, unit length, equal to what was
    embedded in this run, HNSW answering), with its fingerprint, before it is committed."""
    dim = int(next(iter(embedded.values())).shape[0]) if embedded else _stored_dim(collection)
    vectors = _read_vectors(collection, n_items, dim)
    if embedded:
        rows = np.fromiter(embedded, dtype=np.int64, count=len(embedded))
        if not np.allclose(vectors[rows], np.stack(list(embedded.values())), rtol=0, atol=SUM_TOLERANCE):
            raise IndexUnusable("vectors read back differ from the ones just embedded")
    _check_self_query(collection, vectors)
    return vectors, _fingerprint(vectors)


def _stored_dim(collection: Any) -> int:
    got = collection.get(ids=["0"], include=["embeddings"])
    return int(np.asarray(got["embeddings"]).shape[1])


class BuildFailed(RuntimeError):
    """A finished build whose stored vectors failed their checks; its store was discarded, so the
    next build starts from nothing."""


def _identity(model: str, items_hash: str, n_items: int) -> dict[str, Any]:
    return {"format": FORMAT, "model": model, "items_hash": items_hash, "count": n_items}


def _server_metadata(
    identity: dict[str, Any], state: str, dim: int = 0, fingerprint: Any = ()
) -> dict[str, Any]:
    # Collection metadata takes only scalars: the fingerprint travels as JSON text.
    return {
        **{f"crs_{key}": value for key, value in identity.items()},
        "crs_state": state,
        "crs_dim": dim,
        "crs_fingerprint": json.dumps(list(fingerprint)),
    }


def open_index(folder: Path, model: str, items_hash: str, n_items: int, chroma_url: str = "") -> ItemIndex:
    """The verified index of `folder` (embedded) or of its collection on the chroma server at
    `chroma_url`, or `IndexUnusable` saying why it cannot be used. An unreachable server raises
    `crs.retrieval.server.StoreUnreachable` (a ValueError), not `IndexUnusable`."""
    if chroma_url:
        return _open_on_server(chroma_url, folder.name, model, items_hash, n_items)
    manifest = _read_json(folder / MANIFEST)
    if manifest is None:
        raise IndexUnusable("no readable manifest")
    for key, value in _identity(model, items_hash, n_items).items():
        if manifest.get(key) != value:
            raise IndexUnusable(f"manifest {key} is {manifest.get(key)!r}, expected {value!r}")
    store = folder / str(manifest.get("store", ""))
    # PersistentClient would silently create an empty store at a missing path.
    if not manifest.get("store") or not (store / "chroma.sqlite3").is_file():
        raise IndexUnusable(f"store folder {store.name!r} is missing")
    try:
        collection = _client(store).get_collection(COLLECTION)
    except Exception as error:
        raise IndexUnusable(f"store cannot be read ({type(error).__name__}: {error})") from None
    vectors = _verified(collection, n_items, manifest.get("dim"), manifest.get("fingerprint"))
    return ItemIndex(store=str(store), collection=collection, vectors=vectors)


def _open_on_server(url: str, key: str, model: str, items_hash: str, n_items: int) -> ItemIndex:
    client = http_client(url)
    name = collection_name(key, items_hash)
    try:
        collection = client.get_collection(name)
    except Exception as error:
        raise IndexUnusable(f"no collection {name!r} on {url} ({type(error).__name__})") from None
    metadata = dict(collection.metadata or {})
    for key_, value in _identity(model, items_hash, n_items).items():
        if metadata.get(f"crs_{key_}") != value:
            raise IndexUnusable(f"collection {key_} is {metadata.get(f'crs_{key_}')!r}, expected {value!r}")
    if metadata.get("crs_state") != COMPLETE:
        raise IndexUnusable(f"collection {name!r} is not finished (state {metadata.get('crs_state')!r})")
    try:
        fingerprint = json.loads(str(metadata.get("crs_fingerprint")))
    except ValueError:
        raise IndexUnusable("collection fingerprint is not readable") from None
    vectors = _verified(collection, n_items, metadata.get("crs_dim"), fingerprint)
    return ItemIndex(store=f"{url}/{name}", collection=collection, vectors=vectors)


def _fill(
    collection: Any,
    texts: Sequence[str],
    encoder: Encoder,
    progress: Progress | None,
    batch_size: int,
) -> dict[int, Vectors]:
    """Embed and add, batch by batch, every text whose id the collection lacks; the vectors
    embedded now, by item index (what the read-back is compared with)."""
    total = len(texts)
    embedded: dict[int, Vectors] = {}
    report(progress, EMBEDDING_STAGE, 0, total, "item")
    for start in range(0, total, batch_size):
        ids = [str(i) for i in range(start, min(start + batch_size, total))]
        stored = set(collection.get(ids=ids, include=[])["ids"])
        missing = [int(i) for i in ids if i not in stored]
        if missing:
            vectors = encoder.encode([texts[i] for i in missing])
            # upsert, not add: another builder of the same server index may have added them since.
            collection.upsert(ids=[str(i) for i in missing], embeddings=vectors)
            embedded.update(zip(missing, vectors, strict=True))
        done = start + len(ids)
        resumed = done - len(embedded)  # ids found stored by an earlier, interrupted build
        note = f"resumed: {resumed:,} were stored" if resumed else ""
        report(progress, EMBEDDING_STAGE, done, total, "item", note)
    return embedded


def _resumable_store(folder: Path, identity: dict[str, Any]) -> tuple[Path, Any] | None:
    """The unfinished store of an interrupted build of the same texts, if there is one that can
    be read; never the store a manifest has committed (that one failed a check: built anew)."""
    building = _read_json(folder / BUILDING)
    manifest = _read_json(folder / MANIFEST) or {}
    if building is None or any(building.get(k) != v for k, v in identity.items()):
        return None
    name = str(building.get("store", ""))
    store = folder / name
    if (
        not name.startswith("store-")
        or name == manifest.get("store")
        or not (store / "chroma.sqlite3").is_file()
    ):
        return None
    try:
        return store, _client(store).get_collection(COLLECTION)
    except Exception:  # an unreadable half-built store: start a new one
        return None


def build_index(
    folder: Path,
    texts: Sequence[str],
    encoder: Encoder,
    items_hash: str,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
    chroma_url: str = "",
) -> ItemIndex:
    """Embed `texts` in batches into the store, resuming an interrupted build of the same texts,
    then verify everything stored and commit (the manifest, or the collection's state).

    `progress` hears of every batch (ids already stored count as done); an exception it raises
    (or any other) stops the build, and what was added so far is kept for the next build to
    resume, never used as an index."""
    if not texts:
        raise ValueError("cannot build an index of no texts")
    identity = _identity(encoder.name, items_hash, len(texts))
    if chroma_url:
        return _build_on_server(chroma_url, folder.name, texts, encoder, identity, progress, batch_size)
    folder.mkdir(parents=True, exist_ok=True)
    resumed = _resumable_store(folder, identity)
    if resumed is None:
        store = folder / f"store-{uuid.uuid4().hex[:12]}"
        _write_json_atomically(folder / BUILDING, {**identity, "store": store.name})
        collection = _client(store).create_collection(
            COLLECTION, metadata={"hnsw:space": "cosine"}, embedding_function=None
        )
    else:
        store, collection = resumed
    embedded = _fill(collection, texts, encoder, progress, batch_size)
    try:
        vectors, fingerprint = _checked_build(collection, len(texts), embedded)
    except IndexUnusable as error:
        (folder / BUILDING).unlink(missing_ok=True)  # never resumed: the next build starts anew
        raise BuildFailed(f"the index just built in {store} failed its check: {error}") from None
    _write_json_atomically(
        folder / MANIFEST,
        {**identity, "dim": int(vectors.shape[1]), "store": store.name, "fingerprint": fingerprint},
    )
    (folder / BUILDING).unlink(missing_ok=True)
    for stale in folder.glob("store-*"):
        if stale != store:
            shutil.rmtree(stale, ignore_errors=True)
    return ItemIndex(store=str(store), collection=collection, vectors=vectors)


def _build_on_server(
    url: str,
    key: str,
    texts: Sequence[str],
    encoder: Encoder,
    identity: dict[str, Any],
    progress: Progress | None,
    batch_size: int,
) -> ItemIndex:
    client = http_client(url)
    name = collection_name(key, identity["items_hash"])
    unfinished = _server_metadata(identity, UNFINISHED)
    try:
        collection = client.get_collection(name)
    except Exception:  # chromadb's NotFoundError; an unreachable server fails just below too
        collection = None
    if collection is not None:
        metadata = dict(collection.metadata or {})
        same = all(metadata.get(f"crs_{k}") == v for k, v in identity.items())
        if not same or metadata.get("crs_state") != UNFINISHED:
            # A committed collection that failed its checks (or another format): built anew.
            client.delete_collection(name)
            collection = None
    if collection is None:
        collection = client.get_or_create_collection(
            name, metadata={"hnsw:space": "cosine", **unfinished}, embedding_function=None
        )
    embedded = _fill(collection, texts, encoder, progress, batch_size)
    try:
        vectors, fingerprint = _checked_build(collection, len(texts), embedded)
    except IndexUnusable as error:
        client.delete_collection(name)  # never resumed: the next build starts anew
        raise BuildFailed(f"the index just built in {url}/{name} failed its check: {error}") from None
    collection.modify(metadata=_server_metadata(identity, COMPLETE, int(vectors.shape[1]), fingerprint))
    return ItemIndex(store=f"{url}/{name}", collection=collection, vectors=vectors)


def open_or_build(
    folder: Path,
    texts: Sequence[str],
    encoder: Encoder,
    items_hash: str,
    progress: Progress | None = None,
    chroma_url: str = "",
    batch_size: int = BATCH_SIZE,
) -> tuple[ItemIndex, str | None]:
    """The index, and None when it was reused or the reason it had to be (re)built. `chroma_url`:
    keep it on that chroma server (collection `collection_name(folder.name, items_hash)`) instead
    of in `folder`."""
    try:
        return open_index(folder, encoder.name, items_hash, len(texts), chroma_url), None
    except IndexUnusable as error:
        index = build_index(folder, texts, encoder, items_hash, progress, batch_size, chroma_url)
        return index, str(error)
