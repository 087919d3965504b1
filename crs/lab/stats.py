"""Paired statistics over conversations: bootstrap intervals and significance tests (scipy.stats).

Every configuration of a comparison talks to the same simulated users (same targets, same
seeds), so conversation i of one configuration is paired with conversation i of another. The
tests use that pairing:

- success: the exact McNemar test, i.e. a two-sided binomial test on the discordant pairs (one
  configuration succeeds where the other fails), which ignores the pairs that agree;
- turns and hDCG: a paired permutation test of the mean difference, flipping the sign of each
  conversation's difference at random (exact, over all sign patterns, when few pairs differ).

Intervals are percentile bootstrap intervals, resampling whole conversations, given from
MIN_INTERVAL_CONVERSATIONS conversations on. All randomness is seeded, so a report is
reproducible to the digit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
PERMUTATIONS = 10_000
EXACT_PERMUTATION_LIMIT = 16  # up to 2**16 sign patterns are enumerated instead of sampled
_BATCH = 1000  # resamples per vectorised batch: bounds memory at _BATCH x conversations
_CELLS = 1_000_000  # and a permutation batch at about this many sign flips
_BLOCK = 256  # sorted values per block when locating a resample's order statistics
# Fewer conversations than this get no interval. The percentile bootstrap takes the sample for the
# population, which a tiny sample is not: a nominal 95 % interval of a mean covers the true mean
# about half the time at n = 2, 75 % at 3, 80-85 % at 5 and 85-89 % at 10 (simulated, normal and
# exponential data; skewed data fare worse). Below 10 an interval claims far more than the data know.
MIN_INTERVAL_CONVERSATIONS = 10


@dataclass(frozen=True)
class Estimate:
    """A statistic and its bootstrap confidence interval.

    `defined` is False where no interval is given: too few conversations for one to mean anything
    (under MIN_INTERVAL_CONVERSATIONS), or no spread to measure (all values equal: every resample
    repeats the value, and a zero-width interval would claim a certainty the data do not give).
    Such an estimate keeps low = high = value (a plot draws no bar), formats as "value [n/a]" and
    writes null bounds to JSON."""

    value: float
    low: float
    high: float
    defined: bool = True

    @classmethod
    def undefined(cls, value: float) -> Estimate:
        return cls(value, value, value, defined=False)

    def format(self, spec: str = ".3f") -> str:
        if not self.defined:
            return f"{self.value:{spec}} [n/a]"
        return f"{self.value:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"

    def as_dict(self) -> dict[str, float | None]:
        if not self.defined:
            return {"value": self.value, "low": None, "high": None}
        return {"value": self.value, "low": self.low, "high": self.high}


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Estimate:
    """The mean of `values` with a percentile bootstrap interval (conversations resampled); no
    interval for fewer than MIN_INTERVAL_CONVERSATIONS values or for values that are all equal."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("no values to estimate a mean from")
    _check_confidence(confidence)
    value = float(data.mean())
    if data.size < MIN_INTERVAL_CONVERSATIONS or np.all(data == data[0]):
        return Estimate.undefined(value)
    return _percentile_interval(value, data, np.mean, resamples, confidence, seed)


