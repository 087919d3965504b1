"""Collaborative scorers that rank the items a policy recommends.

`make_scorer(name, dataset, cache_dir)` gives a ready scorer: "popularity", or "bpr", which is
loaded from the cache when a model trained on the same data and settings is there, and otherwise
trained and saved. A corrupt or stale file is retrained, never used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crs.progress import Progress
from crs.scoring.base import PopularityScorer, Scorer
from crs.scoring.evaluation import ranking_metrics

if TYPE_CHECKING:
    from crs.data import Dataset

CACHE_ENV = "CRS_CACHE_DIR"
SCORERS = ("popularity", "bpr")

__all__ = [
    "CACHE_ENV",
    "SCORERS",
    "PopularityScorer",
    "Scorer",
    "default_cache_dir",
    "make_scorer",
    "model_path",
    "ranking_metrics",
]


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$CRS_CACHE_DIR` when set and not empty, else `~/.cache/crs`."""
    value = (os.environ if environ is None else environ).get(CACHE_ENV, "")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "crs"


def model_path(cache_dir: Path, dataset_name: str, key: str) -> Path:
    # Dataset names may be folder paths (generic catalogs): keep the file name flat.
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset_name).strip("._") or "dataset"
    return cache_dir / f"{safe}-bpr-{key}.npz"


def make_scorer(
    name: str,
    dataset: Dataset,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    **params: Any,
) -> Scorer:
    """A ready scorer. For "bpr", `params` override `BprConfig` fields and `cache_dir` None means
    `default_cache_dir()`; `progress` hears of each epoch only when a model is trained."""
    if name == "popularity":
        if params:
            raise ValueError(f"scorer 'popularity' takes no parameters, got: {', '.join(sorted(params))}")
        return PopularityScorer(dataset)
    if name == "bpr":
        from crs.scoring.bpr import BprConfig, BprScorer, ModelFileError, fingerprint, train_bpr

        config = BprConfig.from_mapping(params)
        path = model_path(cache_dir or default_cache_dir(), dataset.name, fingerprint(dataset, config))
        if path.exists():
            try:
                return BprScorer.load(path, dataset)
            except ModelFileError:
                pass  # corrupt, truncated or stale: never used, retrained and replaced below
        scorer = train_bpr(dataset, config, progress)
        scorer.save(path)
        return scorer
    raise ValueError(f"unknown scorer {name!r}; choose one of: {', '.join(SCORERS)}")
