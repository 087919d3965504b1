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


def conversation_values(outcomes: Sequence[Outcome], key: str, max_turns: int = FAILURE_TURNS) -> list[float]:
    """One number per conversation whose mean over the conversations is the metric `key`:
    "SR@k" 1.0 for a success at t < k, else 0.0; "AT" t + 1 for a success, `max_turns` for a
    failure; "hDCG" the success's gain, 0.0 for a failure. Raises KeyError for any other key."""
    if key.startswith("SR@") and key[3:].isdigit():
        k = int(key[3:])
        return [1.0 if o.success_t is not None and o.success_t < k else 0.0 for o in outcomes]
    if key == "AT":
        return [float(o.success_t + 1) if o.success_t is not None else float(max_turns) for o in outcomes]
    if key == "hDCG":
        return [hdcg(o.success_t, o.target_rank or 1) if o.success_t is not None else 0.0 for o in outcomes]
    raise KeyError(key)


def compute_metrics(outcomes: Sequence[Outcome], max_turns: int = FAILURE_TURNS) -> Metrics:
    n = len(outcomes)
    if n == 0:
        raise ValueError("no conversations to compute metrics over")

    def mean(key: str) -> float:
        return sum(conversation_values(outcomes, key, max_turns)) / n

    return Metrics(
        conversations=n,
        successes=sum(1 for o in outcomes if o.success_t is not None),
        sr={k: mean(f"SR@{k}") for k in SR_CUTOFFS},
        average_turns=mean("AT"),
        hdcg=mean("hDCG"),
        # SR@k counts a success at t < k, i.e. t + 1 <= k: the curve is SR@k for every k.
        success_by_turn=tuple(mean(f"SR@{k}") for k in range(1, max_turns + 1)),
    )
