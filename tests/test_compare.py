"""Comparisons, sweeps and decision traces (the policy lab, issue 6).

The statistics are checked on cases whose answer is known by hand; the runs use fast policies
(max_entropy, random, belief without its learned prior) and the popularity scorer, so nothing
trains and the file runs in well under a minute."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crs.data import Dataset
from crs.evaluation.records import ConsideredAction, ConversationRecord, TurnRecord
from crs.evaluation.runner import RunSpec, evaluate
from crs.factory import policy_for_run
from crs.lab.compare import Comparison, compare, questions_before_first_list
from crs.lab.report import write_comparison
from crs.lab.stats import (
    bootstrap_grouped_percentile,
    bootstrap_mean,
    mcnemar_exact,
    paired_permutation,
)
from crs.lab.sweep import parse_sweep, parse_values, sweep, with_parameter, write_sweep
from crs.policy_config import PolicyConfig
from crs.progress import ProgressEvent
from crs.settings import Settings, load_settings


def fast(limit: int) -> Settings:
    """The default settings with the popularity scorer (nothing to train) and `limit` conversations."""
    return load_settings(overrides={"evaluate.scorer": "popularity", "evaluate.limit": limit})


def config(policy: str, label: str = "", **params: Any) -> PolicyConfig:
    data: dict[str, Any] = {"policy": policy, "label": label or policy}
    if params:
        data["params"] = params
    return PolicyConfig.from_mapping(data)


# --- statistics on known answers ------------------------------------------------------------------


def test_identical_samples_give_p_one_and_no_difference() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=200)
    same = paired_permutation(values, values)
    assert same.p_value == 1.0 and same.difference.value == 0.0
    assert same.difference.low == 0.0 and same.difference.high == 0.0
    success = rng.random(200) < 0.7
    test = mcnemar_exact(success, success)
    assert (test.only_baseline, test.only_other, test.p_value) == (0, 0, 1.0)


def test_mcnemar_exact_matches_the_binomial_by_hand() -> None:
    # 10 pairs only the baseline wins, 3 only the other, 7 agree: p = 2 P(X <= 3), X ~ Bin(13, 1/2).
    baseline = [True] * 10 + [False] * 3 + [True] * 5 + [False] * 2
    other = [False] * 10 + [True] * 3 + [True] * 5 + [False] * 2
    test = mcnemar_exact(baseline, other)
    assert (test.only_baseline, test.only_other) == (10, 3)
    # P(X <= 3) = (1 + 13 + 78 + 286) / 2**13 = 378 / 8192, doubled: 0.0922852.
    assert test.p_value == pytest.approx(756 / 8192, abs=1e-15)
    # All 5 discordant pairs one way: 2 / 2**5; balanced pairs: p capped at 1.
    assert mcnemar_exact([True] * 5, [False] * 5).p_value == pytest.approx(0.0625)
    assert mcnemar_exact([True, False], [False, True]).p_value == 1.0
    # Large samples: exact integer arithmetic, no underflow to 0 or overflow.
    big = mcnemar_exact([True] * 3000 + [False] * 1000, [False] * 3000 + [True] * 1000)
    assert 0.0 < big.p_value < 1e-100


def test_paired_permutation_is_exact_for_few_differences() -> None:
    # Differences 1, 2, 3: only the all-plus and all-minus of the 8 sign patterns reach |6|.
    result = paired_permutation([0, 0, 0, 5, 5], [1, 2, 3, 5, 5])
    assert result.exact and result.p_value == pytest.approx(2 / 8)
    assert result.difference.value == pytest.approx(6 / 5)
    # Many differences: sampled, seeded (same answer twice), and a clear shift is significant.
    rng = np.random.default_rng(0)
    a = rng.normal(size=400)
    b = a + 0.3 + rng.normal(scale=0.5, size=400)
    first, again = paired_permutation(a, b, seed=4), paired_permutation(a, b, seed=4)
    assert first == again and not first.exact
    assert first.p_value < 0.001 and first.difference.low > 0.0
    with pytest.raises(ValueError, match="one length"):
        paired_permutation([1.0, 2.0], [1.0])


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(1)
    small, large = rng.normal(2.0, 1.0, 100), rng.normal(2.0, 1.0, 10_000)
    narrow, wide = bootstrap_mean(large), bootstrap_mean(small)
    for estimate, data in ((wide, small), (narrow, large)):
        assert estimate.low < data.mean() < estimate.high
        assert estimate.value == pytest.approx(data.mean())
    # The width goes as 1/sqrt(n): 100 times the data, about a tenth of the width.
    ratio = (narrow.high - narrow.low) / (wide.high - wide.low)
    assert 0.05 < ratio < 0.2
    assert bootstrap_mean(small, seed=7) == bootstrap_mean(small, seed=7)


def test_grouped_percentile_resamples_conversations() -> None:
    rng = np.random.default_rng(2)
    groups = [list(rng.exponential(1.0, rng.integers(1, 12))) for _ in range(300)]
    pooled = np.concatenate(groups)
    for q in (50.0, 95.0):
        estimate = bootstrap_grouped_percentile(groups, q, resamples=500)
        assert estimate.value == pytest.approx(np.percentile(pooled, q))
        assert estimate.low <= estimate.value <= estimate.high


# --- the decision trace -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy, params",
    [
        ("belief", {"use_prior": False}),
        ("max_entropy", {}),
        ("random", {}),
        ("max_entropy", {"questions": {"bank": "none", "never": ["rock", "pop"], "max_questions": 3}}),
    ],
)
def test_trace_never_changes_a_conversation(
    lastfm_star: Dataset, policy: str, params: dict[str, Any]
) -> None:
    runs = []
    for trace in (False, True):
        spec = RunSpec(
            dataset="lastfm_star",
            policy=policy,
            policy_params=params,
            scorer="popularity",
            limit=60,
            trace=trace,
        )
        runs.append(evaluate(spec, lastfm_star, policy_for_run(spec, lastfm_star)))
    plain, traced = runs
    assert all(t.candidates is None for r in plain.records for t in r.turns)
    stripped = []
    for record in traced.records:
        line = record.to_json(timings=False)
        for turn in line["turns"]:
            if turn["actor"] == "system":
                chosen = [c for c in turn.pop("candidates") if c.get("chosen")]
                assert len(chosen) == 1 and chosen[0]["act"] == turn["act"]
                if turn["act"] == "ask":
                    assert chosen[0]["attribute"] == turn["attribute"]
        stripped.append(line)
    assert stripped == [record.to_json(timings=False) for record in plain.records]
    if "questions" in params:  # the trace weighs only what the rules let the policy ask
        asked = {
            c.attribute for r in traced.records for t in r.turns for c in t.candidates or () if c.act == "ask"
        }
        assert asked and not asked & {
            a.id for a in lastfm_star.catalog.attributes if a.name in ("rock", "pop")
        }


def test_trace_round_trips_and_old_transcripts_still_load() -> None:
    turn = TurnRecord(
        2,
        "ask",
        t=0,
        attribute=7,
        answer="yes",
        decision_ms=1.5,
        candidates=(ConsideredAction("ask", 4.25, 7, True), ConsideredAction("recommend", 5.0)),
    )
    line = turn.to_json()
    assert line["candidates"] == [
        {"act": "ask", "attribute": 7, "score": 4.25, "chosen": True},
        {"act": "recommend", "score": 5.0},
    ]
    assert TurnRecord.from_json(json.loads(json.dumps(line))) == turn
    old = {"turn": 2, "actor": "system", "t": 0, "act": "ask", "attribute": 7, "answer": "yes"}
    assert TurnRecord.from_json(old).candidates is None
    assert "candidates" not in TurnRecord.from_json(old).to_json()


# --- compare, report, sweep -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def comparison(lastfm_star: Dataset) -> Comparison:
    events: list[ProgressEvent] = []
    result = compare(
        [config("max_entropy"), config("random")],
        lastfm_star,
        fast(100),
        events.append,
        resamples=500,
        permutations=2000,
    )
    assert events[-1].overall == 1.0 and events[-1].stage == "random (2/2): conversations"
    assert any(e.stage == "max_entropy (1/2): conversations" for e in events)
    return result


def test_compare_pairs_the_same_conversations(comparison: Comparison) -> None:
    baseline, other = comparison.runs
    assert comparison.labels == ("max_entropy", "random") and comparison.conversations == 100
    for a, b in zip(baseline.records, other.records, strict=True):
        assert (a.conversation_id, a.user_id, a.target_item) == (b.conversation_id, b.user_id, b.target_item)
        assert a.turns[0] == b.turns[0]  # the same opening attribute
    for run in comparison.runs:  # the table's means are the evaluation's metrics
        metrics = run.result.metrics
        assert run.estimates["SR@15"].value == pytest.approx(metrics.sr[15])
        assert run.estimates["AT"].value == pytest.approx(metrics.average_turns)
        assert run.estimates["hDCG"].value == pytest.approx(metrics.hdcg)
        assert run.estimates["decision_ms_p50"].value == pytest.approx(run.result.decision_ms_p50)
        assert run.trace_score and "bits" in run.trace_score
    (test,) = comparison.tests
    assert test.turns.difference.value > 0 and test.turns.p_value < 0.01  # random needs more turns
    worst = comparison.disagreements(3)
    assert len(worst) == 3 and worst[0].spread >= worst[1].spread >= worst[2].spread > 0
    record = worst[0].records[0]
    assert comparison.conversation(record.conversation_id)["max_entropy"] == record


def test_report_folder_holds_tables_plots_and_disagreements(comparison: Comparison, tmp_path: Path) -> None:
    folder = tmp_path / "report"
    paths = write_comparison(comparison, folder, fast(100), command="crs compare a b")
    for name in ("success_by_turn.png", "turns_histogram.png", "questions_asked.png"):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG"
    table = (folder / "table.md").read_text()
    assert "SR@15" in table and "McNemar" in table and "crs compare a b" in table
    data = json.loads((folder / "table.json").read_text())
    assert [row["label"] for row in data["rows"]] == ["max_entropy", "random"]
    for row, run in zip(data["rows"], comparison.runs, strict=True):  # each row holds its own run's numbers
        assert row["AT"] == run.estimates["AT"].as_dict()
        assert row["SR@15"]["value"] == pytest.approx(run.result.metrics.sr[15])
    assert data["rows"][0]["AT"] != data["rows"][1]["AT"]  # random needs more turns: the rows differ
    # McNemar's counts, recounted from the transcripts: conversations only one of the two solved.
    baseline, other = ([r.success for r in run.records] for run in comparison.runs)
    only_baseline = sum(b and not o for b, o in zip(baseline, other, strict=True))
    only_other = sum(o and not b for b, o in zip(baseline, other, strict=True))
    assert data["tests"][0]["success_mcnemar"] == {
        "only_baseline": only_baseline,
        "only_other": only_other,
        "p_value": mcnemar_exact(baseline, other).p_value,
    }
    assert only_baseline != only_other  # a swap of the two counts would show
    disagreements = (folder / "disagreements.md").read_text()
    assert disagreements.count("## Conversation") == 10 and "| max_entropy | random |" in disagreements
    assert "ask " in disagreements and "*" in disagreements  # attribute names and the chosen action
    runs = sorted(p.name for p in (folder / "runs").iterdir())
    assert runs == ["1-max_entropy", "2-random"] and paths["run:random"] == folder / "runs" / "2-random"
    line = json.loads((folder / "runs" / "2-random" / "transcripts.jsonl").read_text().splitlines()[0])
    assert ConversationRecord.from_json(line).turns[1].candidates is not None
    with pytest.raises(FileExistsError):
        write_comparison(comparison, folder)


def test_identical_configurations_agree_everywhere(lastfm_star: Dataset) -> None:
    same = compare([config("max_entropy"), config("max_entropy")], lastfm_star, fast(40), resamples=200)
    assert same.labels == ("max_entropy", "max_entropy (2)")
    (test,) = same.tests
    assert test.success.p_value == 1.0 and test.turns.p_value == 1.0 and test.hdcg.p_value == 1.0
    assert test.turns.difference.value == 0.0 and same.disagreements() == ()


def test_questions_before_the_first_list() -> None:
    turns = (
        TurnRecord(1, "inform", actor="user", attribute=1),
        TurnRecord(2, "ask", t=0, attribute=2, answer="no"),
        TurnRecord(3, "ask", t=1, attribute=3, answer="yes"),
        TurnRecord(4, "recommend", t=2, items=(1,), accepted=False),
        TurnRecord(5, "ask", t=3, attribute=4, answer="yes"),
    )
    record = ConversationRecord(0, "d", "valid", 0, 1, "p", "rule", 0, turns, False, None, None, "max_turns")
    assert questions_before_first_list(record) == 2


def test_sweep_values_and_names() -> None:
    assert parse_values('1,2.5,true,"a,b",[1, 2]') == [1, 2.5, True, "a,b", [1, 2]]
    assert parse_sweep("questions.max_questions=2,4") == ("questions.max_questions", [2, 4])
    with pytest.raises(ValueError, match="NAME=v1"):
        parse_sweep("gain_weight")
    with pytest.raises(ValueError, match="repeat"):
        parse_sweep("gain_weight=1,1")
    base = config("belief")
    swept = with_parameter(base, "gain_weight", 10)
    assert swept.policy_params["gain_weight"] == 10.0 and swept.label == "gain_weight=10"
    rules = with_parameter(base, "questions.max_questions", 3)
    assert rules.policy_params["questions"]["max_questions"] == 3
    with pytest.raises(ValueError, match="did you mean 'gain_weight'"):
        with_parameter(base, "gain_wieght", 1.0)
    with pytest.raises(ValueError, match="cannot sweep"):
        with_parameter(base, "scorer.dim", 8)


def test_sweep_writes_a_plot_per_metric(lastfm_star: Dataset, tmp_path: Path) -> None:
    result = sweep(config("max_entropy"), "list_size", [5, 10], lastfm_star, fast(40), resamples=200)
    assert result.comparison.labels == ("list_size=5", "list_size=10")
    write_comparison(result.comparison, tmp_path / "sweep")
    paths = write_sweep(result, tmp_path / "sweep")
    plots = sorted(p.name for p in (tmp_path / "sweep").glob("sweep_*.png"))
    assert len(plots) == 8 and "sweep_sr15.png" in plots and "sweep_at.png" in plots
    rows = json.loads(paths["sweep"].read_text())["rows"]
    assert [row["value"] for row in rows] == [5, 10]


# --- the command line ---------------------------------------------------------------------------------


def crs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crs", *args], capture_output=True, text=True, timeout=300)


def test_compare_and_sweep_commands(tmp_path: Path, data_dir: Path) -> None:
    settings = tmp_path / "crs.toml"
    settings.write_text('[evaluate]\nscorer = "popularity"\n')
    baseline = tmp_path / "entropy.toml"
    baseline.write_text('label = "entropy"\npolicy = "max_entropy"\n')
    restricted = tmp_path / "few.toml"
    restricted.write_text('label = "two questions"\npolicy = "max_entropy"\n[questions]\nmax_questions = 2\n')
    common = [
        "--dataset",
        "lastfm_star",
        "--limit",
        "50",
        "--data-dir",
        str(data_dir),
        "--config",
        str(settings),
    ]
    out = tmp_path / "compare"
    done = crs("compare", str(baseline), str(restricted), *common, "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "SR@15" in done.stdout and "two questions vs entropy" in done.stdout and str(out) in done.stdout
    assert (out / "disagreements.md").is_file() and (out / "questions_asked.png").is_file()
    viewed = crs("view", str(out / "runs" / "2-two-questions"), "--conversation", "0")
    assert viewed.returncode == 0 and "considered: recommend" in viewed.stdout, viewed.stderr

    out = tmp_path / "sweep"
    sweep = ["sweep", str(restricted), "--param", "questions.max_questions=1,3", "--offset", "4000"]
    done = crs(*sweep, *common, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "shuffled target pairs 4001 to 4050" in (out / "table.md").read_text()  # the tuning pairs only
    assert "questions.max_questions=3" in done.stdout and (out / "sweep_hdcg.png").is_file()

    for bad, message in (
        (["compare", str(tmp_path / "missing.toml"), *common], "not found"),
        (["sweep", str(baseline), "--param", "list_sise=5,10", *common], "did you mean 'list_size'"),
        (["sweep", str(baseline), "--param", "list_size", *common], "NAME=v1"),
        (["compare", str(baseline), *common, "--out", str(tmp_path / "compare")], "already exists"),
    ):
        done = crs(*bad)
        assert done.returncode == 2 and done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], done.stderr
