"""Metrics of the multi-round protocol, counted exactly as UNICORN's RL_evaluate.py does.

System actions are numbered t = 0..13. A success at t counts toward SR@k when t < k; AT is the
mean of t + 1 over successes, with 15 for every failure; hDCG adds
1/log2(t+3) + (1/log2(t+2) - 1/log2(t+3)) / log2(r+1) for a success at t with the target at rank
r (1..10), and 0 for a failure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SR_CUTOFFS = (5, 10, 15)
FAILURE_TURNS = 15


@dataclass(frozen=True)
class Outcome:
    """What the metrics need from one conversation."""

    success_t: int | None  # index of the successful system action, None for a failure
    target_rank: int | None  # 1-based rank of the target in the accepted list


def hdcg(success_t: int, rank: int) -> float:
    head = 1.0 / math.log2(success_t + 3)
    return head + (1.0 / math.log2(success_t + 2) - head) / math.log2(rank + 1)


@dataclass(frozen=True)
class Metrics:
    conversations: int
    successes: int
    sr: dict[int, float]  # k -> SR@k
    average_turns: float
    hdcg: float
    success_by_turn: tuple[float, ...]  # entry k-1: share of successes with t + 1 <= k, k = 1..15

    def as_dict(self) -> dict[str, float | int | list[float]]:
        out: dict[str, float | int | list[float]] = {
            "conversations": self.conversations,
            "successes": self.successes,
        }
        out.update({f"SR@{k}": v for k, v in self.sr.items()})
        out["AT"] = self.average_turns
        out["hDCG"] = self.hdcg
        out["success_by_turn"] = list(self.success_by_turn)
        return out


def compute_metrics(outcomes: Sequence[Outcome], max_turns: int = FAILURE_TURNS) -> Metrics:
    n = len(outcomes)
    if n == 0:
        raise ValueError("no conversations to compute metrics over")
    successes = [o for o in outcomes if o.success_t is not None]
    sr = {k: sum(1 for o in successes if o.success_t is not None and o.success_t < k) / n for k in SR_CUTOFFS}
    turns = [(o.success_t + 1) if o.success_t is not None else max_turns for o in outcomes]
    total_hdcg = sum(hdcg(o.success_t, o.target_rank or 1) for o in successes if o.success_t is not None)
    by_turn = tuple(
        sum(1 for o in successes if o.success_t is not None and o.success_t + 1 <= k) / n
        for k in range(1, max_turns + 1)
    )
    return Metrics(
        conversations=n,
        successes=len(successes),
        sr=sr,
        average_turns=sum(turns) / n,
        hdcg=total_hdcg / n,
        success_by_turn=by_turn,
    )
