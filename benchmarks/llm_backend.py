"""Speed of the local model (gemma-3-270m via xllamacpp) on this machine.

    python benchmarks/llm_backend.py          # ~1 minute; writes benchmarks/results/llm_backend.json

For the exact mode (prompt tokens evaluated one at a time: words independent of what ran before,
the default) and llama.cpp's batched mode, it prints the load time, generation and prompt tokens/s
and seconds per short few-shot reply, with and without reuse of the shared prefix, and the time
of a disk-cache hit. Run it on an idle machine: the numbers move a lot with load.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from crs.llm.base import GenerationRequest
from crs.llm.cache import CachedBackend
from crs.llm.local import LocalBackend

FEW_SHOT = """Turn a decision into a short, natural reply from a music fan.
Question: Do you like jazz? Decision: yes
Reply: Yes, I love jazz, especially late at night.
Question: Are you looking for 80s music? Decision: no
Reply: No, not really, I'd rather have something newer.
Question: Do you like heavy metal? Decision: yes
Reply: Yes, heavy metal is great, the louder the better.
Question: Do you want something acoustic? Decision: no
Reply: No, acoustic stuff is a bit too quiet for me.
"""
QUESTIONS = [
    ("pop", "yes"),
    ("techno", "no"),
    ("blues", "yes"),
    ("indie", "no"),
    ("folk", "yes"),
    ("rap", "no"),
    ("soul", "yes"),
    ("punk", "no"),
]


def _body(genre: str, decision: str, reuse: bool) -> dict[str, Any]:
    prompt = f"{FEW_SHOT}Question: Do you like {genre}? Decision: {decision}\nReply:"
    return {
        "prompt": prompt,
        "max_tokens": 24,
        "temperature": 0.0,
        "seed": 0,
        "stop": ["\n"],
        "cache_prompt": reuse,
    }


def measure(backend: LocalBackend) -> dict[str, Any]:
    server = backend.load()
    result: dict[str, Any] = {"load_s": round(backend.load_seconds or 0.0, 2), "exact": backend.exact}
    for reuse in (False, True):
        seconds, prompt_tps, gen_tps, tokens = [], [], [], []
        for genre, decision in QUESTIONS:
            started = time.perf_counter()
            response = server.handle_completions(_body(genre, decision, reuse))
            seconds.append(time.perf_counter() - started)
            timings = response["timings"]
            if timings["prompt_n"] > 8:
                prompt_tps.append(timings["prompt_per_second"])
            gen_tps.append(timings["predicted_per_second"])
            tokens.append((response["usage"]["prompt_tokens"], response["usage"]["completion_tokens"]))
        key = "with_prefix_reuse" if reuse else "without_prefix_reuse"
        result[key] = {
            "s_per_reply": round(statistics.mean(seconds), 3),
            "generation_tokens_per_s": round(statistics.mean(gen_tps), 1),
            "prompt_tokens_per_s": round(statistics.mean(prompt_tps), 1) if prompt_tps else None,
            "mean_prompt_completion_tokens": [
                round(statistics.mean(t), 1) for t in zip(*tokens, strict=True)
            ],
        }
    with tempfile.TemporaryDirectory() as folder:
        cached = CachedBackend(backend, Path(folder))
        request = GenerationRequest(prompt=_body("jazz", "yes", True)["prompt"], max_tokens=24)
        cached.generate(request)
        hits = [cached.generate(request).seconds for _ in range(20)]
        result["cache_hit_ms"] = round(1000 * statistics.median(hits), 2)
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse
    import os

    from crs.scoring import default_cache_dir

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    rows = [measure(LocalBackend(default_cache_dir(), exact=exact)) for exact in (True, False)]
    print("| mode | load s | s/reply, no reuse | s/reply, prefix reused | generation tok/s | prompt tok/s |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        cold, warm = row["without_prefix_reuse"], row["with_prefix_reuse"]
        print(
            f"| {'exact' if row['exact'] else 'batched'} | {row['load_s']} | {cold['s_per_reply']} | "
            f"{warm['s_per_reply']} | {cold['generation_tokens_per_s']} | {cold['prompt_tokens_per_s']} |"
        )
    print(f"disk-cache hit: {rows[0]['cache_hit_ms']} ms")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"cpu_count": os.cpu_count(), "modes": rows}
    (args.out / "llm_backend.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.out / 'llm_backend.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
