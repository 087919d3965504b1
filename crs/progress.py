"""Progress of long work, in one shape: a callback that receives `ProgressEvent`s.

Library code reports (training a scorer or a policy, embedding a catalog, running conversations,
a comparison's stages) and never draws anything; the CLI turns events into progress bars, the web
app into its progress tracker. A stage is identified by its text: a new text starts a new bar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """`done` of `total` steps of `stage` ("training bpr on lastfm_star", "conversations").

    `unit` names a step (epoch, %, conv, item); `note` is a short live figure ("loss 0.31");
    `overall` is the share of the whole job done, when the reporter knows it (0..1)."""

    stage: str
    done: int
    total: int
    unit: str = "it"
    note: str = ""
    overall: float | None = None


Progress = Callable[[ProgressEvent], None]


def report(
    progress: Progress | None, stage: str, done: int, total: int, unit: str = "it", note: str = ""
) -> None:
    """Send one event when there is someone to tell."""
    if progress is not None:
        progress(ProgressEvent(stage, done, total, unit, note))


def fractions(progress: Progress | None, stage: str) -> Callable[[float], None]:
    """A `fraction -> None` reporter of one stage in percent, for work that knows its share done."""

    def on_fraction(fraction: float) -> None:
        report(progress, stage, round(100 * min(max(fraction, 0.0), 1.0)), 100, "%")

    return on_fraction
