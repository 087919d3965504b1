"""Language models for the LLM user simulator: a local gemma-3-270m (xllamacpp, in process) or any
OpenAI-compatible server, behind one contract (`crs.llm.base`), with an on-disk response cache.

`make_backend(settings, cache_dir)` builds one from the `[llm]` settings (`crs.settings.LLMSettings`).
Importing this package never imports xllamacpp; the local model loads on its first generation.
"""

from __future__ import annotations

from pathlib import Path

from crs.llm.base import Generation, GenerationRequest, LLMBackend, LLMError, Message
from crs.llm.cache import CachedBackend, request_key
from crs.llm.local import LocalBackend
from crs.llm.remote import RemoteBackend
from crs.settings import LLMSettings

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


def make_backend(settings: LLMSettings, cache_dir: Path | None) -> LLMBackend:
    """The backend the `[llm]` settings describe, behind the disk cache (`<cache_dir>/llm/responses`)
    unless `cache = false`. `cache_dir` None means `$CRS_CACHE_DIR`, then ~/.cache/crs."""
    from crs.scoring import default_cache_dir

    folder = cache_dir if cache_dir is not None else default_cache_dir()
    inner: LLMBackend
    if settings.backend == "local":
        inner = LocalBackend(folder, threads=settings.threads)
    elif settings.backend == "remote":
        inner = RemoteBackend(
            settings.url,
            model=settings.model,
            api_key_env=settings.api_key_env,
            timeout_s=settings.timeout_s,
            retries=settings.retries,
            concurrency=settings.concurrency,
        )
    else:
        raise ValueError(f"unknown [llm] backend {settings.backend!r}; choose one of: {', '.join(BACKENDS)}")
    if not settings.cache:
        return inner
    return CachedBackend(inner, folder / "llm" / "responses")
