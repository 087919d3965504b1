"""Named datasets and the entry point `load_dataset(name_or_path, data_dir)`."""

from __future__ import annotations

import os
from pathlib import Path

from crs.data.dataset import Dataset
from crs.data.errors import DataNotFoundError
from crs.data.location import resolve_data_dir


def load_lastfm(data_dir: Path, **_: object) -> Dataset:
    from crs.data.scpr import load_scpr

    return load_scpr(data_dir / "lastfm", "lastfm")


def load_lastfm_star(data_dir: Path, **_: object) -> Dataset:
    from crs.data.scpr import load_scpr

    return load_scpr(data_dir / "lastfm_star", "lastfm_star")


def load_movielens(data_dir: Path, split_seed: int = 0, **_: object) -> Dataset:
    from crs.data.movielens import load_movielens as load

    return load(data_dir / "movielens-small", split_seed=split_seed)


def load_redial(data_dir: Path, split_seed: int = 0, **_: object) -> Dataset:
    from crs.data.redial_dataset import load_redial as load

    return load(data_dir, split_seed=split_seed)


def load_dataset(
    name: str, data_dir: str | os.PathLike[str] | None = None, *, split_seed: int = 0
) -> Dataset:
    """A registered dataset by name (plug-ins included), a catalog in the generic format by folder
    path, or a plug-in loader named "package.module:function" (called as the built-in loaders are:
    with the data directory and `split_seed`)."""
    from crs.registry import DATASETS, is_import_path

    path = Path(name).expanduser()
    if name in DATASETS.names() or (is_import_path(name) and not path.is_dir()):
        return DATASETS.get(name)(resolve_data_dir(data_dir), split_seed=split_seed)
    if path.is_dir():
        from crs.data.generic import load_generic

        return load_generic(path)
    raise DataNotFoundError(
        f"unknown dataset {name!r}: neither a registered name ({', '.join(DATASETS.names())}) "
        "nor a folder in the generic catalog format"
    )
