"""Language understanding accuracy and speed on the labelled utterance sets of both catalogs.

Prints a precision/recall table per catalog and writes benchmarks/results/understanding.json.
Run: .venv/bin/python benchmarks/understanding.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from crs.data import load_dataset
from crs.language import Understander
from crs.language.evaluation import evaluate, format_table, load_labelled

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = ("movielens", "lastfm_star")


def main() -> None:
    results: dict[str, object] = {}
    for name in CATALOGS:
        catalog = load_dataset(name).catalog
        started = time.perf_counter()
        understander = Understander(catalog)
        build_s = time.perf_counter() - started
        labelled = load_labelled(ROOT / "tests" / "data" / f"utterances_{name}.jsonl", catalog)
        started = time.perf_counter()
        report = evaluate(understander, labelled)
        per_message_ms = 1000 * (time.perf_counter() - started) / max(1, len(labelled))
        print(format_table(report, name))
        print(f"index build {build_s:.2f} s, {per_message_ms:.2f} ms per message\n")
        results[name] = {
            **report.as_dict(),
            "build_s": round(build_s, 3),
            "ms_per_message": round(per_message_ms, 3),
        }
    out = ROOT / "benchmarks" / "results" / "understanding.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
