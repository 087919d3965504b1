"""Precision and recall of the understander over a labelled utterance set.

A labelled line (JSONL) holds the dialogue context (`ask`: the pending attribute's dataset id, or
`recommended`: item ids on screen), the `text`, and the expected `acts`, all with the catalog's own
ids. Both the labels and the predictions are reduced to sets of *facts* per message, so that a
message with several acts is scored act by act:

- act facts, one per act type present: ("answer",), ("inform",), ("mention",), ...
- slot facts, one per filled slot: ("answer", "yes"), ("inform", attr), ("unwanted", attr),
  ("mention", item, liked), ("accept", item), ("reject_item", item), ("more_like", item), and
  the slot-less acts (reject, restart, help, quit, unknown) as themselves.

Per act type, precision and recall count messages (was the act type found); per slot kind they
count slot facts. The micro average over all slot facts is the headline number.

**Parts: development, held out, fresh.** Each line has a `part`:

- `"dev"` and `"heldout"` split the messages of `tests/data/utterances_<dataset>.jsonl` (361 for
  both catalogs). The word lists of `lexicon.toml` were written looking at all 361, so today's
  held-out numbers are optimistic; from now on only the dev messages may be looked at when the
  word lists change, and the held-out ones tell whether a change generalises. The rule
  (`split_parts`), applied once and stored in the files: per file, the lines are grouped by their
  main act (the type of the first labelled act), each group is ordered by the SHA-256 of
  `SPLIT_SEED`, the text and the context, and every third line from the second on (ranks 1, 4,
  7, ...) is held out. About a third is held out, and every act with two or more examples has
  some in both parts. A line added later without a `part` counts as dev: its author has seen it.
- `"fresh"`: `tests/data/utterances_<dataset>_fresh.jsonl`, when it exists, written by someone who
  never saw the word lists (a line there without a `part` counts as fresh): the only unbiased
  estimate. It is reported on its own.

`evaluate_parts` reports dev, heldout, "all" (dev + heldout: the original set, comparable with
numbers measured before the split) and fresh when there is any.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crs.language.acts import (
    DialogueAct,
    DontCare,
    Help,
    MentionItem,
    MoreLike,
    RejectItem,
    Restart,
    Unknown,
)
from crs.language.understanding import Understander
from crs.types import (
    AcceptReply,
    AnswerReply,
    Ask,
    Catalog,
    InformReply,
    QuitReply,
    Recommend,
    RejectReply,
    SystemAction,
)

Fact = tuple[Any, ...]
PARTS = ("dev", "heldout", "fresh")
SPLIT_SEED = "crs-understanding-split-2024"
HELDOUT_EVERY = 3  # one line in three is held out, per main act
ACT_TYPES = (
    "answer",
    "inform",
    "mention",
    "accept",
    "reject",
    "reject_item",
    "more_like",
    "restart",
    "help",
    "quit",
    "unknown",
)


@dataclass(frozen=True, slots=True)
class Labelled:
    text: str
    context: SystemAction | None
    facts: frozenset[Fact]
    part: str = "dev"


@dataclass(frozen=True, slots=True)
class Score:
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def support(self) -> int:
        return self.true_positives + self.false_negatives

    def as_dict(self) -> dict[str, float | int]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "support": self.support,
            "tp": self.true_positives,
            "fp": self.false_positives,
            "fn": self.false_negatives,
        }


@dataclass(frozen=True)
class Report:
    n_messages: int
    acts: Mapping[str, Score]  # per act type, counted over messages
    slots: Mapping[str, Score]  # per slot kind, counted over slot facts
    micro: Score  # all slot facts together
    exact_match: float  # share of messages whose facts are all right
    errors: tuple[tuple[str, tuple[Fact, ...], tuple[Fact, ...]], ...]  # (text, missed, spurious)

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_messages": self.n_messages,
            "micro": self.micro.as_dict(),
            "exact_match": round(self.exact_match, 4),
            "acts": {k: v.as_dict() for k, v in self.acts.items()},
            "slots": {k: v.as_dict() for k, v in self.slots.items()},
        }


def label_facts(acts: Iterable[Mapping[str, Any]]) -> frozenset[Fact]:
    """Facts of the `acts` field of a labelled line."""
    facts: set[Fact] = set()
    for act in acts:
        kind = str(act["type"])
        facts.add((kind,))
        if kind == "answer":
            facts.add(("answer", act["answer"]))
        elif kind == "inform":
            facts.update(("inform", a) for a in act.get("attributes", ()))
            facts.update(("unwanted", a) for a in act.get("unwanted", ()))
        elif kind == "mention":
            facts.add(("mention", act["item"], bool(act.get("liked", True))))
        elif kind in ("accept", "reject_item", "more_like"):
            facts.add((kind, act["item"]))
    return frozenset(facts)


def predicted_facts(acts: Sequence[DialogueAct], catalog: Catalog) -> frozenset[Fact]:
    """Facts of predicted acts, with catalog ids in place of indices."""
    facts: set[Fact] = set()

    def item(index: int) -> Any:
        return catalog.items[index].id

    for act in acts:
        if isinstance(act, AnswerReply):
            facts.update({("answer",), ("answer", act.answer.value)})
        elif isinstance(act, DontCare):
            facts.update({("answer",), ("answer", "dont_care")})
        elif isinstance(act, InformReply):
            facts.add(("inform",))
            facts.update(("inform", catalog.attributes[a].id) for a in act.attributes)
            facts.update(("unwanted", catalog.attributes[a].id) for a in act.unwanted)
        elif isinstance(act, MentionItem):
            facts.update({("mention",), ("mention", item(act.item), act.liked)})
        elif isinstance(act, AcceptReply):
            facts.update({("accept",), ("accept", item(act.item))})
        elif isinstance(act, RejectItem):
            facts.update({("reject_item",), ("reject_item", item(act.item))})
        elif isinstance(act, MoreLike):
            facts.update({("more_like",), ("more_like", item(act.item))})
        elif isinstance(act, RejectReply):
            facts.add(("reject",))
        elif isinstance(act, Restart):
            facts.add(("restart",))
        elif isinstance(act, Help):
            facts.add(("help",))
        elif isinstance(act, QuitReply):
            facts.add(("quit",))
        elif isinstance(act, Unknown):
            facts.add(("unknown",))
    return frozenset(facts)


def load_labelled(path: Path, catalog: Catalog, default_part: str = "dev") -> list[Labelled]:
    """The lines of one labelled file; a line without a `part` gets `default_part`."""
    rows: list[Labelled] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        part = str(row.get("part", default_part))
        if part not in PARTS:
            raise ValueError(f"{path}: part must be one of {', '.join(PARTS)}, got {part!r}")
        context_row = row.get("context") or {}
        context: SystemAction | None = None
        if context_row.get("ask") is not None:
            context = Ask(catalog.attribute_index(context_row["ask"]))
        elif context_row.get("recommended"):
            context = Recommend(tuple(catalog.item_index(i) for i in context_row["recommended"]))
        rows.append(Labelled(text=row["text"], context=context, facts=label_facts(row["acts"]), part=part))
    return rows


def labelled_files(data_dir: Path, dataset: str) -> list[tuple[Path, str]]:
    """(file, default part) of every labelled set of `dataset`: dev/heldout, and fresh where it exists."""
    files = [(data_dir / f"utterances_{dataset}.jsonl", "dev")]
    fresh = data_dir / f"utterances_{dataset}_fresh.jsonl"
    if fresh.exists():
        files.append((fresh, "fresh"))
    return files


def load_all_labelled(data_dir: Path, dataset: str, catalog: Catalog) -> list[Labelled]:
    """Every labelled message of `dataset`, each with its part."""
    return [
        row for path, part in labelled_files(data_dir, dataset) for row in load_labelled(path, catalog, part)
    ]


def main_act(acts: Sequence[Mapping[str, Any]]) -> str:
    """The act a labelled line is mainly about: its first act ("unknown" when it has none)."""
    return str(acts[0]["type"]) if acts else "unknown"


def split_parts(rows: Sequence[Mapping[str, Any]], seed: str = SPLIT_SEED) -> list[str]:
    """The part, "dev" or "heldout", of each line of one labelled file (the rule: module docstring)."""

    def rank_key(index: int) -> str:
        row = rows[index]
        context = json.dumps(row.get("context"), sort_keys=True)
        return hashlib.sha256(f"{seed}\0{row['text']}\0{context}".encode()).hexdigest()

    by_act: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        by_act.setdefault(main_act(row["acts"]), []).append(index)
    parts = ["dev"] * len(rows)
    for members in by_act.values():
        for rank, index in enumerate(sorted(members, key=rank_key)):
            if rank % HELDOUT_EVERY == 1:
                parts[index] = "heldout"
    return parts


def _is_slot(fact: Fact) -> bool:
    # ("reject",) style facts of slot-less acts count as slots too: they are the whole act.
    return len(fact) > 1 or fact[0] in ("reject", "restart", "help", "quit", "unknown")


def evaluate(understander: Understander, labelled: Sequence[Labelled]) -> Report:
    act_counts: dict[str, Counter[str]] = {kind: Counter() for kind in ACT_TYPES}
    slot_counts: dict[str, Counter[str]] = {}
    micro: Counter[str] = Counter()
    exact = 0
    errors: list[tuple[str, tuple[Fact, ...], tuple[Fact, ...]]] = []
    for row in labelled:
        result = understander.understand(row.text, row.context)
        predicted = predicted_facts(result.acts, understander.catalog)
        gold = row.facts
        for kind in ACT_TYPES:
            p, g = (kind,) in predicted, (kind,) in gold
            act_counts[kind]["tp" if p and g else "fp" if p else "fn" if g else "tn"] += 1
        for fact in predicted | gold:
            if not _is_slot(fact):
                continue
            outcome = "tp" if fact in predicted and fact in gold else "fp" if fact in predicted else "fn"
            slot_counts.setdefault(str(fact[0]), Counter())[outcome] += 1
            micro[outcome] += 1
        if predicted == gold:
            exact += 1
        else:
            errors.append(
                (row.text, tuple(sorted(gold - predicted, key=str)), tuple(sorted(predicted - gold, key=str)))
            )

    def score(counts: Counter[str]) -> Score:
        return Score(counts["tp"], counts["fp"], counts["fn"])

    return Report(
        n_messages=len(labelled),
        acts={kind: score(c) for kind, c in act_counts.items()},
        slots={kind: score(c) for kind, c in sorted(slot_counts.items())},
        micro=score(micro),
        exact_match=exact / len(labelled) if labelled else 1.0,
        errors=tuple(errors),
    )


def evaluate_parts(understander: Understander, labelled: Sequence[Labelled]) -> dict[str, Report]:
    """Reports for "dev", "heldout", "all" (dev + heldout) and, when there are fresh messages, "fresh"."""
    reports = {
        "dev": evaluate(understander, [row for row in labelled if row.part == "dev"]),
        "heldout": evaluate(understander, [row for row in labelled if row.part == "heldout"]),
        "all": evaluate(understander, [row for row in labelled if row.part in ("dev", "heldout")]),
    }
    fresh = [row for row in labelled if row.part == "fresh"]
    if fresh:
        reports["fresh"] = evaluate(understander, fresh)
    return reports


def format_table(report: Report, title: str) -> str:
    lines = [f"{title}: {report.n_messages} messages, exact match {report.exact_match:.1%}"]
    lines.append(f"{'':14} {'P':>6} {'R':>6} {'F1':>6} {'n':>5}")
    for label, scores in (("act", report.acts), ("slot", report.slots)):
        for kind, s in scores.items():
            if s.support or s.false_positives:
                lines.append(
                    f"{label + ' ' + kind:14} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} {s.support:5d}"
                )
    m = report.micro
    lines.append(f"{'micro (slots)':14} {m.precision:6.3f} {m.recall:6.3f} {m.f1:6.3f} {m.support:5d}")
    return "\n".join(lines)


def format_parts_table(reports: Mapping[str, Report], title: str) -> str:
    """One table with a column group (P, R, F1, n) per part."""
    parts = list(reports)
    counts = ", ".join(f"{part} {r.n_messages}" for part, r in reports.items())
    exact = ", ".join(f"{part} {r.exact_match:.1%}" for part, r in reports.items())
    lines = [f"{title}: messages {counts}; exact match {exact}"]
    lines.append(f"{'':16}" + "".join(f" {part:^23}" for part in parts))
    lines.append(f"{'':16}" + f" {'P':>5} {'R':>5} {'F1':>5} {'n':>4} " * len(parts))

    def cells(score: Score | None) -> str:
        if score is None:
            return f" {'':23}"
        return f" {score.precision:5.3f} {score.recall:5.3f} {score.f1:5.3f} {score.support:4d}"

    for label, group in (("act", "acts"), ("slot", "slots")):
        kinds = dict.fromkeys(kind for report in reports.values() for kind in getattr(report, group))
        for kind in kinds:
            scores = [getattr(report, group).get(kind) for report in reports.values()]
            if any(s is not None and (s.support or s.false_positives) for s in scores):
                lines.append(f"{label + ' ' + kind:16}" + "".join(cells(s) for s in scores))
    lines.append(f"{'micro (slots)':16}" + "".join(cells(report.micro) for report in reports.values()))
    return "\n".join(lines)
