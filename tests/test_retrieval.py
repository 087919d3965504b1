"""The embedding retriever on the real model (all-MiniLM-L6-v2) and a real chromadb in tmp_path.

Catalogs are small (20 hand-written items, or the first 200 MovieLens items) so the file runs in
seconds once torch is imported. Corruption is simulated the ways it happens: an interrupted build,
a deleted marker or store, a garbled SQLite file, a collection that lost vectors. An interrupted
build is resumed: only the rest is embedded, and the result equals an uninterrupted build.

Tests taking `chroma_url` run twice: on the embedded store, and (`-m cluster`) on a real
`chroma run` server started on 127.0.0.1 for this module and stopped by its pid at the end.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crs.data import Dataset
from crs.progress import ProgressEvent
from crs.retrieval import MiniLmEncoder, Retriever, index_folder, open_retriever
from crs.retrieval import store as index_store
from crs.retrieval.encoder import Vectors
from crs.retrieval.server import LocalChromaServer, StoreUnreachable, check_reachable, free_port, http_client
from crs.retrieval.store import BUILDING, MANIFEST, collection_name
from crs.types import Attribute, Catalog, Item

pytest.importorskip("sentence_transformers")
pytest.importorskip("chromadb")

THEMES = {
    "horror": ["haunted house ghost story", "zombie outbreak terror", "vampire castle nightmare"],
    "space": [
        "astronauts on a mission to Mars",
        "starship battle in a distant galaxy",
        "alien first contact",
    ],
    "cooking": ["a chef opens a French restaurant", "baking competition with cakes", "street food tour"],
    "sports": ["underdog basketball team championship", "boxing comeback fight", "marathon runner"],
    "romance": ["two strangers fall in love in Paris", "wedding planner romance", "love letters"],
    "ocean": ["submarine deep sea dive", "shark attack at the beach", "pirates sailing the seas"],
}
ATTRIBUTES = tuple(Attribute(index=i, id=name, name=name) for i, name in enumerate(THEMES))


def theme_catalog(titles: dict[str, list[str]] = THEMES) -> Catalog:
    items: list[Item] = []
    for theme_index, (_, plots) in enumerate(titles.items()):
        for plot in plots:
            # The plot is a fact: the title is not embedded (a title's words are not what it is).
            n = len(items)
            items.append(
                Item(index=n, id=n, title=f"Item {n}", attributes=(theme_index,), facts=(("plot", plot),))
            )
    return Catalog(tuple(items), ATTRIBUTES)


class CountingEncoder:
    """The real model, counting how many texts it was asked to embed."""

    def __init__(self, inner: MiniLmEncoder) -> None:
        self.inner = inner
        self.texts = 0

    @property
    def name(self) -> str:
        return self.inner.name

    def encode(self, texts: Sequence[str]) -> Vectors:
        self.texts += len(texts)
        return self.inner.encode(texts)


@pytest.fixture(scope="module")
def model() -> MiniLmEncoder:
    return MiniLmEncoder()


@pytest.fixture
def encoder(model: MiniLmEncoder) -> CountingEncoder:
    return CountingEncoder(model)


@pytest.fixture(scope="module")
def movielens_200(movielens_dataset: Dataset) -> Catalog:
    catalog = movielens_dataset.catalog
    return Catalog(catalog.items[:200], catalog.attributes)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalChromaServer]:
    with LocalChromaServer(tmp_path_factory.mktemp("chroma") / "data") as server:
        yield server


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.cluster)])
def chroma_url(request: pytest.FixtureRequest) -> str:
    """ "" (the embedded store in tmp_path) or the URL of the module's chroma server, emptied."""
    if request.param == "embedded":
        return ""
    server: LocalChromaServer = request.getfixturevalue("chroma_server")
    client = http_client(server.url)
    for collection in client.list_collections():
        client.delete_collection(collection.name)
    return server.url


def open_themes(
    tmp_path: Path, encoder: CountingEncoder, catalog: Catalog | None = None, chroma_url: str = ""
) -> Retriever:
    return open_retriever(catalog or theme_catalog(), "themes", tmp_path, encoder, chroma_url=chroma_url)


def index_folder_name(encoder: CountingEncoder) -> str:
    return index_folder(Path("."), "ml", encoder).name


def theme_of(retriever: Retriever, item: int) -> str:
    return retriever.catalog.attributes[retriever.catalog.items[item].attributes[0]].name


