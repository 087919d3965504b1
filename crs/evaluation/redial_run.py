"""`crs evaluate --dataset redial`: the ReDial protocol (`crs.evaluation.redial_protocol`) run with
the context ranker (`crs.scoring.context_ranker`), and its run folder:

- `samples.jsonl`: one line per sample: `conversation_id`, `message_id`, `target` (ReDial
  movieId), `repeat`, `rank` (1-based, all setting), `rank_new` (new setting; null for repeats),
  `top` (the 50 best movieIds, all setting);
- `metrics.json`: `{"all": {...}, "new": {...}, "repeats": {...}}` (recomputable from the samples);
- `config.json`: the settings, the ranker's weights and where the data came from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crs.data.redial_dataset import DialogueDataset
from crs.evaluation.redial_protocol import Sample, extract_all, protocol_metrics
from crs.progress import Progress, report
from crs.scoring.context_ranker import ContextRanker, rank_of, read_contexts, top_items

TOP = 50
EMBED_BATCH = 128  # samples embedded together: batching is what makes a split take seconds


@dataclass(frozen=True)
class RedialResult:
    split: str
    rows: list[dict[str, Any]]
    metrics: dict[str, dict[str, float | int]]
    seconds: float


def evaluate_redial(
    ranker: ContextRanker,
    dataset: DialogueDataset,
    split: str,
    limit: int | None = None,
    progress: Progress | None = None,
) -> RedialResult:
    """Rank every movie for each sample of `split` (the first `limit` dialogues' samples)."""
    dialogues = dataset.dialogues_of(split)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be at least 1, got {limit}")
        dialogues = dialogues[:limit]
    samples = extract_all(dialogues, dataset.catalog)
    started = time.perf_counter()
    rows = rank_samples(ranker, samples, progress)
    return RedialResult(split, rows, protocol_metrics(rows), time.perf_counter() - started)


def rank_samples(
    ranker: ContextRanker, samples: Sequence[Sample], progress: Progress | None = None
) -> list[dict[str, Any]]:
    catalog = ranker.dataset.catalog
    evidences = read_contexts(
        ranker.understander, [(s.conversation_id, [(m.text, m.seeker) for m in s.context]) for s in samples]
    )
    weights = ranker.weight_vector()
    rows: list[dict[str, Any]] = []
    for start in range(0, len(samples), EMBED_BATCH):
        report(progress, "samples", start, len(samples), "sample")
        batch = evidences[start : start + EMBED_BATCH]
        for sample, evidence, query in zip(samples[start:], batch, ranker.embed(batch), strict=False):
            scores = (ranker.features(evidence, query) @ weights).astype("float64")
            before = sorted(sample.mentioned_before)
            rows.append(
                {
                    "conversation_id": sample.conversation_id,
                    "message_id": sample.message_id,
                    "target": catalog.items[sample.target].id,
                    "repeat": sample.repeat,
                    "rank": rank_of(scores, sample.target),
                    "rank_new": None if sample.repeat else rank_of(scores, sample.target, before),
                    "top": [catalog.items[i].id for i in top_items(scores, TOP)],
                }
            )
    report(progress, "samples", len(samples), len(samples), "sample")
    return rows


def write_redial_run(result: RedialResult, folder: Path, config: dict[str, Any]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in ("samples.jsonl", "metrics.json", "config.json")}
    with paths["samples.jsonl"].open("w", encoding="utf-8") as handle:
        for row in result.rows:
            handle.write(json.dumps(row) + "\n")
    paths["metrics.json"].write_text(json.dumps(result.metrics, indent=2) + "\n", encoding="utf-8")
    paths["config.json"].write_text(json.dumps(config, indent=2, default=str) + "\n", encoding="utf-8")
    return paths


def format_metrics(metrics: dict[str, dict[str, float | int]]) -> str:
    lines = ["setting  samples   R@1    R@10   R@50   MRR"]
    for setting in ("all", "new"):
        m = metrics[setting]
        lines.append(
            f"{setting:<8} {m['samples']:>7}  {m['R@1']:.3f}  {m['R@10']:.3f}  "
            f"{m['R@50']:.3f}  {m['MRR']:.3f}"
        )
    repeats = metrics["repeats"]
    lines.append(
        f"repeats: {repeats['samples']} samples ({100 * float(repeats['share']):.1f} %), kept in 'all' only"
    )
    return "\n".join(lines)
