"""Trained parameters on disk: numpy arrays plus JSON metadata in one .npz, written atomically.

Used by every component that learns (the BPR scorer, learned policies). A file that cannot be
read, or whose metadata does not match what the caller expects, raises `ArtifactError`; callers
then retrain instead of using it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


class ArtifactError(ValueError):
    """A saved artifact that cannot be used: unreadable, truncated, of another format or other data."""


class CacheWriteError(OSError):
    """The cache folder cannot take a file (not a folder, not writable, a folder in the file's
    place); the message names the path and says how to choose another cache."""


# A temporary file this old was left by a writer that was killed (a write takes seconds): removed.
# Younger ones may belong to another process writing the same artifact right now, and are kept.
STALE_TEMPORARY_SECONDS = 3600.0


def save_arrays(path: Path, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Write atomically (temporary file, then rename): `path` never holds a half-written file.
    Temporaries of `path` that killed writers left behind are removed once this one succeeds."""
    if "meta" in arrays:
        raise ValueError('"meta" is reserved for the metadata')
    # Any-typed: numpy's stubs would take an "allow_pickle" key among the arrays for the flag.
    payload: dict[str, Any] = {"meta": np.array(json.dumps(dict(meta), sort_keys=True)), **arrays}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _cache_error(path, error) from None
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **payload)
            file.flush()
            os.fsync(file.fileno())  # a crash after the rename must not leave an empty file
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _cache_error(path, error) from None
        raise
    remove_stale_temporaries(path)


def temporaries(path: Path) -> list[Path]:
    """The temporary files `save_arrays` writes `path` through (none once a write has ended,
    unless its process was killed). They never carry the artifact's name: nothing loads them."""
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def remove_stale_temporaries(path: Path, older_than: float = STALE_TEMPORARY_SECONDS) -> None:
    cutoff = time.time() - older_than
    for temporary in temporaries(path):
        try:
            if temporary.stat().st_mtime < cutoff:
                temporary.unlink()
        except OSError:
            pass  # gone already, or not ours to remove: it is never loaded either way


def _cache_error(path: Path, error: OSError) -> CacheWriteError:
    return CacheWriteError(
        f"cannot write {path}: {error.strerror or error}; choose a writable cache folder with "
        "--cache-dir or $CRS_CACHE_DIR"
    )


def load_arrays(path: Path, what: str = "file") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and arrays of a file written by `save_arrays`; non-finite floats are refused.
    `what` names the file in error messages ("BPR model")."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta: dict[str, Any] = json.loads(str(data["meta"]))
            arrays = {name: np.asarray(data[name]) for name in data.files if name != "meta"}
    except Exception as error:  # a truncated zip, bad JSON or a missing key all mean "unusable"
        raise ArtifactError(f"{path}: not a readable {what} ({type(error).__name__}: {error})") from None
    for name, array in arrays.items():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ArtifactError(f"{path}: not a readable {what} (array {name!r} holds non-finite values)")
    return meta, arrays
