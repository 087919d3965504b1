"""How close simulated users talk to real seekers (`crs.evaluation.fidelity`, `crs simulate-check`):
the text statistics by hand, the acts as the chat reads them, the classifier with the real MiniLM
on real ReDial messages, the command on a real run folder and on conversations it plays itself,
and `crs evaluate --simulator llm` reporting the same figures after its run."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import crs.retrieval.encoder
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
            + ["--limit", "6", "--fidelity-against", "none", "--out", str(run), *common]
        )
        == 0
    )
    assert not list(run.glob("fidelity-*")) and "fidelity" not in json.loads(
        (run / "metrics.json").read_text()
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


def test_simulate_check_needs_a_run_or_conversations_to_play(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each misuse is one error line before any work, never a traceback."""
    cases = [
        ([], "nothing to check"),
        ([str(tmp_path), "--dataset", "movielens"], "not both"),
        ([str(tmp_path), "--simulator", "llm"], "not both"),
        ([str(tmp_path), "--limit", "3", "--llm-backend", "none"], "--llm-backend, --limit: only for"),
        (["--dataset", "movielens", "--simulator", "rule"], "--simulator llm"),
        (["--dataset", "movielens", "--real", "3"], "at least 10"),
    ]
    for argv, error in cases:
        assert main(["simulate-check", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and error in err and "Traceback" not in err, (argv, err)
    assert list(tmp_path.iterdir()) == []


class _BagOfWords:
    """Hashed words as vectors: the classifier's plumbing without loading MiniLM."""

    name = "bag-of-words"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, zlib.crc32(word.encode()) % 64] += 1.0
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


def test_simulate_check_plays_the_conversations_first(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`crs simulate-check --simulator llm --dataset D` is `crs evaluate` then `crs simulate-check
    RUN`: the same run folder, the same report."""
    monkeypatch.setattr(crs.retrieval.encoder, "MiniLmEncoder", _BagOfWords)
    run = tmp_path / "played"
    common = ["--against", "inspired", "--real", "60", "--data-dir", str(data_dir)]
    argv = ["simulate-check", "--simulator", "llm", "--dataset", "movielens", "--llm-backend", "none"]
    assert main([*argv, "--limit", "3", "--out", str(run), "--quiet", *common]) == 0
    shown = capsys.readouterr().out
    assert "SR@15" in shown and "classifier AUC" in shown and "real (inspired seekers)" in shown
    assert shown.index("SR@15") < shown.index("classifier AUC") < shown.index(f"run folder: {run}")
    records = [json.loads(line) for line in (run / "transcripts.jsonl").read_text().splitlines()]
    assert len(records) == 3 and {r["simulator"] for r in records} == {"llm"}
    config = json.loads((run / "config.json").read_text())
    assert config["llm"]["backend"] == "none" and config["evaluate"]["limit"] == 3
    report = json.loads((run / "fidelity-inspired.json").read_text())
    simulated, real = report["reports"]
    assert simulated["profile"]["messages"] == len(user_messages(run)) and real["profile"]["messages"] == 60
    figures = json.loads((run / "metrics.json").read_text())["fidelity"]
    assert figures["against"] == "inspired" and figures["auc"] == simulated["auc"]
    assert figures["distinct_messages"] == simulated["profile"]["distinct_messages"]

    assert main(["simulate-check", str(run), *common]) == 0  # checked again: the same figures
    assert "classifier AUC" in capsys.readouterr().out
    assert json.loads((run / "fidelity-inspired.json").read_text()) == report

    # A source that is missing fails before any conversation: the check is why the command runs.
    only_movielens = tmp_path / "data"
    only_movielens.mkdir()
    (only_movielens / "movielens-small").symlink_to(data_dir / "movielens-small")
    out = tmp_path / "unplayed"
    assert main([*argv, "--limit", "3", "--out", str(out), "--data-dir", str(only_movielens)]) == 2
    assert "ReDial train dialogues not found" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow  # MiniLM against 2,000 ReDial seekers' messages, and two more runs
def test_evaluate_reports_how_human_its_users_talk(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "llm"
    argv = ["evaluate", "--dataset", "movielens", "--limit", "3", "--quiet"]
    llm = ["--simulator", "llm", "--llm-backend", "none"]
    assert main([*argv, *llm, "--out", str(run), "--data-dir", str(data_dir)]) == 0
    shown = capsys.readouterr().out
    assert "real (redial seekers)" in shown and shown.index("SR@15") < shown.index("classifier AUC")
    figures = json.loads((run / "metrics.json").read_text())["fidelity"]
    assert figures["against"] == "redial" and figures["real_messages"] == 2000
    assert figures["messages"] == len(user_messages(run)) and 0.5 <= figures["auc"] <= 1.0
    assert 0 < figures["distinct_messages"] <= 1 and abs(sum(figures["acts"].values()) - 1.0) < 1e-3
    assert (run / "fidelity-redial.png").is_file()
    assert main(["view", str(run)]) == 0  # the figures do not upset the run's reader

    # The rule user writes no words: nothing is compared.
    rule = tmp_path / "rule"
    assert main([*argv, "--out", str(rule), "--data-dir", str(data_dir)]) == 0
    assert "fidelity" not in capsys.readouterr().out
    assert "fidelity" not in json.loads((rule / "metrics.json").read_text())

    # Without the real seekers' data the run still counts; the comparison is skipped in one line.
    only_movielens = tmp_path / "data"
    only_movielens.mkdir()
    (only_movielens / "movielens-small").symlink_to(data_dir / "movielens-small")
    skipped = tmp_path / "skipped"
    assert main([*argv, *llm, "--out", str(skipped), "--data-dir", str(only_movielens)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "fidelity" in line]
    assert len(lines) == 1 and lines[0].startswith("fidelity: skipped, ReDial train dialogues not found")
    assert "fidelity" not in json.loads((skipped / "metrics.json").read_text())
