"""A local OpenAI-compatible server for gemma-3-270m: `python -m crs.llm.server --port 8080`.

xllamacpp's `Server` is llama.cpp's own HTTP server (`/v1/completions`, `/v1/chat/completions`,
`/v1/models`, ...), listening on the configured host and port, so this only builds it with the
same settings as `LocalBackend` (same words for the same request) and keeps it alive. Point the
remote backend at it with `[llm] backend = "remote"`, `url = "http://127.0.0.1:8080/v1"`.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from pathlib import Path
from typing import Any

from crs.llm.base import LLMError
from crs.llm.local import model_file, server_params


def start_server(
    port: int,
    cache_dir: Path,
    host: str = "127.0.0.1",
    threads: int = 2,
    n_ctx: int = 2048,
    exact: bool = True,
) -> Any:
    """A running xllamacpp server (it listens from construction until it is garbage-collected).
    Its `listening_address` is the base URL, e.g. http://127.0.0.1:8080."""
    import xllamacpp

    params = server_params(model_file(cache_dir), threads, n_ctx, exact, port=port)
    params.hostnames = [host]
    try:
        return xllamacpp.Server(params)
    except Exception as error:
        raise LLMError(f"could not start the LLM server on {host}:{port}: {error}") from None


def main(argv: list[str] | None = None) -> int:
    from crs.scoring import default_cache_dir

    parser = argparse.ArgumentParser(prog="python -m crs.llm.server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--n-ctx", type=int, default=2048, help="context length in tokens (default 2048)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="model cache (default $CRS_CACHE_DIR)")
    parser.add_argument("--batched", action="store_true", help="llama.cpp batching: faster, not exact")
    args = parser.parse_args(argv)
    try:
        server = start_server(
            args.port,
            args.cache_dir or default_cache_dir(),
            args.host,
            args.threads,
            args.n_ctx,
            not args.batched,
        )
    except LLMError as error:
        parser.exit(1, f"error: {error}\n")
    print(f"serving gemma-3-270m at {server.listening_address}/v1 (Ctrl-C stops)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
