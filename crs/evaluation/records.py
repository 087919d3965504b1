"""Typed run records, the one place they are built, and their JSONL transcript form.

One `ConversationRecord` per conversation; `to_json` gives the documented transcript line
(README, "Transcript format") and `from_json` reads it back for `crs view`. Every record (rule
runs, runs with the LLM user, a chat's saved transcript) is built by `turn_record` and
`build_record`, so success, its turn and the target's rank are derived the same way everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crs.evaluation.metrics import Outcome
from crs.tracker import update
from crs.types import (
    TERMINATIONS,
    AcceptReply,
    Answer,
    AnswerReply,
    Ask,
    Catalog,
    DialogueState,
    Exchange,
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
        _expect(data, ("items", "candidates"), (list, type(None)))
        _expect(data, ("attribute",), (int, str, type(None)))
        _expect(data, ("answer", "system_text", "user_text", "user_intent", "words"), (str, type(None)))
        if items is not None and not all(isinstance(i, int | str) and not isinstance(i, bool) for i in items):
            raise TypeError(f"'items' must be a list of item ids, got {items!r}")
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
        # Readers look ids up and count turns with these: a hand-edited line fails here, named.
        _expect(data, ("user_id", "target_item"), (int, str))
        _expect(data, ("success_t", "target_rank"), (int, type(None)))
        for key in ("success_t", "target_rank"):
            if data[key] is not None and data[key] < 0:
                raise ValueError(f"{key!r} must be 0 or more, got {data[key]!r}")
        if not isinstance(data["turns"], list):
            raise TypeError(f"'turns' must be a list, got {data['turns']!r}")
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


@dataclass(frozen=True)
class RunInfo:
    """What every record of one run shares."""

    dataset: str
    split: str
    policy: str
    simulator: str
    seed: int


def answer_label(reply: UserReply | None) -> str | None:
    """How a reply to a question is written in a transcript: yes / no / dont_know, "quit", or
    "inform" (a person who answered with a wish of their own instead)."""
    if isinstance(reply, AnswerReply):
        return reply.answer.value
    if isinstance(reply, QuitReply):
        return "quit"
    if isinstance(reply, InformReply):
        return "inform"
    return None


def turn_record(catalog: Catalog, exchange: Exchange, t: int | None = None, **extra: Any) -> TurnRecord:
    """The transcript form of one exchange: the user's opening (no action), or system action `t`
    (0-based, as SR@k counts) with the reply it got. `extra`: TurnRecord's optional fields
    (decision_ms, candidates, words)."""
    action, reply = exchange.action, exchange.reply
    if action is None:
        attributes = reply.attributes if isinstance(reply, InformReply) else ()
        return TurnRecord(
            exchange.turn,
            "inform" if isinstance(reply, InformReply) else "quit",
            actor="user",
            attribute=catalog.attributes[attributes[0]].id if attributes else None,
            **extra,
        )
    if isinstance(action, Ask):
        attribute = catalog.attributes[action.attribute].id
        return TurnRecord(exchange.turn, "ask", t=t, attribute=attribute, answer=answer_label(reply), **extra)
    if isinstance(action, Recommend):
        items = tuple(catalog.items[i].id for i in action.items)
        accepted = isinstance(reply, AcceptReply)
        return TurnRecord(exchange.turn, "recommend", t=t, items=items, accepted=accepted, **extra)
    return TurnRecord(exchange.turn, "give_up", t=t, **extra)


def history_records(catalog: Catalog, history: Iterable[Exchange]) -> list[TurnRecord]:
    """Every exchange of a dialogue state's history as turn records, system actions numbered t = 0, 1, ..."""
    out: list[TurnRecord] = []
    t = 0
    for exchange in history:
        if exchange.action is None:
            out.append(turn_record(catalog, exchange))
        else:
            out.append(turn_record(catalog, exchange, t))
            t += 1
    return out


def build_record(
    run: RunInfo,
    catalog: Catalog,
    conversation_id: int,
    user_id: UserId,
    target: int | None,
    turns: Iterable[TurnRecord],
    accepted_item: int | None,
    termination: Termination,
    extra: dict[str, Any] | None = None,
) -> ConversationRecord:
    """A conversation's record. It succeeded when the accepted item (an index) is the target;
    `success_t` is the t of the list it was taken from and `target_rank` its place there. A
    person's chat has no hidden target: `target` None (written as "") until they take an item."""
    turns = tuple(turns)
    target_id: ItemId = catalog.items[target].id if target is not None else ""
    success_t: int | None = None
    target_rank: int | None = None
    if target is not None and accepted_item == target:
        taken = [turn for turn in turns if turn.act == "recommend" and turn.accepted]
        if taken and taken[-1].items is not None and target_id in taken[-1].items:
            success_t, target_rank = taken[-1].t, taken[-1].items.index(target_id) + 1
    return ConversationRecord(
        conversation_id=conversation_id,
        dataset=run.dataset,
        split=run.split,
        user_id=user_id,
        target_item=target_id,
        policy=run.policy,
        simulator=run.simulator,
        seed=run.seed,
        turns=turns,
        success=success_t is not None,
        success_t=success_t,
        target_rank=target_rank,
        termination=termination,
        extra=dict(extra or {}),
    )


def write_transcripts(records: Iterable[ConversationRecord], path: Path) -> None:
    import json

    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")


def _expect(data: dict[Any, Any], keys: Iterable[Any], types: tuple[type, ...]) -> None:
    """TypeError naming the first of `keys` whose value in `data` is not of `types` (a boolean
    is not a number here, as it is not in a transcript crs writes)."""
    for key in keys:
        value = data.get(key)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise TypeError(f"{key!r} must be {names}, got {value!r}")


def read_transcripts(path: Path) -> Iterator[ConversationRecord]:
    import json

    with path.open("rb") as handle:  # decoded line by line, so that bytes that are not UTF-8 name their line
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw.decode("utf-8"))
                if not isinstance(data, dict):
                    raise TypeError(f"a JSON {type(data).__name__}, not an object")
                yield ConversationRecord.from_json(data)
            # OverflowError: a number too large for its field (1e999 is infinity to JSON);
            # RecursionError: nesting deeper than the parser goes.
            except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError) as error:
                raise ValueError(f"{path}, line {number}: not a transcript record ({error})") from None


def replay(record: ConversationRecord, catalog: Catalog, user: User, max_turns: int) -> Iterator[SystemTurn]:
    """Rebuild a recorded conversation turn by turn: the state each system action was chosen in,
    the action and the reply, so that a policy can be asked again why it acted as it did."""
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
