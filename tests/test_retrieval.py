"""The embedding retriever on the real model (all-MiniLM-L6-v2) and a real chromadb in tmp_path.

Catalogs are small (20 hand-written items, or the first 200 MovieLens items) so the file runs in
seconds once torch is imported. Corruption is simulated the ways it happens: an interrupted build,
a deleted marker or store, a garbled SQLite file, a collection that lost vectors.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from crs.data import Dataset
from crs.progress import ProgressEvent
from crs.retrieval import MiniLmEncoder, Retriever, open_retriever
from crs.retrieval.encoder import Vectors
from crs.retrieval.store import MANIFEST
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
    items = []
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


def open_themes(tmp_path: Path, encoder: CountingEncoder, catalog: Catalog | None = None) -> Retriever:
    return open_retriever(catalog or theme_catalog(), "themes", tmp_path, encoder)


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
    tmp_path: Path, encoder: CountingEncoder, query: str, theme: str
) -> None:
    retriever = open_themes(tmp_path, encoder)
    top = retriever.rank(query, k=2)
    assert [theme_of(retriever, item) for item, _ in top] == [theme, theme], top
    assert top[0][1] >= top[1][1]


def test_candidates_restrict_the_ranking_and_both_backends_agree(
    tmp_path: Path, encoder: CountingEncoder
) -> None:
    retriever = open_themes(tmp_path, encoder)
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
    tmp_path: Path, encoder: CountingEncoder, movielens_200: Catalog
) -> None:
    progress: list[tuple[int, int]] = []
    first = open_retriever(
        movielens_200,
        "ml",
        tmp_path,
        encoder,
        progress=lambda event: progress.append((event.done, event.total)),
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
    )
    assert again.rebuilt is None
    assert encoder.texts == embedded  # neither items nor attributes were embedded again
    assert len(progress) == calls  # no progress: nothing was built
    assert np.allclose(again.item_vectors, first.item_vectors, atol=1e-6)
    assert np.array_equal(again.attribute_vectors, first.attribute_vectors)


def test_a_changed_catalog_is_rebuilt(tmp_path: Path, encoder: CountingEncoder) -> None:
    open_themes(tmp_path, encoder)
    changed = {**THEMES, "cooking": ["a detective solves a murder", *THEMES["cooking"][1:]]}
    retriever = open_themes(tmp_path, encoder, theme_catalog(changed))
    assert retriever.rebuilt is not None and "items_hash" in retriever.rebuilt
    assert retriever.rank("crime investigation whodunit", k=1)[0][0] == 6
    stores = list((next((tmp_path / "retrieval").iterdir())).glob("store-*"))
    assert len(stores) == 1  # the old store was removed once the new one was committed


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


def test_an_interrupted_build_is_never_used(
    tmp_path: Path, encoder: CountingEncoder, movielens_200: Catalog
) -> None:
    def interrupt(event: ProgressEvent) -> None:
        if event.done >= 128:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        open_retriever(movielens_200, "ml", tmp_path, encoder, progress=interrupt)
    (folder,) = (tmp_path / "retrieval").iterdir()
    assert not (folder / MANIFEST).exists()
    retriever = open_retriever(movielens_200, "ml", tmp_path, encoder)
    assert retriever.rebuilt is not None and "manifest" in retriever.rebuilt
    assert retriever.item_vectors.shape == (200, 384)
    assert len(list(folder.glob("store-*"))) == 1  # the half-written store was cleaned up


def test_nearest_attributes_maps_words_the_catalog_does_not_use(
    tmp_path: Path, encoder: CountingEncoder, movielens_200: Catalog
) -> None:
    # Only the attribute names matter here: 20 items keep the build short.
    catalog = Catalog(movielens_200.items[:20], movielens_200.attributes)
    retriever = open_retriever(catalog, "ml", tmp_path, encoder)
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
