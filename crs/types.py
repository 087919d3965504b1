"""Core types of a conversation: catalog, users, system actions, user replies, dialogue state.

Everything here is immutable. Items and attributes are addressed by their *index* (0..n-1) inside
a catalog; the dataset's own ids are kept on the objects and written to transcripts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import Literal, TypeAlias

from crs.index import AttributeIndex

ItemId: TypeAlias = int | str
UserId: TypeAlias = int | str


@dataclass(frozen=True, slots=True)
class Attribute:
    index: int
    id: int | str
    name: str
    group: str = "tag"


@dataclass(frozen=True, slots=True)
class Item:
    index: int
    id: ItemId
    title: str
    attributes: tuple[int, ...]  # attribute indices, sorted
    facts: tuple[tuple[str, str], ...] = ()  # readable facts such as ("year", "1994")


@dataclass(frozen=True)
class Catalog:
    items: tuple[Item, ...]
    attributes: tuple[Attribute, ...]

    def __post_init__(self) -> None:
        for position, item in enumerate(self.items):
            if item.index != position:
                raise ValueError(f"item {item.id!r} has index {item.index}, expected {position}")
        for position, attribute in enumerate(self.attributes):
            if attribute.index != position:
                raise ValueError(
                    f"attribute {attribute.id!r} has index {attribute.index}, expected {position}"
                )

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_attributes(self) -> int:
        return len(self.attributes)

    @cached_property
    def index(self) -> AttributeIndex:
        """Array form of the item-attribute relation, built once and shared by policies."""
        return AttributeIndex.from_rows([item.attributes for item in self.items], self.n_attributes)

    @cached_property
    def _item_by_id(self) -> dict[ItemId, int]:
        return {item.id: item.index for item in self.items}

    @cached_property
    def _attribute_by_id(self) -> dict[int | str, int]:
        return {attribute.id: attribute.index for attribute in self.attributes}

    def item_index(self, item_id: ItemId) -> int:
        try:
            return self._item_by_id[item_id]
        except KeyError:
            raise KeyError(f"unknown item id {item_id!r}") from None

    def attribute_index(self, attribute_id: int | str) -> int:
        try:
            return self._attribute_by_id[attribute_id]
        except KeyError:
            raise KeyError(f"unknown attribute id {attribute_id!r}") from None


@dataclass(frozen=True, slots=True)
class User:
    id: UserId
    friends: tuple[UserId, ...] = ()
    liked_attributes: tuple[int, ...] = ()  # attribute indices the user tagged with


# --- system actions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ask:
    """Ask whether the wanted item has one attribute."""

    attribute: int


@dataclass(frozen=True, slots=True)
class Recommend:
    """Show a ranked list of items (indices, best first)."""

    items: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The policy has nothing left to offer (for example a hard filter emptied the candidates)."""

    reason: Literal["no_candidates", "error"] = "no_candidates"


SystemAction: TypeAlias = Ask | Recommend | GiveUp


# --- user replies -------------------------------------------------------------------------------


class Answer(StrEnum):
    YES = "yes"
    NO = "no"
    DONT_KNOW = "dont_know"


@dataclass(frozen=True, slots=True)
class AnswerReply:
    """Reply to an `Ask`."""

    answer: Answer


@dataclass(frozen=True, slots=True)
class AcceptReply:
    """The user takes one of the recommended items."""

    item: int


@dataclass(frozen=True, slots=True)
class RejectReply:
    """None of the recommended items is wanted."""


@dataclass(frozen=True, slots=True)
class InformReply:
    """The user volunteers attributes the wanted item has (and, optionally, ones it must not have),
    and may name items they liked or disliked ("something like The Matrix"): evidence toward items
    similar to those, never a constraint, and the named items themselves are known to the user."""

    attributes: tuple[int, ...]
    unwanted: tuple[int, ...] = ()
    liked_items: tuple[int, ...] = ()
    disliked_items: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class QuitReply:
    """The user leaves the conversation."""


UserReply: TypeAlias = AnswerReply | AcceptReply | RejectReply | InformReply | QuitReply


# --- dialogue state -----------------------------------------------------------------------------

Termination: TypeAlias = Literal["success", "max_turns", "user_quit", "no_candidates", "error", "in_progress"]
# "in_progress" is never a state's: it marks the record of a conversation saved while still going
# on (a chat transcript downloaded mid-conversation).
TERMINATIONS: tuple[Termination, ...] = (
    "success",
    "max_turns",
    "user_quit",
    "no_candidates",
    "error",
    "in_progress",
)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One completed turn: who acted, what they did and the reply it got."""

    turn: int  # 1-based turn number of the conversation
    action: SystemAction | None  # None for the user's opening turn
    reply: UserReply | None  # None when the system gave up


@dataclass(frozen=True)
class DialogueState:
    """Everything known about a conversation so far. Updated only by `crs.tracker.update`."""

    user: User
    max_turns: int = 15
    turn: int = 0  # turns completed so far, the user's opening included
    accepted_attributes: tuple[int, ...] = ()  # confirmed or volunteered
    rejected_attributes: tuple[int, ...] = ()  # denied or declared unwanted
    unknown_attributes: tuple[int, ...] = ()  # "don't know"
    rejected_items: tuple[int, ...] = ()
    history: tuple[Exchange, ...] = ()
    termination: Termination | None = None
    accepted_item: int | None = None

    @property
    def finished(self) -> bool:
        return self.termination is not None

    @property
    def system_actions_taken(self) -> int:
        return sum(1 for exchange in self.history if exchange.action is not None)

    @property
    def turns_left(self) -> int:
        return self.max_turns - self.turn

    @property
    def asked_attributes(self) -> frozenset[int]:
        """Attributes whose status is known or was asked already: never worth asking again."""
        return (
            frozenset(self.accepted_attributes)
            | frozenset(self.rejected_attributes)
            | frozenset(self.unknown_attributes)
        )

    def evolve(self, **changes: object) -> DialogueState:
        return replace(self, **changes)  # type: ignore[arg-type]


def new_state(user: User, max_turns: int = 15) -> DialogueState:
    return DialogueState(user=user, max_turns=max_turns)


@dataclass(frozen=True)
class Interactions:
    """Per-user interacted items (item indices) of one split."""

    split: str
    by_user: Mapping[UserId, tuple[int, ...]] = field(default_factory=dict)

    def pairs(self) -> list[tuple[UserId, int]]:
        """(user, item) pairs in file order: the conversation targets of an evaluation split."""
        return [(user_id, item) for user_id, items in self.by_user.items() for item in items]

    def items_of(self, user_id: UserId) -> Sequence[int]:
        return self.by_user.get(user_id, ())
