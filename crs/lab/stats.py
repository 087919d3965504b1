"""Paired statistics over conversations: bootstrap intervals and significance tests.

Every configuration of a comparison talks to the same simulated users (same targets, same
seeds), so conversation i of one configuration is paired with conversation i of another. The
tests use that pairing:

- success: the exact McNemar test, i.e. a two-sided binomial test on the discordant pairs (one
  configuration succeeds where the other fails), which ignores the pairs that agree;
- turns and hDCG: a paired permutation test of the mean difference, flipping the sign of each
  conversation's difference at random (exact, over all sign patterns, when few pairs differ).

Intervals are percentile bootstrap intervals, resampling whole conversations. All randomness is
seeded, so a report is reproducible to the digit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
PERMUTATIONS = 10_000
EXACT_PERMUTATION_LIMIT = 16  # up to 2**16 sign patterns are enumerated instead of sampled
_BATCH = 1000  # resamples per vectorised batch: bounds memory at _BATCH x conversations


@dataclass(frozen=True)
class Estimate:
    """A statistic and its bootstrap confidence interval."""

    value: float
    low: float
    high: float

    def format(self, spec: str = ".3f") -> str:
        return f"{self.value:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Estimate:
    """The mean of `values` with a percentile bootstrap interval (conversations resampled)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("no values to estimate a mean from")
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [data[rng.integers(0, data.size, size=(n, data.size))].mean(axis=1) for n in _batches(resamples)]
    )
    return _interval(float(data.mean()), means, confidence)


def bootstrap_grouped_percentile(
    groups: Sequence[Sequence[float]],
    q: float,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Estimate:
    """Percentile `q` (0..100) of all values pooled, with a bootstrap interval that resamples
    whole groups (conversations), since one conversation's decision times are not independent.
    The value is numpy's (linear) percentile, as in `RunResult`; the resampled ones are read
    from weighted counts (the inverted empirical distribution), which needs no re-sorting."""
    sizes = np.array([len(group) for group in groups], dtype=np.int64)
    pooled = np.array([v for group in groups for v in group], dtype=np.float64)
    if pooled.size == 0:
        return Estimate(0.0, 0.0, 0.0)
    owner = np.repeat(np.arange(len(groups)), sizes)
    order = np.argsort(pooled, kind="stable")
    pooled, owner = pooled[order], owner[order]

    def percentile(weights: np.ndarray) -> np.ndarray:
        # weights: (resamples, groups) counts -> per resample the q-th weighted value
        cumulative = np.cumsum(weights[:, owner], axis=1)
        total = cumulative[:, -1:]
        rank = np.maximum(np.ceil(q / 100.0 * total), 1)
        return pooled[np.minimum((cumulative < rank).sum(axis=1), pooled.size - 1)]

    value = float(np.percentile(pooled, q))
    rng = np.random.default_rng(seed)
    n_groups = len(groups)
    uniform = np.full(n_groups, 1.0 / n_groups)
    # Smaller batches: the weights are expanded to one column per pooled value.
    batch = max(1, min(_BATCH, 2_000_000 // pooled.size))
    draws = np.concatenate(
        [percentile(rng.multinomial(n_groups, uniform, size=n)) for n in _batches(resamples, batch)]
    )
    return _interval(value, draws, confidence)


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test on paired successes."""

    only_baseline: int  # pairs where only the baseline succeeded
    only_other: int  # pairs where only the other configuration succeeded
    p_value: float


def mcnemar_exact(baseline: Sequence[bool] | np.ndarray, other: Sequence[bool] | np.ndarray) -> McNemar:
    """Two-sided exact McNemar test: under the null each discordant pair is equally likely to
    go either way, so min(b, c) is binomial(b + c, 1/2). p = 1 when no pair is discordant."""
    a, b = _paired(baseline, other, bool)
    only_baseline = int(np.sum(a & ~b))
    only_other = int(np.sum(~a & b))
    n = only_baseline + only_other
    if n == 0:
        return McNemar(0, 0, 1.0)
    k = min(only_baseline, only_other)
    # Exact integer arithmetic, then one correctly rounded division: no underflow for large n.
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return McNemar(only_baseline, only_other, min(1.0, 2 * tail / 2**n))


@dataclass(frozen=True)
class PairedDifference:
    """Mean paired difference (other - baseline), its bootstrap interval and a permutation p."""

    difference: Estimate
    p_value: float
    exact: bool  # True when every sign pattern was enumerated
    draws: int = 0  # random sign patterns drawn when not exact: p is at least 1 / (draws + 1)

    def format_p(self) -> str:
        """p for a table; a sampled p at its floor is shown as a bound ("<1e-04"), not a value."""
        if not self.exact and self.p_value * (self.draws + 1) <= 1.0 + 1e-9:
            return f"<{1.0 / self.draws:.0e}"
        return format_p(self.p_value)


def format_p(value: float) -> str:
    return "1" if value >= 0.9995 else (f"{value:.3f}" if value >= 0.001 else f"{value:.1e}")


def paired_permutation(
    baseline: Sequence[float] | np.ndarray,
    other: Sequence[float] | np.ndarray,
    permutations: int = PERMUTATIONS,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> PairedDifference:
    """Two-sided paired permutation (sign-flip) test of the mean difference. Pairs that do not
    differ cannot change the statistic, so only the m differing pairs are flipped: all 2**m
    patterns when m is small, else `permutations` random ones with the (1 + hits) / (1 + draws)
    correction, so p is never 0. Identical inputs give difference 0 and p = 1."""
    a, b = _paired(baseline, other, np.float64)
    differences = b - a
    estimate = bootstrap_mean(differences, resamples, confidence, seed)
    nonzero = differences[differences != 0.0]
    if nonzero.size == 0:
        return PairedDifference(estimate, 1.0, True)
    observed = abs(float(nonzero.sum()))
    # A relative tolerance so that sign patterns equal to the observed sum up to rounding count.
    tolerance = 1e-9 * max(1.0, float(np.abs(nonzero).sum()))
    if nonzero.size <= EXACT_PERMUTATION_LIMIT:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=nonzero.size)))
        hits = int(np.sum(np.abs(signs @ nonzero) >= observed - tolerance))
        return PairedDifference(estimate, hits / len(signs), True)
    rng = np.random.default_rng(seed)
    hits = 0
    for n in _batches(permutations):
        signs = rng.choice((-1.0, 1.0), size=(n, nonzero.size))
        hits += int(np.sum(np.abs(signs @ nonzero) >= observed - tolerance))
    return PairedDifference(estimate, (1 + hits) / (1 + permutations), False, permutations)


def _paired(
    baseline: Sequence[object] | np.ndarray,
    other: Sequence[object] | np.ndarray,
    dtype: type,
) -> tuple[np.ndarray, np.ndarray]:
    a: np.ndarray = np.asarray(baseline, dtype=dtype)
    b: np.ndarray = np.asarray(other, dtype=dtype)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired samples must be two sequences of one length, got {a.shape} and {b.shape}")
    return a, b


def _batches(total: int, size: int = _BATCH) -> list[int]:
    if total < 1:
        raise ValueError(f"need at least one resample, got {total}")
    return [min(size, total - start) for start in range(0, total, size)]


def _interval(value: float, draws: np.ndarray, confidence: float) -> Estimate:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(draws, [tail, 100.0 - tail])
    return Estimate(value, float(low), float(high))
