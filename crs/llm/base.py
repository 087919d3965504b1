"""The contract between the simulated users and any language model: a request in, a generation out.

A request is either a raw completion prompt (few-shot text for a base model such as gemma-3-270m)
or chat messages (for an instruction-tuned model behind an OpenAI-compatible endpoint). Seed and
temperature are part of every request, so a backend that honours them gives the same words for the
same request, and the on-disk cache can key on the request alone.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


class LLMError(RuntimeError):
    """A backend could not produce a generation (unreachable server, bad model file, ...).
    The message says what was tried and what to do about it, on one line."""


def one_line(text: str, limit: int = 300) -> str:
    """`text` with its runs of whitespace (newlines included) made single spaces, cut to `limit`:
    a server's words quoted in an error message must not break the message's single line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# Bounded in depth and length: an answer quoted in an error can be huge or nested past the
# recursion limit, and neither may turn a clear error into another one.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother = 4, 120, 120
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = 8


def shown(value: Any, limit: int = 300) -> str:
    """A short one-line picture of a decoded JSON value, for error messages."""
    return one_line(_SHOWN.repr(value), limit)


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    """Exactly one of `prompt` (text completion) and `messages` (chat completion) is set."""

    prompt: str | None = None
    messages: tuple[Message, ...] = ()
    max_tokens: int = 48
    temperature: float = 0.0
    seed: int = 0
    stop: tuple[str, ...] = ("\n",)
    # A prompt that shares little with the one before (retrieved examples that vary per turn)
    # is cheaper evaluated from scratch, in batches, than one token at a time after a reused
    # prefix (crs.llm.local); other backends ignore it.
    fresh: bool = False

    def __post_init__(self) -> None:
        if (self.prompt is None) == (not self.messages):
            raise ValueError("a generation request needs exactly one of a prompt or chat messages")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be 0 or more, got {self.temperature}")


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float  # wall time of the model call; ~0 when served from the cache
    cached: bool = False


@runtime_checkable
class LLMBackend(Protocol):
    """A language model. `name` identifies backend and model (it is part of the cache key)."""

    name: str

    def generate(self, request: GenerationRequest) -> Generation: ...