@pytest.mark.parametrize(
    ("query", "theme"),
    [
        ("something scary with monsters", "horror"),
        ("science fiction among the stars", "space"),
        ("a movie about food and kitchens", "cooking"),
        ("an athlete trying to win", "sports"),
        ("a date night love story", "romance"),
    ],
)
def test_a_theme_query_returns_the_items_of_that_theme_first(
    tmp_path: Path, encoder: CountingEncoder, query: str, theme: str, chroma_url: str
) -> None:
    retriever = open_themes(tmp_path, encoder, chroma_url=chroma_url)
    top = retriever.rank(query, k=2)
    assert [theme_of(retriever, item) for item, _ in top] == [theme, theme], top
    assert top[0][1] >= top[1][1]


def test_candidates_restrict_the_ranking_and_both_backends_agree(
    tmp_path: Path, encoder: CountingEncoder, chroma_url: str
) -> None:
    retriever = open_themes(tmp_path, encoder, chroma_url=chroma_url)
    candidates = np.array([0, 3, 4, 9, 12])
    for backend in ("numpy", "chroma"):
        ranked = retriever.rank("rockets and planets", candidates=candidates, k=3, backend=backend)
        assert len(ranked) == 3 and {item for item, _ in ranked} <= set(candidates.tolist())
        assert theme_of(retriever, ranked[0][0]) == "space"
    whole_numpy = retriever.rank("rockets and planets", k=5, backend="numpy")
    whole_chroma = retriever.rank("rockets and planets", k=5, backend="chroma")
    assert [i for i, _ in whole_numpy] == [i for i, _ in whole_chroma]
    assert np.allclose([s for _, s in whole_numpy], [s for _, s in whole_chroma], atol=1e-5)


def test_scores_and_text_log_likelihood_agree_with_the_ranking(
    tmp_path: Path, encoder: CountingEncoder
) -> None:
    retriever = open_themes(tmp_path, encoder)
    scores = retriever.scores("deep underwater adventure")
    assert scores.shape == (retriever.catalog.n_items,) and scores.dtype == np.float64
    log_likelihood = retriever.text_log_likelihood("deep underwater adventure", temperature=0.05)
    assert np.isclose(np.logaddexp.reduce(log_likelihood), 0.0)  # a log-probability over items
    assert (
        int(np.argmax(log_likelihood))
        == int(np.argmax(scores))
        == retriever.rank("deep underwater adventure", k=1)[0][0]
    )
    with pytest.raises(ValueError, match="temperature"):
        retriever.text_log_likelihood("x", temperature=0)


def test_reopening_reuses_the_index_without_embedding_items_again(
    tmp_path: Path, encoder: CountingEncoder, movielens_200: Catalog, chroma_url: str
) -> None:
    progress: list[tuple[int, int]] = []
    first = open_retriever(
        movielens_200,
        "ml",
        tmp_path,
        encoder,
        progress=lambda event: progress.append((event.done, event.total)),
        chroma_url=chroma_url,
    )
    assert first.rebuilt is not None
    assert progress[0] == (0, 200) and progress[-1] == (200, 200) and len(progress) > 2  # in batches
    embedded = encoder.texts
    assert embedded == 200 + movielens_200.n_attributes

    calls = len(progress)
    again = open_retriever(
        movielens_200,
        "ml",
        tmp_path,
        encoder,
        progress=lambda event: progress.append((event.done, event.total)),
        chroma_url=chroma_url,
    )
    assert again.rebuilt is None
    assert encoder.texts == embedded  # neither items nor attributes were embedded again
    assert len(progress) == calls  # no progress: nothing was built
    assert np.allclose(again.item_vectors, first.item_vectors, atol=1e-6)
    assert np.array_equal(again.attribute_vectors, first.attribute_vectors)


def test_a_changed_catalog_is_rebuilt(tmp_path: Path, encoder: CountingEncoder, chroma_url: str) -> None:
    first = open_themes(tmp_path, encoder, chroma_url=chroma_url)
    changed = {**THEMES, "cooking": ["a detective solves a murder", *THEMES["cooking"][1:]]}
    retriever = open_themes(tmp_path, encoder, theme_catalog(changed), chroma_url=chroma_url)
    assert retriever.rebuilt is not None
    assert retriever.rank("crime investigation whodunit", k=1)[0][0] == 6
    if not chroma_url:
        assert "items_hash" in retriever.rebuilt
        stores = list((next((tmp_path / "retrieval").iterdir())).glob("store-*"))
        assert len(stores) == 1  # the old store was removed once the new one was committed
    else:
        # A collection per version of the catalog: a replica still on the old one keeps its index.
        assert retriever.index.store != first.index.store
        assert open_themes(tmp_path, encoder, chroma_url=chroma_url).rebuilt is None


def _delete_marker(folder: Path) -> None:
    (folder / MANIFEST).unlink()


def _delete_store(folder: Path) -> None:
    import shutil

    for store in folder.glob("store-*"):
        shutil.rmtree(store)


