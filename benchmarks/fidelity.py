"""How close simulated users talk to real seekers, next to what they make of the chat.

Simulated users (MovieLens, belief policy, persona behaviour, `--limit` conversations each):
- **templates**: the LLM user without a model (`--llm-backend none`): the floor;
- **fixed prompt**: the LLM user as it was, one fixed few-shot prompt at temperature 0;
- **like seekers**: `--llm-phrasing seekers` (simulators/seeker_phrases.py): real ReDial seekers'
  messages as retrieved examples, words sampled at a seeded temperature, their greetings, the
  films they name, their thanks.

Each is read by `crs.evaluation.fidelity` against `--real` ReDial seekers' messages (the
comparison half of the dialogues: the "like seekers" user draws its words from the other half)
and against INSPIRED's (which no simulated user reads). Two rows of real people bound the scale:
- **real vs real**: half the sample against the other half (the classifier's chance level);
- **real, same acts**: real seekers' messages of the phrasing half, drawn kind by kind in the
  proportions of the "like seekers" run (a "no" for each "no", a refusal of a list for each
  refusal..., never one twice): how far people who did what these users do could be told from
  ReDial's seekers.

Run: .venv/bin/python benchmarks/fidelity.py [--limit 200] [--real 2000] [--data-dir DIR]
(~30 minutes on 2 cores at the defaults). Writes benchmarks/results/fidelity.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from crs.data import load_dataset
from crs.data.location import resolve_data_dir
from crs.evaluation.fidelity import SOURCES, fidelity, real_messages, user_messages
from crs.evaluation.records import ConversationRecord, write_transcripts
from crs.evaluation.report import markdown_table
from crs.evaluation.runner import RunSpec, evaluate
from crs.factory import policy_for_run
from crs.language.understanding import Understander
from crs.retrieval.encoder import MiniLmEncoder
from crs.settings import LLMSettings, LLMUserSettings
from simulators.seeker_phrases import Kind, open_seeker_phrases

ROOT = Path(__file__).resolve().parent.parent
DATASET = "movielens"
SIMULATORS: dict[str, tuple[LLMSettings, str]] = {
    "templates (no model)": (LLMSettings(backend="none"), "fixed"),
    "LLM user, fixed prompt": (LLMSettings(backend="local", cache=False), "fixed"),
    "LLM user, like seekers": (LLMSettings(backend="local", cache=False), "seekers"),
}
SAME_ACTS = "real seekers, same acts"


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
    said: dict[str, list[str]] = {}
    runs: dict[str, dict[str, Any]] = {}
    records: dict[str, tuple[ConversationRecord, ...]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, (llm, phrasing) in SIMULATORS.items():
            user = LLMUserSettings(mode="phrase", behaviour="persona", phrasing=phrasing)
            started = time.perf_counter()
            result = evaluate(replace(base, simulator="llm", llm=llm, llm_user=user), dataset, policy)
            seconds = time.perf_counter() - started
            path = Path(folder) / "transcripts.jsonl"
            write_transcripts(result.records, path)
            said[label] = user_messages(path)
            records[label] = result.records
            summary = result.summary()
            runs[label] = {
                "seconds": round(seconds, 1),
                "seconds_per_conversation": round(summary["seconds_per_conversation"], 3),
                "sr@15": round(summary["SR@15"], 4),
                "agreement": round(summary["agreement"], 4),
                "first_draft_agreement": _rounded(summary.get("first_draft_agreement")),
                "seeker_rate": _rounded(summary.get("seeker_rate")),
                "template_rate": _rounded(summary.get("template_rate")),
                "title_leaks_dropped": summary.get("title_leaks_dropped", 0),
            }
            print(f"{label}: {len(said[label])} messages in {seconds:.0f} s", file=sys.stderr)
    said[SAME_ACTS] = same_acts(data_dir, reader, records["LLM user, like seekers"], args.seed)

    rows: list[dict[str, object]] = []
    for source in SOURCES:
        real = real_messages(data_dir, source, limit=args.real, seed=args.seed)
        half = len(real) // 2
        sides = list(said.items())
        sides.append((f"real {source} seekers (other half)", real[:half]))
        for label, messages in sides:
            against = real[half:] if label.startswith(f"real {source}") else real
            report = fidelity(label, messages, reader, against, encoder, seed=args.seed)
            rows.append({"against": source, **report.as_dict()})
    print(
        markdown_table(
            ["against", "users", "messages", "words", "distinct replies", "most common", "AUC"],
            [
                [
                    str(r["against"]),
                    str(r["label"]),
                    str(r["profile"]["messages"]),  # type: ignore[index]
                    f"{r['profile']['mean_words']:.1f}",  # type: ignore[index]
                    f"{r['profile']['distinct_messages']:.3f}",  # type: ignore[index]
                    f"{r['profile']['most_common_share']:.3f}",  # type: ignore[index]
                    f"{r['auc']:.3f}",
                ]
                for r in rows
            ],
        )
    )
    print()
    print(
        markdown_table(
            [
                "users",
                "SR@15",
                "read back right",
                "s / conversation",
                "LLM first draft",
                "real words",
                "template",
            ],
            [
                [
                    label,
                    f"{run['sr@15']:.3f}",
                    f"{run['agreement']:.3f}",
                    f"{run['seconds_per_conversation']:.2f}",
                    str(run["first_draft_agreement"]),
                    str(run["seeker_rate"]),
                    str(run["template_rate"]),
                ]
                for label, run in runs.items()
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
                "runs": runs,
                "rows": rows,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"written: {args.out}")
    return 0


def same_acts(
    data_dir: Path, reader: Understander, records: tuple[ConversationRecord, ...], seed: int
) -> list[str]:
    """Real seekers' messages (the phrasing half), one of the same kind for each message of the
    run: an opening for an opening, a "no" for a "no", a refusal of a list for a refusal, never
    one twice. A kind with fewer real messages than the run needs gives them all (people rarely
    pick from a numbered list: ReDial's seekers have 24 such messages in that half)."""
    phrases = open_seeker_phrases(data_dir, reader)
    wanted: Counter[Kind] = Counter()
    for record in records:
        for position, turn in enumerate(t for t in record.turns if t.user_text):
            intent = turn.user_intent or ""
            kind = "opening" if position == 0 and intent == "inform" else intent
            if kind in ("yes", "no", "dont_know", "accept", "reject", "inform", "opening", "quit"):
                wanted[kind] += 1  # type: ignore[index]
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for kind, count in sorted(wanted.items()):
        pool = [m.text for m in phrases.messages if m.fits(kind)]
        if pool:
            picks = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
            out += [pool[int(i)] for i in picks]
    return out


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


if __name__ == "__main__":
    sys.exit(main())
