"""Language models for the LLM user simulator: a local gemma-3-270m (xllamacpp, in process) or any
OpenAI-compatible server, behind one contract (`crs.llm.base`), with an on-disk response cache.

`make_backend(settings, cache_dir)` builds one from the `[llm]` settings. Importing this package
never imports xllamacpp; the local model loads on its first generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crs.llm.base import Generation, GenerationRequest, LLMBackend, LLMError, Message
from crs.llm.cache import CachedBackend, request_key
from crs.llm.local import LocalBackend
from crs.llm.remote import RemoteBackend

BACKENDS = ("local", "remote")

__all__ = [
    "BACKENDS",
    "CachedBackend",
    "Generation",
    "GenerationRequest",
    "LLMBackend",
    "LLMError",
    "LocalBackend",
    "Message",
    "RemoteBackend",
    "make_backend",
    "request_key",
]


def make_backend(settings: Mapping[str, Any], cache_dir: Path | None) -> LLMBackend:
    """The backend the `[llm]` settings describe, behind the disk cache (`<cache_dir>/llm/responses`)
    unless `cache = false`. `cache_dir` None means `$CRS_CACHE_DIR`, then ~/.cache/crs.
    Missing keys take the defaults of `crs/defaults.toml`."""
    from crs.config import defaults
    from crs.scoring import default_cache_dir

    merged = {**defaults()["llm"], **settings}
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    kind = merged["backend"]
    inner: LLMBackend
    if kind == "local":
        inner = LocalBackend(folder, threads=int(merged["threads"]))
    elif kind == "remote":
        inner = RemoteBackend(
            merged["url"],
            model=merged["model"],
            api_key_env=merged["api_key_env"],
            timeout_s=float(merged["timeout_s"]),
            retries=int(merged["retries"]),
        )
    else:
        raise ValueError(f"unknown [llm] backend {kind!r}; choose one of: {', '.join(BACKENDS)}")
    if not merged["cache"]:
        return inner
    return CachedBackend(inner, folder / "llm" / "responses")