def _garble_sqlite(folder: Path) -> None:
    (sqlite,) = folder.glob("store-*/chroma.sqlite3")
    data = bytearray(sqlite.read_bytes())
    rng = np.random.default_rng(0)
    data[100:] = rng.integers(0, 256, size=len(data) - 100, dtype=np.uint8).tobytes()
    sqlite.write_bytes(bytes(data))


def _truncate_sqlite(folder: Path) -> None:
    (sqlite,) = folder.glob("store-*/chroma.sqlite3")
    sqlite.write_bytes(sqlite.read_bytes()[:2048])


def _lose_vectors(folder: Path) -> None:
    import chromadb
    from chromadb.config import Settings

    (store,) = folder.glob("store-*")
    client = chromadb.PersistentClient(path=str(store), settings=Settings(anonymized_telemetry=False))
    client.get_collection("items").delete(ids=["0", "1"])


@pytest.mark.parametrize(
    "damage", [_delete_marker, _delete_store, _garble_sqlite, _truncate_sqlite, _lose_vectors]
)
def test_a_damaged_index_is_rebuilt_not_used(
    tmp_path: Path, encoder: CountingEncoder, damage: object
) -> None:
    from chromadb.api.client import SharedSystemClient

    open_themes(tmp_path, encoder)
    (folder,) = (tmp_path / "retrieval").iterdir()
    assert callable(damage)
    damage(folder)
    # A new process would not share chromadb's per-path cache of open databases.
    SharedSystemClient.clear_system_cache()
    before = encoder.texts
    retriever = open_themes(tmp_path, encoder)
    assert retriever.rebuilt is not None
    assert encoder.texts - before == retriever.catalog.n_items  # items embedded again
    assert theme_of(retriever, retriever.rank("ghosts and monsters", k=1)[0][0]) == "horror"
    assert open_themes(tmp_path, encoder).rebuilt is None  # and the rebuilt index is reused


def test_an_interrupted_build_is_never_used_and_is_resumed(
    tmp_path: Path, encoder: CountingEncoder, movielens_200: Catalog, chroma_url: str
) -> None:
    def interrupt(event: ProgressEvent) -> None:
        if event.done >= 128:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        open_retriever(movielens_200, "ml", tmp_path, encoder, progress=interrupt, chroma_url=chroma_url)
    assert encoder.texts == 128  # one batch embedded and stored when the interruption came
    folder = tmp_path / "retrieval" / index_folder_name(encoder)
    if not chroma_url:
        assert not (folder / MANIFEST).exists() and (folder / BUILDING).exists()
    retriever = open_retriever(movielens_200, "ml", tmp_path, encoder, chroma_url=chroma_url)
    assert retriever.rebuilt is not None
    assert ("manifest" if not chroma_url else "not finished") in retriever.rebuilt
    assert retriever.item_vectors.shape == (200, 384)
    assert encoder.texts == 200 + movielens_200.n_attributes  # the first batch was not embedded again
    if not chroma_url:
        assert len(list(folder.glob("store-*"))) == 1 and not (folder / BUILDING).exists()


def test_nearest_attributes_maps_words_the_catalog_does_not_use(
    tmp_path: Path, encoder: CountingEncoder, movielens_200: Catalog, chroma_url: str
) -> None:
    # Only the attribute names matter here: 20 items keep the build short.
    catalog = Catalog(movielens_200.items[:20], movielens_200.attributes)
    retriever = open_retriever(catalog, "ml", tmp_path, encoder, chroma_url=chroma_url)
    names = [
        retriever.catalog.attributes[a].name.lower() for a, _ in retriever.nearest_attributes("scary", k=3)
    ]
    assert "horror" in names[:2], names
    funny = [
        retriever.catalog.attributes[a].name.lower()
        for a, _ in retriever.nearest_attributes("hilarious", k=3)
    ]
    assert {"funny", "comedy", "humorous"} & set(funny), funny
    similarities = [s for _, s in retriever.nearest_attributes("oldies", k=5)]
    assert similarities == sorted(similarities, reverse=True)


