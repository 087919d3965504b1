"""How close simulated users talk to real seekers: today's LLM user (persona mode, local model),
and real seekers against other real seekers as the ceiling (two disjoint samples: a classifier
can do no better than chance there).

The simulated side is `--limit` MovieLens conversations with the belief policy, read by
`crs.evaluation.fidelity` against `--real` ReDial seekers' messages
(each movie written as its title, as people type it), and against INSPIRED's.

Run: .venv/bin/python benchmarks/fidelity.py [--limit 200] [--real 2000] [--data-dir DIR]
(~10 minutes on 2 cores at the defaults). Writes benchmarks/results/fidelity.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from crs.data import load_dataset
from crs.data.location import resolve_data_dir
from crs.evaluation.fidelity import SOURCES, fidelity, real_messages, user_messages
from crs.evaluation.records import write_transcripts
from crs.evaluation.report import markdown_table
from crs.evaluation.runner import RunSpec, evaluate
from crs.factory import policy_for_run
from crs.language.understanding import Understander
from crs.retrieval.encoder import MiniLmEncoder
from crs.settings import LLMSettings, LLMUserSettings

ROOT = Path(__file__).resolve().parent.parent
DATASET = "movielens"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=200, help="conversations per simulated user")
    parser.add_argument("--real", type=int, default=2000, help="real messages sampled per source")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fidelity.json")
    args = parser.parse_args(argv)

    data_dir = resolve_data_dir(args.data_dir)
    dataset = load_dataset(DATASET, data_dir)
    reader = Understander(dataset.catalog, popularity=dataset.popularity)
    encoder = MiniLmEncoder()
    base = RunSpec(dataset=DATASET, policy="belief", scorer="bpr", limit=args.limit, workers=1)
    policy = policy_for_run(base, dataset)
    user = LLMUserSettings(mode="phrase", behaviour="persona")
    # The rule user's templates as a floor (backend "none") need a process of their own: the
    # spoken evaluation keeps one language model per process (crs/evaluation/spoken.py).
    simulators = {"LLM user, persona (local model)": LLMSettings(backend="local", cache=False)}
    said: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, llm in simulators.items():
            started = time.perf_counter()
            result = evaluate(replace(base, simulator="llm", llm=llm, llm_user=user), dataset, policy)
            seconds[label] = time.perf_counter() - started
            path = Path(folder) / "transcripts.jsonl"
            write_transcripts(result.records, path)
            said[label] = user_messages(path)
            print(f"{label}: {len(said[label])} messages in {seconds[label]:.0f} s", file=sys.stderr)

    rows: list[dict[str, object]] = []
    for source in SOURCES:
        real = real_messages(data_dir, source, limit=args.real, seed=args.seed)
        half = len(real) // 2
        sides = [(label, messages) for label, messages in said.items()]
        sides.append((f"real {source} seekers (other half)", real[:half]))
        for label, messages in sides:
            against = real[half:] if label.startswith("real") else real
            report = fidelity(label, messages, reader, against, encoder, seed=args.seed)
            rows.append({"against": source, **report.as_dict()})
    headers = ["against", "users", "messages", "words", "distinct-1", "distinct-2", "distinct replies"]
    headers += ["most common", "AUC"]
    print(
        markdown_table(
            headers,
            [
                [
                    str(r["against"]),
                    str(r["label"]),
                    str(r["profile"]["messages"]),  # type: ignore[index]
                    f"{r['profile']['mean_words']:.1f}",  # type: ignore[index]
                    f"{r['profile']['distinct_1']:.3f}",  # type: ignore[index]
                    f"{r['profile']['distinct_2']:.3f}",  # type: ignore[index]
                    f"{r['profile']['distinct_messages']:.3f}",  # type: ignore[index]
                    f"{r['profile']['most_common_share']:.3f}",  # type: ignore[index]
                    f"{r['auc']:.3f}",
                ]
                for r in rows
            ],
        )
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "dataset": DATASET,
                "limit": args.limit,
                "real": args.real,
                "seed": args.seed,
                "seconds": {k: round(v, 1) for k, v in seconds.items()},
                "rows": rows,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
