"""Language understanding and generation for the chat: messages -> dialogue acts -> replies.

`Understander(catalog).understand(text, context)` reads a message; `crs.language.generation`
writes the system's side. Rules over word lists (`lexicon.toml`) and rapidfuzz for typos: importing
this package loads no model.
"""

from crs.language.acts import (
    DialogueAct,
    DontCare,
    Help,
    MentionItem,
    MoreLike,
    RejectItem,
    Restart,
    Understanding,
    Unknown,
    to_user_reply,
)
from crs.language.understanding import MAX_CHARS, Understander

__all__ = [
    "MAX_CHARS",
    "DialogueAct",
    "DontCare",
    "Help",
    "MentionItem",
    "MoreLike",
    "RejectItem",
    "Restart",
    "Understander",
    "Understanding",
    "Unknown",
    "to_user_reply",
]