def _percentile_interval(
    value: float, sample: np.ndarray, statistic: Any, resamples: int, confidence: float, seed: int
) -> Estimate:
    """`value` with the percentile bootstrap interval of `statistic` over `sample` (seeded)."""
    interval = stats.bootstrap(
        (sample,),
        statistic,
        n_resamples=resamples,
        batch=_BATCH,
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    return Estimate(value, float(interval.low), float(interval.high))


def bootstrap_grouped_percentile(
    groups: Sequence[Sequence[float]],
    q: float,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Estimate:
    """Percentile `q` (0..100) of all values pooled, numpy's linear one as in `RunResult`, with a
    bootstrap interval that resamples whole groups (conversations), since one conversation's
    decision times are not independent. The value and every resample use the same statistic, so
    the value is not pushed outside its own interval by a difference in definition. No interval
    for fewer than MIN_INTERVAL_CONVERSATIONS groups with values, or for values that are all equal."""
    _check_confidence(confidence)
    # A group without values adds nothing to the pool; leaving it out keeps every resample
    # non-empty and does not change which pools a resample of the others can draw.
    kept = [np.asarray(group, dtype=np.float64) for group in groups if len(group)]
    if not kept:
        return Estimate.undefined(0.0)
    statistic = PooledPercentile(kept, q)
    indices = np.arange(len(kept))
    value = float(statistic(indices)[()])
    # The groups resampled are what the interval rests on, so they are what must be numerous.
    if len(kept) < MIN_INTERVAL_CONVERSATIONS or np.all(statistic.values == statistic.values[0]):
        return Estimate.undefined(value)
    return _percentile_interval(value, indices, statistic, resamples, confidence, seed)


class PooledPercentile:
    """The linear percentile of the pooled values of a resample of groups, given as the resampled
    groups' indices (scipy's `bootstrap` resamples the indices 0..groups-1). numpy's
    `percentile(pool, q)` to the last bit, but without building and sorting each resample's pool:
    the values are sorted once, and a resample is a count per group. Its order statistic at
    position p is found from the running count of values: per block of _BLOCK sorted values by one
    matrix product for all resamples, then within the one block that holds p."""

    def __init__(self, groups: Sequence[np.ndarray], q: float) -> None:
        pooled = np.concatenate(groups)
        owner = np.repeat(np.arange(len(groups)), [len(group) for group in groups])
        order = np.argsort(pooled, kind="stable")
        self.values = pooled[order]
        self.groups = len(groups)
        self.sizes = np.bincount(owner, minlength=self.groups).astype(np.float64)
        self.quantile = np.true_divide(q, 100)  # as numpy.percentile turns q into a quantile
        blocks = -(-pooled.size // _BLOCK)
        # The last block is padded with a group of its own that no resample ever draws.
        padded = np.full(blocks * _BLOCK, self.groups)
        padded[: pooled.size] = owner[order]
        self.block_owner = padded.reshape(blocks, _BLOCK)
        in_block = np.zeros((self.groups + 1, blocks))
        np.add.at(in_block, (padded, np.repeat(np.arange(blocks), _BLOCK)), 1.0)
        # before[g, k]: values of group g in the blocks before block k
        self.before = (np.cumsum(in_block, axis=1) - in_block)[: self.groups]

    def __call__(self, indices: np.ndarray, axis: int = -1) -> np.ndarray:
        drawn = np.moveaxis(np.asarray(indices), axis, -1)
        shape = drawn.shape[:-1]
        drawn = drawn.reshape(-1, drawn.shape[-1])
        rows = drawn.shape[0]
        offsets = self.groups * np.arange(rows)[:, None]
        counts = np.bincount((drawn + offsets).ravel(), minlength=rows * self.groups)
        weights = counts.reshape(rows, self.groups).astype(np.float64)
        # Whole numbers far below 2**53: the float products and sums below are exact.
        total = (weights @ self.sizes).astype(np.int64)
        starts = weights @ self.before
        weights = np.hstack([weights, np.zeros((rows, 1))])
        # numpy's linear method, step by step: virtual index, neighbours, then its _lerp.
        virtual = (total - 1) * self.quantile
        below = np.floor(virtual)
        gamma = virtual - below
        low = np.minimum(below.astype(np.int64), total - 1)
        high = np.minimum(low + 1, total - 1)
        a = self.values[self._locate(weights, starts, low)]
        b = self.values[self._locate(weights, starts, high)]
        difference = b - a
        lerp = np.where(gamma >= 0.5, b - difference * (1 - gamma), a + difference * gamma)
        return lerp.reshape(shape)

    def _locate(self, weights: np.ndarray, starts: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Per resample, the index into the sorted values of its pool's value at `position`."""
        rows = np.arange(len(position))
        block = np.sum(starts <= position[:, None], axis=1) - 1
        running = starts[rows, block][:, None] + np.cumsum(
            np.take_along_axis(weights, self.block_owner[block], axis=1), axis=1
        )
        return block * _BLOCK + np.sum(running <= position[:, None], axis=1)


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test on paired successes."""

    only_baseline: int  # pairs where only the baseline succeeded
    only_other: int  # pairs where only the other configuration succeeded
    p_value: float


def mcnemar_exact(baseline: Sequence[bool] | np.ndarray, other: Sequence[bool] | np.ndarray) -> McNemar:
    """Two-sided exact McNemar test: under the null each discordant pair is equally likely to
    go either way, so the pairs won by the other configuration are binomial(b + c, 1/2).
    p = 1 when no pair is discordant."""
    a, b = _paired(baseline, other, bool)
    only_baseline = int(np.sum(a & ~b))
    only_other = int(np.sum(~a & b))
    if only_baseline + only_other == 0:
        return McNemar(0, 0, 1.0)
    test = stats.binomtest(only_other, only_baseline + only_other, 0.5)
    return McNemar(only_baseline, only_other, min(1.0, float(test.pvalue)))


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
    patterns when m is small (or `permutations` covers them), else `permutations` random ones,
    with the (1 + hits) / (1 + draws) correction, so p is never 0. Identical inputs give
    difference 0 and p = 1."""
    a, b = _paired(baseline, other, np.float64)
    differences = b - a
    estimate = bootstrap_mean(differences, resamples, confidence, seed)
    if permutations < 1:
        raise ValueError(f"need at least one permutation, got {permutations}")
    differing = differences != 0.0
    nonzero = differences[differing]
    if nonzero.size <= 1:  # both sign patterns of one difference are as extreme as it is
        return PairedDifference(estimate, 1.0, True)
    # |sum| with alternative "greater" counts the patterns at least as extreme in either direction
    # (the two-sided test); scipy's "two-sided" doubles one tail's count instead, which gives a
    # sampled p twice the Monte Carlo variance or more. scipy's tolerance for ties is 100 eps
    # relative to the observed statistic: too tight when |sum| is near 0 and a tie (x - y + y - z
    # against x - z, 1/3 + 1/3 + 1/3 against 1) is off by a rounding. Offset by the values' total
    # magnitude, the tolerance is far above the rounding of any sum and far below a real difference.
    offset = float(np.sum(np.abs(a[differing]) + np.abs(b[differing])))

    def extremeness(x: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.abs(np.sum(x, axis=axis)) + offset

    exact = nonzero.size <= EXACT_PERMUTATION_LIMIT or 2**nonzero.size <= permutations
    result = stats.permutation_test(
        (nonzero,),
        extremeness,
        permutation_type="samples",  # with one sample: flip the sign of each observation
        vectorized=True,
        n_resamples=math.inf if exact else permutations,
        batch=max(1, min(_BATCH, _CELLS // nonzero.size)),
        alternative="greater",
        rng=np.random.default_rng(seed),
    )
    p_value = min(1.0, float(result.pvalue))
    return PairedDifference(estimate, p_value, exact, 0 if exact else permutations)


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


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