def test_importing_the_package_loads_no_heavy_modules() -> None:
    code = (
        "import sys, crs.retrieval\n"
        "print(sorted(m for m in ('torch', 'chromadb', 'sentence_transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


class FailingEncoder(CountingEncoder):
    """The real model, failing on the call after `batches` calls: a build killed half way."""

    def __init__(self, inner: MiniLmEncoder, batches: int) -> None:
        super().__init__(inner)
        self.batches = batches

    def encode(self, texts: Sequence[str]) -> Vectors:
        if self.batches == 0:
            raise KeyboardInterrupt
        self.batches -= 1
        return super().encode(texts)


def test_a_resumed_build_embeds_only_the_rest_and_equals_an_uninterrupted_one(
    tmp_path: Path, model: MiniLmEncoder, chroma_url: str
) -> None:
    texts = [plot for plots in THEMES.values() for plot in plots]  # 18 texts, batches of 4
    key = "items-hash"
    failing = FailingEncoder(model, batches=2)
    with pytest.raises(KeyboardInterrupt):
        index_store.build_index(
            tmp_path / "resumed", texts, failing, key, batch_size=4, chroma_url=chroma_url
        )
    assert failing.texts == 8
    with pytest.raises(index_store.IndexUnusable):  # half a build is never an index
        index_store.open_index(tmp_path / "resumed", model.name, key, len(texts), chroma_url)

    resuming = CountingEncoder(model)
    events: list[tuple[int, int, str]] = []
    resumed, reason = index_store.open_or_build(
        tmp_path / "resumed",
        texts,
        resuming,
        key,
        lambda event: events.append((event.done, event.total, event.note)),
        chroma_url,
        batch_size=4,
    )
    assert reason is not None and resuming.texts == len(texts) - 8  # only the rest was embedded
    assert events[0][:2] == (0, 18) and events[-1] == (18, 18, "resumed: 8 were stored")
    straight, _ = index_store.open_or_build(tmp_path / "straight", texts, model, key, None, chroma_url, 4)
    assert np.allclose(resumed.vectors, straight.vectors, atol=1e-5)
    reopened = index_store.open_index(tmp_path / "resumed", model.name, key, len(texts), chroma_url)
    assert np.allclose(reopened.vectors, straight.vectors, atol=1e-5)  # verified: count and fingerprint
    if not chroma_url:
        assert not (tmp_path / "resumed" / BUILDING).exists()
        assert len(list((tmp_path / "resumed").glob("store-*"))) == 1


def test_collection_names_are_valid_for_chroma_and_distinct_per_catalog() -> None:
    names = {
        collection_name(key, digest)
        for key in ("movielens-0123456789", "a/b c:ü" * 100, "..", "lastfm_star-0123456789")
        for digest in ("a" * 64, "b" * 64)
    }
    assert len(names) == 8
    for name in names:
        assert 3 <= len(name) <= 512 and name[0].isalnum() and name[-1].isalnum()
        assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name), name


def test_an_unreachable_server_is_one_line_naming_it_within_seconds() -> None:
    import time

    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(StoreUnreachable, match=f"chroma server at {url} is not reachable"):
        check_reachable(url, timeout_s=2.0)
    assert time.monotonic() - started < 5
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        check_reachable("localhost:8000")


def test_crs_chat_refuses_an_unreachable_or_malformed_chroma_url(tmp_path: Path, capsys: Any) -> None:
    from crs.cli import main

    url = f"http://127.0.0.1:{free_port()}"
    assert main(["chat", "--chroma-url", url, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"chroma server at {url} is not reachable" in err
    assert main(["chat", "--chroma-url", "ftp://host", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--chroma-url" in err and "http://HOST:PORT" in err


def _server_lose_vectors(collection: Any) -> None:
    collection.delete(ids=["0", "1"])


def _server_forge_fingerprint(collection: Any) -> None:
    metadata = dict(collection.metadata)
    metadata["crs_fingerprint"] = "[" + ", ".join(["0.5"] * 768) + "]"
    collection.modify(metadata=metadata)


def _server_change_a_vector(collection: Any) -> None:
    vector = np.zeros(384, dtype=np.float32)
    vector[0] = 1.0
    collection.update(ids=["3"], embeddings=vector[None, :])


@pytest.mark.cluster
@pytest.mark.parametrize("damage", [_server_lose_vectors, _server_forge_fingerprint, _server_change_a_vector])
def test_a_damaged_server_index_is_rebuilt_from_nothing(
    tmp_path: Path, encoder: CountingEncoder, chroma_server: LocalChromaServer, damage: Any
) -> None:
    client = http_client(chroma_server.url)
    for collection in client.list_collections():
        client.delete_collection(collection.name)
    first = open_themes(tmp_path, encoder, chroma_url=chroma_server.url)
    name = first.index.store.rsplit("/", 1)[-1]
    damage(client.get_collection(name))
    before = encoder.texts
    retriever = open_themes(tmp_path, encoder, chroma_url=chroma_server.url)
    assert retriever.rebuilt is not None
    assert encoder.texts - before == retriever.catalog.n_items  # committed: never resumed
    assert np.allclose(retriever.item_vectors, first.item_vectors, atol=1e-5)
    assert open_themes(tmp_path, encoder, chroma_url=chroma_server.url).rebuilt is None
