"""What a message amounts to for the conversation: the one text-to-reply rule.

The chat acts on it, and the LLM user checks its own words with it (`simulators.llm_user`), so
the "agreement" the spoken evaluation reports is measured against exactly what the chat does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from crs.language.acts import Help, MoreLike, RejectItem, Restart, Understanding, to_user_reply
from crs.types import Ask, InformReply, Recommend, RejectReply, SystemAction, UserReply

Kind = Literal["reply", "restart", "help", "clarify", "more_like", "not_understood"]


@dataclass(frozen=True)
class Reading:
    """One message as the chat takes it. `reply` is set only for kind "reply": the dialogue state
    receives it; every other kind makes the chat answer without a turn of the conversation."""

    kind: Kind
    reply: UserReply | None = None
    clarify: str = ""  # the question back, for kind "clarify"
    item: int | None = None  # the item to show more like, for kind "more_like"
    choices: tuple[int, ...] = ()  # the items a "Did you mean ...?" offers
    choices_liked: bool = True  # named as liked ("I loved King Kong") or not
    # A change of mind ("hmm actually no, I'm more in the mood for a romance", not said to a
    # question): the reply replaces the earlier wishes instead of adding to them.
    replaces_wishes: bool = False
    # "not the third one": films of the list on screen the person turned down, the rest kept;
    # `reply` still says what the protocol's rule makes of it (the whole list rejected).
    dropped: tuple[int, ...] = ()

    @property
    def chat_only(self) -> bool:
        """Whether the chat does more with the message than the protocol's reply says (keeps the
        rest of a list, or starts over): a simulated user must not rely on such readings."""
        return bool(self.dropped) or self.replaces_wishes


def read_message(understanding: Understanding, context: SystemAction | None) -> Reading:
    """How the chat takes `understanding` of a message written while `context` was pending:
    restart and help first, then a question back when unsure, "more like" on a shown list, and
    otherwise the single reply the message amounts to (`to_user_reply`), if any. To a list, a
    rejection that says what instead ("less childish please", "none of these, something darker")
    is that wish: a wish given to a list turns the list down (`crs.tracker`), and keeps what it
    asks for."""
    if understanding.of_type(Restart):
        return Reading("restart")
    if understanding.of_type(Help):
        return Reading("help")
    if understanding.clarify:
        return Reading(
            "clarify",
            clarify=understanding.clarify,
            choices=understanding.choices,
            choices_liked=understanding.choices_liked,
        )
    more = [act for act in understanding.acts if isinstance(act, MoreLike)]
    if more and isinstance(context, Recommend):
        return Reading("more_like", item=more[0].item)
    reply = to_user_reply(understanding)
    if reply is None:
        return Reading("not_understood")
    dropped: tuple[int, ...] = ()
    if isinstance(reply, RejectReply) and isinstance(context, Recommend):
        turned_down = tuple(a.item for a in understanding.acts if isinstance(a, RejectItem))
        if turned_down and len(turned_down) < len(context.items):
            dropped = turned_down
    if isinstance(reply, RejectReply) and isinstance(context, Recommend) and not dropped:
        informs = [act for act in understanding.acts if isinstance(act, InformReply)]
        wishes = InformReply(
            attributes=tuple(a for act in informs for a in act.attributes),
            unwanted=tuple(a for act in informs for a in act.unwanted),
        )
        if wishes.attributes or wishes.unwanted:
            reply = wishes
    replaces_wishes = understanding.changes_mind and not isinstance(context, Ask)
    return Reading("reply", reply=reply, replaces_wishes=replaces_wishes, dropped=dropped)
