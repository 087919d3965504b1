"""Dialogue acts: what one user message means, as typed values.

The simulator's reply types in `crs.types` (`AnswerReply`, `InformReply`, `AcceptReply`,
`RejectReply`, `QuitReply`) already cover most of what a person says, so they are reused as acts;
the types below cover only what a typed message can say and a simulated user never does (don't
care, naming an item, reacting to one item of a list, restart, help, not understood).
`to_user_reply` folds a message's acts back into the one reply the tracker understands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from crs.types import (
    AcceptReply,
    Answer,
    AnswerReply,
    InformReply,
    QuitReply,
    RejectReply,
    UserReply,
)


@dataclass(frozen=True, slots=True)
class DontCare:
    """Answer to the pending question: either way is fine (the tracker treats it as don't know)."""


@dataclass(frozen=True, slots=True)
class MentionItem:
    """The user names an item as an example ("like Toy Story"); its attributes become evidence."""

    item: int
    liked: bool = True


@dataclass(frozen=True, slots=True)
class RejectItem:
    """One recommended item is not wanted ("not the second one"); `seen` when already known."""

    item: int
    seen: bool = False


@dataclass(frozen=True, slots=True)
class MoreLike:
    """Show more items like this recommended one ("more like the first")."""

    item: int


@dataclass(frozen=True, slots=True)
class Restart:
    """Forget the conversation and start again."""


@dataclass(frozen=True, slots=True)
class Help:
    """The user asks what they can say."""


@dataclass(frozen=True, slots=True)
class Unknown:
    """Nothing in the message was understood with enough confidence."""


DialogueAct: TypeAlias = (
    AnswerReply
    | DontCare
    | InformReply
    | MentionItem
    | AcceptReply
    | RejectReply
    | RejectItem
    | MoreLike
    | QuitReply
    | Restart
    | Help
    | Unknown
)


@dataclass(frozen=True, slots=True)
class Understanding:
    """The acts of one message, best first, and how sure the reader is.

    `clarify` is a question to ask back instead of acting on a guess (an unsure fuzzy title, an
    ambiguous "seen it", a message with nothing understood); when set, the acts hold only what was
    understood with confidence.
    """

    acts: tuple[DialogueAct, ...]
    confidence: float
    clarify: str | None = None
    truncated: bool = False  # the message was longer than the reader looks at
    # The items a "Did you mean ...?" offers, best guess first (for buttons), and whether the
    # message named them as liked ("I loved King Kong") or not ("nothing like King Kong").
    choices: tuple[int, ...] = ()
    choices_liked: bool = True
    # "hmm actually no, I'm more in the mood for a romance": a new wish that replaces the earlier
    # ones instead of adding to them.
    changes_mind: bool = False

    def of_type(self, kind: type) -> tuple[DialogueAct, ...]:
        return tuple(act for act in self.acts if isinstance(act, kind))


def to_user_reply(understanding: Understanding) -> UserReply | None:
    """The single tracker reply a message amounts to, or None when it has none (help, unknown).

    Precedence follows what ends or answers a turn first: quit, accept, answer, reject, inform.
    Mentioned items become liked or disliked items of the inform: the policy reads them as
    similarity, not as their attributes (a person who likes The Matrix does not want only films
    with every one of its tags).
    """
    acts = understanding.acts
    for act in acts:
        if isinstance(act, QuitReply):
            return act
    for act in acts:
        if isinstance(act, AcceptReply):
            return act
    for act in acts:
        if isinstance(act, AnswerReply):
            return act
        if isinstance(act, DontCare):
            return AnswerReply(Answer.DONT_KNOW)
    for act in acts:
        if isinstance(act, RejectReply | RejectItem):
            return RejectReply()
    wanted: list[int] = []
    unwanted: list[int] = []
    liked: list[int] = []
    disliked: list[int] = []
    for act in acts:
        if isinstance(act, InformReply):
            wanted.extend(act.attributes)
            unwanted.extend(act.unwanted)
        elif isinstance(act, MentionItem):
            (liked if act.liked else disliked).append(act.item)
    if wanted or unwanted or liked or disliked:
        return InformReply(
            attributes=tuple(dict.fromkeys(a for a in wanted if a not in unwanted)),
            unwanted=tuple(dict.fromkeys(unwanted)),
            liked_items=tuple(dict.fromkeys(liked)),
            disliked_items=tuple(dict.fromkeys(i for i in disliked if i not in liked)),
        )
    return None
