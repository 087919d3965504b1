"""Language understanding accuracy and speed on the labelled utterance sets of both catalogs.

Prints a precision/recall table per catalog with a column group per part of the labelled messages
(dev, heldout, all = dev + heldout, and fresh when tests/data/utterances_<dataset>_fresh.jsonl
exists; see crs/language/evaluation.py for what the parts are) and writes
benchmarks/results/understanding.json: per catalog the "all" report at the top level (the numbers
measured before the split), every part's report under "parts", and the timings.
Run: .venv/bin/python benchmarks/understanding.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from crs.data import load_dataset
from crs.language import Understander
from crs.language.evaluation import evaluate, evaluate_parts, format_parts_table, load_all_labelled

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
CATALOGS = ("movielens", "lastfm_star")


def main() -> None:
    results: dict[str, object] = {}
    for name in CATALOGS:
        dataset = load_dataset(name)
        catalog = dataset.catalog
        started = time.perf_counter()
        understander = Understander(catalog, popularity=dataset.popularity)
        build_s = time.perf_counter() - started
        labelled = load_all_labelled(DATA, name, catalog)
        # Timed on dev + heldout only, the same messages as before the fresh ones existed.
        timed = [row for row in labelled if row.part in ("dev", "heldout")]
        started = time.perf_counter()
        evaluate(understander, timed)
        per_message_ms = 1000 * (time.perf_counter() - started) / max(1, len(timed))
        reports = evaluate_parts(understander, labelled)
        print(format_parts_table(reports, name))
        print(f"index build {build_s:.2f} s, {per_message_ms:.2f} ms per message\n")
        results[name] = {
            **reports["all"].as_dict(),
            "parts": {part: report.as_dict() for part, report in reports.items()},
            "build_s": round(build_s, 3),
            "ms_per_message": round(per_message_ms, 3),
        }
    out = ROOT / "benchmarks" / "results" / "understanding.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
