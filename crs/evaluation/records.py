"""Typed run records and their JSONL transcript form.

One `ConversationRecord` per simulated conversation; `to_json` gives the documented transcript
line (README, "Transcript format") and `from_json` reads it back for `crs view`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crs.evaluation.metrics import Outcome
from crs.types import (
    TERMINATIONS,
    AcceptReply,
    Answer,
    AnswerReply,
    Ask,
    Catalog,
    DialogueState,
    GiveUp,
    InformReply,
    ItemId,
    QuitReply,
    Recommend,
    RejectReply,
    SystemAction,
    Termination,
    User,
    UserId,
    UserReply,
    new_state,
)


@dataclass(frozen=True)
class ConsideredAction:
    """One entry of a turn's decision trace (`policy.base.Candidate`, with the dataset's ids)."""

    act: str  # "ask", "recommend" or "give_up"
    score: float  # in the policy's own measure (its `trace_score`)
    attribute: int | str | None = None  # dataset id, for "ask"
    chosen: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"act": self.act}
        if self.attribute is not None:
            out["attribute"] = self.attribute
        out["score"] = round(self.score, 4) if math.isfinite(self.score) else None
        if self.chosen:
            out["chosen"] = True
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConsideredAction:
        score = data.get("score")
        return cls(
            act=str(data["act"]),
            score=float(score) if score is not None else math.inf,
            attribute=data.get("attribute"),
            chosen=bool(data.get("chosen", False)),
        )


@dataclass(frozen=True)
class TurnRecord:
    turn: int
    act: str  # "inform" (the user's opening), "ask", "recommend" or "give_up"
    actor: str = "system"
    t: int | None = None
    attribute: int | str | None = None  # dataset id
    answer: str | None = None
    items: tuple[ItemId, ...] | None = None  # dataset ids, rank order
    accepted: bool | None = None
    decision_ms: float | None = None
    # The decision trace (RunSpec.trace, policies that support it); None: not traced, and then
    # absent from the transcript line, so untraced transcripts look as they always did.
    candidates: tuple[ConsideredAction, ...] | None = None
    # Words of a run with the LLM user (crs/evaluation/spoken.py); None elsewhere, and then absent.
    system_text: str | None = None
    user_text: str | None = None  # the user's reply to this turn
    user_intent: str | None = None  # what the simulated user meant: yes, no, accept, reject, ...
    words: str | None = None  # how the words came about: llm, regenerated or template

    def to_json(self, timings: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"turn": self.turn, "actor": self.actor}
        if self.t is not None:
            out["t"] = self.t
        out["act"] = self.act
        for name in ("attribute", "answer", "accepted", "decision_ms"):
            value = getattr(self, name)
            if value is not None and (timings or name != "decision_ms"):
                out[name] = value
        if self.items is not None:
            out["items"] = list(self.items)
        if self.candidates is not None:
            out["candidates"] = [candidate.to_json() for candidate in self.candidates]
        for name in ("system_text", "user_text", "user_intent", "words"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TurnRecord:
        items = data.get("items")
        return cls(
            turn=int(data["turn"]),
            act=str(data["act"]),
            actor=str(data.get("actor", "system")),
            t=data.get("t"),
            attribute=data.get("attribute"),
            answer=data.get("answer"),
            items=tuple(items) if items is not None else None,
            accepted=data.get("accepted"),
            decision_ms=data.get("decision_ms"),
            candidates=(
                tuple(ConsideredAction.from_json(c) for c in data["candidates"])
                if data.get("candidates") is not None
                else None
            ),
            system_text=data.get("system_text"),
            user_text=data.get("user_text"),
            user_intent=data.get("user_intent"),
            words=data.get("words"),
        )


@dataclass(frozen=True)
class ConversationRecord:
    conversation_id: int
    dataset: str
    split: str
    user_id: UserId
    target_item: ItemId
    policy: str
    simulator: str
    seed: int
    turns: tuple[TurnRecord, ...]
    success: bool
    success_t: int | None
    target_rank: int | None
    termination: Termination
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.termination not in TERMINATIONS:
            raise ValueError(f"unknown termination {self.termination!r}")

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.success_t, self.target_rank)

    @property
    def decision_ms(self) -> list[float]:
        return [turn.decision_ms for turn in self.turns if turn.decision_ms is not None]

    def to_json(self, timings: bool = True) -> dict[str, Any]:
        """The transcript line; `timings=False` leaves out the machine-dependent decision times."""
        return {
            "conversation_id": self.conversation_id,
            "dataset": self.dataset,
            "split": self.split,
            "user_id": self.user_id,
            "target_item": self.target_item,
            "policy": self.policy,
            "simulator": self.simulator,
            "seed": self.seed,
            "turns": [turn.to_json(timings) for turn in self.turns],
            "success": self.success,
            "success_t": self.success_t,
            "target_rank": self.target_rank,
            "termination": self.termination,
            **self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConversationRecord:
        known = {
            "conversation_id",
            "dataset",
            "split",
            "user_id",
            "target_item",
            "policy",
            "simulator",
            "seed",
            "turns",
            "success",
            "success_t",
            "target_rank",
            "termination",
        }
        missing = sorted(known - data.keys())
        if missing:
            raise ValueError(f"transcript line lacks fields: {', '.join(missing)}")
        return cls(
            conversation_id=int(data["conversation_id"]),
            dataset=str(data["dataset"]),
            split=str(data["split"]),
            user_id=data["user_id"],
            target_item=data["target_item"],
            policy=str(data["policy"]),
            simulator=str(data["simulator"]),
            seed=int(data["seed"]),
            turns=tuple(TurnRecord.from_json(turn) for turn in data["turns"]),
            success=bool(data["success"]),
            success_t=data["success_t"],
            target_rank=data["target_rank"],
            termination=data["termination"],
            extra={key: value for key, value in data.items() if key not in known},
        )


def write_transcripts(records: Iterable[ConversationRecord], path: Path) -> None:
    import json

    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")


def read_transcripts(path: Path) -> Iterator[ConversationRecord]:
    import json

    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield ConversationRecord.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{path}, line {number}: not a transcript record ({error})") from None


def replay(record: ConversationRecord, catalog: Catalog, user: User, max_turns: int) -> Iterator[SystemTurn]:
    """Rebuild a recorded conversation turn by turn: the state each system action was chosen in,
    the action and the reply, so that a policy can be asked again why it acted as it did."""
    from crs.tracker import update

    state = new_state(user, max_turns)
    for turn in record.turns:
        if turn.actor == "user":
            attributes = (catalog.attribute_index(turn.attribute),) if turn.attribute is not None else ()
            state = update(state, None, InformReply(attributes) if attributes else QuitReply())
            continue
        action: SystemAction
        reply: UserReply | None
        if turn.act == "ask" and turn.attribute is not None:
            action = Ask(catalog.attribute_index(turn.attribute))
            reply = QuitReply() if turn.answer in (None, "quit") else AnswerReply(Answer(turn.answer))
        elif turn.act == "recommend" and turn.items is not None:
            items = tuple(catalog.item_index(item) for item in turn.items)
            action = Recommend(items)
            target = catalog.item_index(record.target_item)
            reply = AcceptReply(target) if turn.accepted else RejectReply()
        else:
            action, reply = GiveUp(), None
        yield SystemTurn(turn, state, action, reply)
        if state.finished:
            return
        state = update(state, action, reply)


@dataclass(frozen=True)
class SystemTurn:
    record: TurnRecord
    state: DialogueState  # before the action
    action: SystemAction
    reply: UserReply | None
