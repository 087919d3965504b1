"""Shared fixtures: the real datasets (loaded once per test session) and a tiny hand-built catalog."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crs.data import Dataset, load_dataset
from crs.data.location import resolve_data_dir
from crs.settings import load_settings
from crs.types import Attribute, Catalog, Interactions, Item, User

# Before any test imports gradio: no usage reports from the test machine.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

TINY_ATTRIBUTES = ("rock", "jazz", "80s", "90s", "live")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return resolve_data_dir()


@pytest.fixture(scope="session")
def lastfm_star(data_dir: Path) -> Dataset:
    return load_dataset("lastfm_star", data_dir)


@pytest.fixture(scope="session")
def lastfm(data_dir: Path) -> Dataset:
    return load_dataset("lastfm", data_dir)


@pytest.fixture(scope="session")
def movielens_dataset(data_dir: Path) -> Dataset:
    return load_dataset("movielens", data_dir)


def make_tiny_dataset() -> Dataset:
    """Five items over five attributes. User 0 wants item 3 (jazz, 90s, live); user 1's history
    makes item 2 more popular than item 3, which decides the ranking when both remain."""
    attributes = tuple(Attribute(index=i, id=i, name=name) for i, name in enumerate(TINY_ATTRIBUTES))
    item_attributes = [(0, 2), (0, 3), (1, 2), (1, 3, 4), (0, 2, 4)]
    items = tuple(
        Item(index=i, id=i, title=f"item {i}", attributes=attrs) for i, attrs in enumerate(item_attributes)
    )
    users = {0: User(id=0, friends=(1,)), 1: User(id=1, friends=(0,))}
    splits = {
        "train": Interactions("train", {0: (), 1: (2, 0)}),
        "valid": Interactions("valid", {0: (3,)}),
    }
    return Dataset(
        name="tiny", catalog=Catalog(items, attributes), users=users, splits=splits, source=Path("tiny")
    )


@pytest.fixture
def tiny() -> Dataset:
    return make_tiny_dataset()


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Trained models go to a per-session folder, never to the user's ~/.cache (also for subprocesses)."""
    from crs.scoring import CACHE_ENV

    path = tmp_path_factory.mktemp("model-cache")
    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(path)
    yield path
    if previous is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = previous


@pytest.fixture(scope="session")
def movie_bot(data_dir: Path) -> Any:
    """The MovieLens chat (read-only, shared like the web app shares it between visitors)."""
    from ui.app import build_bot

    return build_bot(load_settings(overrides={"chat.dataset": "movielens", "data.dir": str(data_dir)}))


@pytest.fixture(scope="session")
def app_url(movie_bot: Any) -> Iterator[str]:
    """The browser app (chat and policy lab) served on 127.0.0.1 for the whole session."""
    from ui.app import build_demo

    demo = build_demo(movie_bot)
    demo.launch(server_name="127.0.0.1", share=False, prevent_thread_lock=True, quiet=True)
    try:
        yield str(demo.local_url)
    finally:
        demo.close()
