"""The policy lab's statistics (crs.lab.stats on scipy.stats), the per-conversation metric values
and the one Markdown table renderer, checked against answers computed by brute force or by hand."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from crs.evaluation.metrics import Outcome, compute_metrics, conversation_values, hdcg
from crs.evaluation.report import format_table, markdown_table
from crs.lab.stats import (
    MIN_INTERVAL_CONVERSATIONS,
    Estimate,
    PooledPercentile,
    bootstrap_grouped_percentile,
    bootstrap_mean,
    mcnemar_exact,
    paired_permutation,
)

# --- exact tests against brute force ----------------------------------------------------------------


@pytest.mark.parametrize(
    "b, c", [(10, 3), (0, 7), (1, 1), (12, 13), (30, 17), (100, 60), (205, 242), (3000, 1000)]
)
def test_mcnemar_p_is_the_exact_binomial_tail(b: int, c: int) -> None:
    test = mcnemar_exact([True] * b + [False] * c, [False] * b + [True] * c)
    assert (test.only_baseline, test.only_other) == (b, c)
    # Twice the smaller tail of binomial(b + c, 1/2), summed in exact integers.
    n, k = b + c, min(b, c)
    expected = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    assert test.p_value == pytest.approx(expected, rel=1e-12, abs=1e-12)


def brute_force_sign_flip_p(differences: np.ndarray) -> float:
    """Share of all 2**m sign patterns whose |sum| reaches the observed |sum| (zeros included)."""
    observed = abs(float(differences.sum()))
    hits = sum(
        abs(float(np.dot(signs, differences))) >= observed - 1e-9
        for signs in itertools.product((1.0, -1.0), repeat=differences.size)
    )
    return hits / 2**differences.size


@pytest.mark.parametrize("seed", range(9))
def test_exact_permutation_p_matches_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 13))
    if seed % 3 == 0:  # turns: whole numbers, many ties
        a, b = rng.integers(1, 16, m).astype(float), rng.integers(1, 16, m).astype(float)
    elif seed % 3 == 1:  # a few gains: sums tie as in x - y + y - z = x - z or 1/3 + 1/3 + 1/3 = 1
        gains = [0.0] + [hdcg(t, rank) for t in (0, 1, 2, 6) for rank in (1, 2)]  # 1, 1/2, 1/3 among them
        a, b = rng.choice(gains, m), rng.choice(gains, m)
    else:  # three decimals on top of whole numbers: b - a is not the rounded step exactly
        a = rng.integers(1, 15, m).astype(float)
        b = a + np.round(rng.normal(0.02, 0.2, m), 3)
    result = paired_permutation(a, b)
    assert result.exact and result.draws == 0
    assert result.p_value == pytest.approx(brute_force_sign_flip_p(b - a), abs=1e-12)


def test_sampled_p_has_its_floor_and_is_shown_as_a_bound() -> None:
    # Every one of 100 pairs favours the other configuration: only 2 of the 2**100 sign patterns
    # reach the observed |sum|, so no random one does and p sits at its floor, (1 + 0) / (1 + draws).
    result = paired_permutation(np.zeros(100), np.arange(1.0, 101.0), permutations=999)
    assert not result.exact and result.draws == 999
    assert result.p_value == pytest.approx(1 / 1000)
    assert result.format_p() == "<1e-03"


def test_seeds_reach_every_draw() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=300), rng.normal(0.1, 1.0, size=300)
    groups = [list(rng.exponential(1.0, int(rng.integers(1, 9)))) for _ in range(100)]
    assert paired_permutation(a, b, seed=3) == paired_permutation(a, b, seed=3)
    assert paired_permutation(a, b, seed=3) != paired_permutation(a, b, seed=4)
    assert bootstrap_grouped_percentile(groups, 95.0, seed=1) == bootstrap_grouped_percentile(
        groups, 95.0, seed=1
    )
    assert bootstrap_grouped_percentile(groups, 95.0, seed=1) != bootstrap_grouped_percentile(
        groups, 95.0, seed=2
    )


# --- the grouped percentile -----------------------------------------------------------------------------


def test_pooled_percentile_of_a_resample_is_numpys_on_its_pool() -> None:
    rng = np.random.default_rng(4)
    for trial in range(40):
        sizes = rng.integers(1, 300 if trial % 5 == 0 else 10, int(rng.integers(2, 30)))
        groups = [np.round(rng.lognormal(0.0, 1.0, size), trial % 3) for size in sizes]  # some with ties
        for q in (0.0, 50.0, 95.0, 100.0, float(rng.uniform(0, 100))):
            statistic = PooledPercentile(groups, q)
            drawn = rng.integers(0, len(groups), size=(5, len(groups)))
            expected = [np.percentile(np.concatenate([groups[i] for i in row]), q) for row in drawn]
            assert statistic(drawn).tolist() == expected
            assert statistic(np.arange(len(groups))) == np.percentile(np.concatenate(groups), q)


def skewed_groups(seed: int) -> list[list[float]]:
    """Conversations with as many fast decisions as slow ones, the slow ones heavy-tailed."""
    rng = np.random.default_rng(seed)
    groups = []
    for _ in range(int(rng.integers(20, 200))):
        k = int(rng.integers(1, 6))
        groups.append([*(0.5 + 0.1 * rng.random(k)), *(2.0 + rng.lognormal(0.0, 1.0, k))])
    return groups


@pytest.mark.parametrize("seed", range(4))
def test_grouped_percentile_lies_within_its_interval(seed: int) -> None:
    # The pooled median falls in the gap between the fast and the slow decisions; a value read
    # by another rule than its resamples would lie outside the interval (as "0.755 [0.709, 0.709]").
    cases = [(skewed_groups(seed), q) for q in (50.0, 95.0)] + [([[0.709, 0.8]] * 20, 50.0)]
    for groups, q in cases:
        estimate = bootstrap_grouped_percentile(groups, q, resamples=500, seed=seed)
        assert estimate.defined and estimate.value == pytest.approx(np.percentile(np.concatenate(groups), q))
        assert estimate.low <= estimate.value <= estimate.high, (q, estimate)


# --- degenerate intervals -----------------------------------------------------------------------------


def test_degenerate_intervals_are_not_shown() -> None:
    for estimate in (
        bootstrap_mean([3.0]),
        bootstrap_mean([3.0] * 40),
        bootstrap_grouped_percentile([[3.0, 3.0, 3.0]], 50.0),  # one conversation
        bootstrap_grouped_percentile([[3.0], [3.0, 3.0], []], 95.0),  # all values equal
    ):
        assert not estimate.defined and estimate.value == estimate.low == estimate.high == 3.0
        assert estimate.format() == "3.000 [n/a]"
        assert json.loads(json.dumps(estimate.as_dict())) == {"value": 3.0, "low": None, "high": None}
    assert bootstrap_grouped_percentile([], 50.0) == Estimate.undefined(0.0)
    same = paired_permutation([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same.p_value == 1.0 and same.difference.format("+.3f") == "+0.000 [n/a]"
    spread = bootstrap_mean([1.0, 2.0] * 5)
    assert spread.defined and spread.format() == f"1.500 [{spread.low:.3f}, {spread.high:.3f}]"


def test_too_few_conversations_give_no_interval() -> None:
    # Values that vary, so only their number keeps the interval out: below the minimum none is
    # given (it would claim a precision a handful of conversations do not have), from it on one is.
    few, enough = MIN_INTERVAL_CONVERSATIONS - 1, MIN_INTERVAL_CONVERSATIONS
    for n in (1, 2, 3, few):
        values = [float(i % 3) for i in range(n)]
        groups = [[0.5 + i, 2.0 * i] for i in range(n)]
        for estimate, expected in (
            (bootstrap_mean(values), float(np.mean(values))),
            (bootstrap_grouped_percentile(groups, 50.0), float(np.percentile(np.concatenate(groups), 50.0))),
            (paired_permutation(values, [v + i for i, v in enumerate(values)]).difference, (n - 1) / 2),
        ):
            assert not estimate.defined and estimate.value == pytest.approx(expected), (n, estimate)
            assert estimate.format().endswith("[n/a]")
    # Groups without values are no conversations to resample: they do not count toward the minimum.
    assert not bootstrap_grouped_percentile([[1.0 + i] for i in range(few)] + [[]] * 5, 50.0).defined
    assert bootstrap_mean([float(i % 3) for i in range(enough)]).defined
    assert bootstrap_grouped_percentile([[0.5 + i, 2.0 * i] for i in range(enough)], 50.0).defined
    # The paired test's p stays: it is exact at any size, only the difference's interval goes.
    small = paired_permutation([0.0] * few, [1.0] * few)
    assert small.exact and small.p_value == pytest.approx(2 / 2**few) and not small.difference.defined


# --- every interval holds its own estimate --------------------------------------------------------------


def two_speed_groups(rng: np.random.Generator, n: int) -> list[list[float]]:
    """Decision times of `n` conversations in two tied clusters, fast and slow (a policy that rolls
    out some decisions and not others): the pooled median often falls in the gap between them."""
    fast, slow = 0.709, float(rng.choice([0.8, 1.3, 2.5]))
    share = rng.uniform(0.2, 0.8)
    return [list(np.where(rng.random(int(rng.integers(1, 6))) < share, fast, slow)) for _ in range(n)]


@pytest.mark.parametrize("seed", range(6))
def test_every_interval_holds_its_own_estimate(seed: int) -> None:
    # The property the table promises ("0.755 [0.709, 0.709]" broke it): whatever the sample, its
    # size (tiny ones included) and the seed, low <= value <= high, for each statistic the lab shows.
    rng = np.random.default_rng(seed)
    for trial in range(10):
        n = int(rng.integers(1, 4 * MIN_INTERVAL_CONVERSATIONS))
        turns = np.where(rng.random(n) < 0.8, rng.integers(1, 15, n), 15).astype(float)
        estimates = [
            bootstrap_mean(rng.random(n) < rng.uniform(0.05, 0.95), resamples=300, seed=trial),  # SR@k
            bootstrap_mean(turns, resamples=300, seed=trial),  # AT
            bootstrap_mean(np.round(rng.lognormal(-1.0, 1.0, n), 3), resamples=300, seed=trial),
            paired_permutation(
                turns, np.roll(turns, 1), permutations=200, resamples=300, seed=trial
            ).difference,
        ]
        for groups in (two_speed_groups(rng, n), [[0.709, 0.8]] * n, skewed_groups(seed + trial)[:n]):
            for q in (50.0, 95.0, float(rng.uniform(0, 100))):
                estimates.append(bootstrap_grouped_percentile(groups, q, resamples=300, seed=trial))
        for estimate in estimates:
            assert estimate.low <= estimate.value <= estimate.high, (seed, trial, n, estimate)


# --- per-conversation metric values ---------------------------------------------------------------------


def test_conversation_values_by_hand() -> None:
    outcomes = [Outcome(0, 1), Outcome(4, 3), Outcome(None, None), Outcome(13, 10)]
    assert conversation_values(outcomes, "SR@5") == [1.0, 1.0, 0.0, 0.0]
    assert conversation_values(outcomes, "SR@15") == [1.0, 1.0, 0.0, 1.0]
    assert conversation_values(outcomes, "AT") == [1.0, 5.0, 15.0, 14.0]
    assert conversation_values(outcomes, "AT", max_turns=20) == [1.0, 5.0, 20.0, 14.0]
    gains = conversation_values(outcomes, "hDCG")
    # At t = 0 with the target first, 1/log2(3) + (1 - 1/log2(3)) / log2(2) = 1.
    assert gains[0] == pytest.approx(1.0) and gains[2] == 0.0 and 0.0 < gains[3] < gains[1] < 1.0
    metrics = compute_metrics(outcomes)
    assert (metrics.sr, metrics.average_turns, metrics.successes) == ({5: 0.5, 10: 0.5, 15: 0.75}, 8.75, 3)
    assert metrics.hdcg == pytest.approx(sum(gains) / 4)
    assert (
        metrics.success_by_turn[:5] == (0.25, 0.25, 0.25, 0.25, 0.5) and metrics.success_by_turn[-1] == 0.75
    )
    for key in ("questions", "SR@", "SR@x"):
        with pytest.raises(KeyError):
            conversation_values(outcomes, key)


# --- the Markdown table ----------------------------------------------------------------------------------


def test_markdown_table_pads_every_column() -> None:
    table = markdown_table(
        ["config", "n", "SR@15"], [["belief", "300", "0.740 [0.690, 0.787]"], ["a | b", "3", ""]]
    )
    assert table == (
        "| config | n   | SR@15                |\n"
        "|--------|-----|----------------------|\n"
        "| belief | 300 | 0.740 [0.690, 0.787] |\n"
        "| a | b  | 3   |                      |"
    )
    assert markdown_table(["config"], []) == ""
    rows = [
        {
            "policy": "max_entropy",
            "conversations": 500,
            "SR@5": 0.1234,
            "SR@10": 0.5,
            "SR@15": 0.75,
            "AT": 9.876,
        },
        {"policy": "random", "conversations": 5, "train_seconds": 12.0},
    ]
    assert format_table(rows) == (  # as format_table rendered it before it used markdown_table
        "| policy      | n   | SR@5  | SR@10 | SR@15 | AT   | hDCG | conv/s | p50 ms | p95 ms | train s |\n"
        "|-------------|-----|-------|-------|-------|------|------|--------|--------|--------|---------|\n"
        "| max_entropy | 500 | 0.123 | 0.500 | 0.750 | 9.88 |      |        |        |        |         |\n"
        "| random      | 5   |       |       |       |      |      |        |        |        | 12.0    |"
    )
