"""Where datasets are read from: the --data-dir flag, then $CRS_DATA_DIR, then ../shared/data."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from crs.data.errors import DataNotFoundError

DATA_DIR_ENV = "CRS_DATA_DIR"
_REPO_ROOT = Path(__file__).resolve().parents[2]


def default_data_dirs(cwd: Path | None = None) -> list[Path]:
    """The places searched when neither a flag nor the environment variable names a directory."""
    cwd = cwd or Path.cwd()
    candidates = [cwd / ".." / "shared" / "data", _REPO_ROOT / ".." / "shared" / "data"]
    unique: list[Path] = []
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def resolve_data_dir(
    flag: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    environ = os.environ if environ is None else environ
    if flag:
        path = Path(flag).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(f"data directory given by --data-dir does not exist: {path}")
        return path
    if environ.get(DATA_DIR_ENV):
        path = Path(environ[DATA_DIR_ENV]).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(f"data directory given by ${DATA_DIR_ENV} does not exist: {path}")
        return path
    searched = default_data_dirs()
    for path in searched:
        if path.is_dir():
            return path
    looked = ", ".join(str(p) for p in searched)
    raise DataNotFoundError(
        f"no data directory found. Looked in: {looked}. Pass --data-dir DIR or set ${DATA_DIR_ENV}."
    )
