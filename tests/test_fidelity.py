"""How close simulated users talk to real seekers (`crs.evaluation.fidelity`, `crs simulate-check`):
the text statistics by hand, the acts as the chat reads them, the classifier with the real MiniLM
on real ReDial messages, and the command on a real run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crs.cli import main
from crs.data import Dataset
from crs.evaluation.fidelity import (
    LENGTH_BINS,
    act_of,
    classifier_auc,
    real_messages,
    text_profile,
    user_messages,
)
from crs.language import Understander
from crs.retrieval.encoder import MiniLmEncoder


def test_text_profile_by_hand() -> None:
    profile = text_profile(["Yes.", "yes", "No, I'm not into horror."])
    assert profile.messages == 3
    assert profile.mean_words == pytest.approx(7 / 3)
    assert profile.distinct_1 == pytest.approx(6 / 7)  # yes, no, im, not, into, horror of 7
    assert profile.distinct_2 == pytest.approx(1.0)
    assert profile.distinct_messages == pytest.approx(2 / 3)  # "Yes." and "yes" are one reply
    assert profile.most_common == "yes" and profile.most_common_share == pytest.approx(2 / 3)
    assert len(profile.length_histogram) == len(LENGTH_BINS)
    assert profile.length_histogram[0] == pytest.approx(2 / 3)  # one word
    assert profile.length_histogram[3] == pytest.approx(1 / 3)  # 5-7 words
    with pytest.raises(ValueError, match="no messages"):
        text_profile([])


@pytest.fixture(scope="module")
def reader(movielens_dataset: Dataset) -> Understander:
    return Understander(movielens_dataset.catalog, popularity=movielens_dataset.popularity)


@pytest.mark.parametrize(
    ("message", "act"),
    [
        ("Yes, sounds good", "answer"),
        ("the second one", "answer"),
        ("No.", "refusal"),
        ("none of these", "refusal"),
        ("No, I'm not really into horror movies", "refusal with a reason"),
        ("I'd love a comedy from the 90s", "preference"),
        ("I loved Toy Story", "title"),
        ("what is it about?", "question"),
        ("hello there!", "chit-chat"),
    ],
)
def test_acts_as_the_chat_reads_them(reader: Understander, message: str, act: str) -> None:
    assert act_of(reader, message) == act


@pytest.fixture(scope="module")
def encoder() -> MiniLmEncoder:
    return MiniLmEncoder()


@pytest.mark.slow  # MiniLM on 480 messages; the default run is kept under 15 minutes
def test_the_classifier_tells_templates_from_people_and_not_people_from_people(
    encoder: MiniLmEncoder, data_dir: Path
) -> None:
    real = real_messages(data_dir, "redial", limit=240, seed=1)
    assert len(real) == 240 and real == real_messages(data_dir, "redial", limit=240, seed=1)
    templates = ["Yes.", "No.", "None of these.", "Number 2.", "I'm looking for a comedy."] * 24
    assert classifier_auc(templates, real[:120], encoder) > 0.9
    # Two halves of the same people: no better than chance, give or take the sample.
    assert classifier_auc(real[:120], real[120:], encoder) < 0.7
    with pytest.raises(ValueError, match="at least 5"):
        classifier_auc(["yes"] * 3, real, encoder)


@pytest.mark.slow  # two evaluations, the reader and MiniLM
def test_simulate_check_on_a_run_folder(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    common = ["--data-dir", str(data_dir)]
    assert (
        main(
            ["evaluate", "--dataset", "movielens", "--simulator", "llm", "--llm-backend", "none"]
            + ["--limit", "6", "--out", str(run), *common]
        )
        == 0
    )
    said = user_messages(run)
    assert len(said) >= 10 and all(isinstance(m, str) and m for m in said)
    capsys.readouterr()
    assert main(["simulate-check", str(run), "--against", "inspired", "--real", "60", *common]) == 0
    shown = capsys.readouterr().out
    assert "classifier AUC" in shown and "real (inspired seekers)" in shown
    report = json.loads((run / "fidelity-inspired.json").read_text())
    simulated, real = report["reports"]
    assert simulated["profile"]["messages"] == len(said) and real["profile"]["messages"] == 60
    assert 0.5 <= simulated["auc"] <= 1.0 and real["auc"] is None
    assert abs(sum(simulated["acts"].values()) - 1.0) < 1e-3
    assert (run / "fidelity-inspired.png").read_bytes()[:4] == b"\x89PNG"

    # Bad input: one error line each, never a traceback.
    rule_run = tmp_path / "rule"
    assert main(["evaluate", "--dataset", "movielens", "--limit", "3", "--out", str(rule_run), *common]) == 0
    capsys.readouterr()
    assert main(["simulate-check", str(rule_run), *common]) == 2
    assert "--simulator llm" in capsys.readouterr().err
    assert main(["simulate-check", str(tmp_path / "nothing"), *common]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["simulate-check", str(run), "--real", "3", *common]) == 2
    assert "at least 10" in capsys.readouterr().err
