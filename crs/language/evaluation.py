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
"""

from __future__ import annotations

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


def load_labelled(path: Path, catalog: Catalog) -> list[Labelled]:
    rows: list[Labelled] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        context_row = row.get("context") or {}
        context: SystemAction | None = None
        if context_row.get("ask") is not None:
            context = Ask(catalog.attribute_index(context_row["ask"]))
        elif context_row.get("recommended"):
            context = Recommend(tuple(catalog.item_index(i) for i in context_row["recommended"]))
        rows.append(Labelled(text=row["text"], context=context, facts=label_facts(row["acts"])))
    return rows


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
