"""State tracking: the one place where a reply changes the dialogue state.

`update` is a pure function: the previous state is never modified, so a conversation can be
replayed, branched or inspected turn by turn.
"""

from __future__ import annotations

from crs.types import (
    AcceptReply,
    Answer,
    AnswerReply,
    Ask,
    DialogueState,
    Exchange,
    GiveUp,
    InformReply,
    QuitReply,
    Recommend,
    RejectReply,
    SystemAction,
    UserReply,
)


class InvalidTurnError(ValueError):
    """A reply that does not fit the action it answers, or a turn after the conversation ended."""


def _merge(existing: tuple[int, ...], new: tuple[int, ...]) -> tuple[int, ...]:
    return existing + tuple(a for a in dict.fromkeys(new) if a not in existing)


def _without(existing: tuple[int, ...], dropped: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(a for a in existing if a not in dropped) if dropped else existing


def update(state: DialogueState, action: SystemAction | None, reply: UserReply | None) -> DialogueState:
    """The state after `reply` answered `action` (None: the user speaks first).

    `reply` is None only when the action was `GiveUp`, which nobody answers.
    """
    if state.finished:
        raise InvalidTurnError(f"the conversation has already ended ({state.termination})")
    turn = state.turn + 1
    changes: dict[str, object] = {"turn": turn, "history": state.history + (Exchange(turn, action, reply),)}

    if isinstance(action, GiveUp):
        changes["termination"] = action.reason
    elif reply is None:
        raise InvalidTurnError(f"{action!r} needs a reply")
    elif isinstance(reply, QuitReply):
        changes["termination"] = "user_quit"
    elif isinstance(reply, InformReply):
        if isinstance(action, Recommend):
            # Volunteering after a list means none of the shown items was wanted.
            changes["rejected_items"] = _merge(state.rejected_items, action.items)
        # A later statement overrides an earlier one: "comedy", then "no comedy" leaves it unwanted.
        accepted = _merge(_without(state.accepted_attributes, reply.unwanted), reply.attributes)
        changes["accepted_attributes"] = accepted
        changes["rejected_attributes"] = _merge(
            _without(state.rejected_attributes, reply.attributes), reply.unwanted
        )
        stated = (*reply.attributes, *reply.unwanted)
        unknown = _without(state.unknown_attributes, stated)
        if isinstance(action, Ask) and action.attribute not in stated:
            # A wish in reply to a question about something else passes over the question, as
            # "don't care" would: asking it again at once would ignore what the person just did.
            unknown = _merge(unknown, (action.attribute,))
        changes["unknown_attributes"] = unknown
    elif isinstance(reply, AnswerReply):
        if not isinstance(action, Ask):
            raise InvalidTurnError(f"a yes/no answer needs a question, got {action!r}")
        field = {
            Answer.YES: "accepted_attributes",
            Answer.NO: "rejected_attributes",
            Answer.DONT_KNOW: "unknown_attributes",
        }[reply.answer]
        changes[field] = _merge(getattr(state, field), (action.attribute,))
    elif isinstance(reply, AcceptReply):
        if not isinstance(action, Recommend) or reply.item not in action.items:
            raise InvalidTurnError(f"accepted item {reply.item} was not among the recommended items")
        changes["termination"] = "success"
        changes["accepted_item"] = reply.item
    elif isinstance(reply, RejectReply):
        if not isinstance(action, Recommend):
            raise InvalidTurnError(f"a rejection needs a recommendation, got {action!r}")
        changes["rejected_items"] = _merge(state.rejected_items, action.items)
    else:  # pragma: no cover - the union above is exhaustive
        raise InvalidTurnError(f"unknown reply {reply!r}")

    if "termination" not in changes and turn >= state.max_turns:
        changes["termination"] = "max_turns"
    return state.evolve(**changes)
