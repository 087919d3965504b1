"""Personas of the LLM-simulated user: how a simulated person talks and how patient it is.

A persona changes the *words* (tone, verbosity) and a few *decisions* that people differ in: how
many attributes they volunteer when they open, whether they add an unasked wish to an answer, how
often they say "don't know", and when they lose patience. It never changes what is true about the
target: a volunteered attribute is always one of the target's, a yes is always a yes.

`sample_persona(rng)` draws one from a fixed distribution (chosen to cover the range of people in
a chat rather than to fit any measured population):

| field | distribution |
| --- | --- |
| tone | uniform over casual, polite, terse, enthusiastic |
| verbosity | short 50 %, medium 35 %, long 15 % |
| patience | never quits 70 %; otherwise quits after 8-14 turns (uniform) |
| opening_attributes | 1: 50 %, 2: 35 %, 3: 15 % |
| volunteer_rate | uniform in [0, 0.3] |
| dont_know_rate | 0 for 60 %; otherwise uniform in [0, 0.15] |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Tone = Literal["casual", "polite", "terse", "enthusiastic"]
Verbosity = Literal["short", "medium", "long"]
TONES: tuple[Tone, ...] = ("casual", "polite", "terse", "enthusiastic")
VERBOSITIES: tuple[Verbosity, ...] = ("short", "medium", "long")
VERBOSITY_WEIGHTS = (0.5, 0.35, 0.15)
OPENING_WEIGHTS = (0.5, 0.35, 0.15)  # for 1, 2 and 3 volunteered attributes
PATIENT_SHARE = 0.7  # share of personas who never quit
PATIENCE_RANGE = (8, 14)  # turns, inclusive, for the others
MAX_VOLUNTEER_RATE = 0.3
DONT_KNOW_SHARE = 0.4  # share of personas who ever say "don't know"
MAX_DONT_KNOW_RATE = 0.15


@dataclass(frozen=True)
class Persona:
    tone: Tone = "casual"
    verbosity: Verbosity = "short"
    patience: int | None = None  # quits once this many turns have passed; None = never
    opening_attributes: int = 1  # attributes of the target named in the opening request (1-3)
    volunteer_rate: float = 0.0  # chance to add one more (true) wish to an answer
    dont_know_rate: float = 0.0  # chance to answer a question with "don't know"

    def __post_init__(self) -> None:
        if self.tone not in TONES:
            raise ValueError(f"tone must be one of {', '.join(TONES)}, got {self.tone!r}")
        if self.verbosity not in VERBOSITIES:
            raise ValueError(f"verbosity must be one of {', '.join(VERBOSITIES)}, got {self.verbosity!r}")
        if self.patience is not None and self.patience < 2:
            raise ValueError(
                f"patience must leave room for one answer (2 turns or more), got {self.patience}"
            )
        if not 1 <= self.opening_attributes <= 3:
            raise ValueError(f"opening_attributes must be 1, 2 or 3, got {self.opening_attributes}")
        for name in ("volunteer_rate", "dont_know_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")

    @property
    def style(self) -> str:
        """The persona as the phrasing prompt names it: "casual, short"."""
        return f"{self.tone}, {self.verbosity}"


# The protocol's user: one opening attribute, never quits, never "don't know", never volunteers.
PROTOCOL_PERSONA = Persona()


def sample_persona(rng: np.random.Generator) -> Persona:
    """One persona from the documented distribution; the same generator state gives the same one.
    Always makes the same number of draws, so what follows in the stream does not depend on it."""
    tone = TONES[int(rng.integers(len(TONES)))]
    verbosity = VERBOSITIES[int(rng.choice(len(VERBOSITIES), p=VERBOSITY_WEIGHTS))]
    patient = rng.random() < PATIENT_SHARE
    patience_draw = int(rng.integers(PATIENCE_RANGE[0], PATIENCE_RANGE[1] + 1))
    opening = 1 + int(rng.choice(len(OPENING_WEIGHTS), p=OPENING_WEIGHTS))
    volunteer = float(rng.uniform(0.0, MAX_VOLUNTEER_RATE))
    says_dont_know = rng.random() < DONT_KNOW_SHARE
    dont_know = float(rng.uniform(0.0, MAX_DONT_KNOW_RATE))
    return Persona(
        tone=tone,
        verbosity=verbosity,
        patience=None if patient else patience_draw,
        opening_attributes=opening,
        volunteer_rate=round(volunteer, 4),
        dont_know_rate=round(dont_know, 4) if says_dont_know else 0.0,
    )
