"""The `crs` command end to end, in a subprocess as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crs.data import Dataset


def crs(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crs", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def test_evaluate_writes_a_complete_run_folder(tmp_path: Path, data_dir: Path, lastfm_star: Dataset) -> None:
    out = tmp_path / "run"
    done = crs(
        "evaluate",
        "--dataset",
        "lastfm_star",
        "--policy",
        "max_entropy",
        "--limit",
        "300",
        "--workers",
        "2",
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert "SR@15" in done.stdout and str(out) in done.stdout
    assert {p.name for p in out.iterdir()} == {
        "config.json",
        "transcripts.jsonl",
        "metrics.json",
        "success_by_turn.png",
    }
    lines = (out / "transcripts.jsonl").read_text().splitlines()
    assert len(lines) == 300
    first = json.loads(lines[0])
    catalog = lastfm_star.catalog
    for line in map(json.loads, lines):  # every opening names one attribute of its own target
        opening = line["turns"][0]
        assert opening.keys() == {"turn", "actor", "act", "attribute"}
        assert (opening["turn"], opening["actor"], opening["act"]) == (1, "user", "inform")
        target = catalog.items[catalog.item_index(line["target_item"])]
        assert opening["attribute"] in {catalog.attributes[a].id for a in target.attributes}, line
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["conversations"] == 300 and 0.9 < metrics["SR@15"] <= 1.0
    config = json.loads((out / "config.json").read_text())
    assert config["evaluate"]["workers"] == 2 and config["evaluate"]["limit"] == 300
    assert (out / "success_by_turn.png").read_bytes()[:4] == b"\x89PNG"

    view = crs(
        "view", str(out), "--conversation", "0", "--failures", "1", "--explain", "--data-dir", str(data_dir)
    )
    assert view.returncode == 0, view.stderr
    assert "conversation 0" in view.stdout and "turn  1  user" in view.stdout
    if first["success"]:
        assert "why: You said you like" in view.stdout

    again = crs(
        "evaluate",
        "--dataset",
        "lastfm_star",
        "--limit",
        "5",
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "--quiet",
    )
    assert again.returncode == 2 and "already exists" in again.stderr  # never overwrites a run


def test_noise_flags_and_config_file(tmp_path: Path, data_dir: Path) -> None:
    config = tmp_path / "my.toml"
    config.write_text('[evaluate]\npolicy = "random"\nlimit = 50\n[policy.random]\nlist_size = 5\n')
    out = tmp_path / "noisy"
    done = crs(
        "evaluate",
        "--config",
        str(config),
        "--dataset",
        "lastfm",
        "--answer-noise",
        "0.2",
        "--dont-know",
        "0.1",
        "--patience",
        "8",
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["evaluate"]["policy"] == "random" and resolved["evaluate"]["answer_noise"] == 0.2
    records = [json.loads(line) for line in (out / "transcripts.jsonl").read_text().splitlines()]
    assert len(records) == 50
    # Patience 8: the user takes part in 8 turns and quits at the 9th, whatever the policy does.
    assert all(len(r["turns"]) <= 9 for r in records)
    quitters = [r for r in records if r["termination"] == "user_quit"]
    assert quitters and all(len(r["turns"]) == 9 for r in quitters)
    answers = {t.get("answer") for r in records for t in r["turns"]}
    assert "dont_know" in answers
    assert all(len(t["items"]) <= 5 for r in records for t in r["turns"] if t["act"] == "recommend")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--dataset", "nope"], "unknown dataset 'nope'"),
        (["evaluate", "--split", "test"], "split 'test'"),
        (["evaluate", "--policy", "nope"], "--policy: unknown value 'nope'"),
        (["evaluate", "--data-dir", "/no/such/dir"], "does not exist"),
        (["evaluate", "--param", "list_size=0", "--limit", "3"], "list_size"),
        (["evaluate", "--param", "bogus=1", "--limit", "3"], "bogus"),
        (["view", "/no/such/run"], "not a run folder"),
    ],
)
def test_bad_input_gives_one_clear_line(
    tmp_path: Path, data_dir: Path, args: list[str], message: str
) -> None:
    extra = [] if args[0] == "view" or "--data-dir" in args else ["--data-dir", str(data_dir)]
    extra += ["--out", str(tmp_path / "run"), "--quiet"] if args[0] == "evaluate" else []
    done = crs(*args, *extra)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_bad_probability_is_refused_by_the_parser(data_dir: Path) -> None:
    done = crs("evaluate", "--answer-noise", "1.5", "--data-dir", str(data_dir))
    assert done.returncode == 2 and "between 0 and 1" in done.stderr


def test_policies_and_data_info(data_dir: Path) -> None:
    listing = crs("policies")
    assert listing.returncode == 0 and "max_entropy" in listing.stdout and "scpr_walk" in listing.stdout
    info = crs("data", "info", "lastfm_star", "--data-dir", str(data_dir))
    assert info.returncode == 0 and "items 7432, attributes 8438" in info.stdout
    assert "split test: absent" in info.stdout


def test_train_then_evaluate_reuses_the_saved_model(tmp_path: Path, data_dir: Path) -> None:
    config = tmp_path / "small.toml"
    config.write_text("[scorer.bpr]\nepochs = 2\ndim = 8\n")
    cache = tmp_path / "cache"
    common = [
        "--config",
        str(config),
        "--dataset",
        "lastfm",
        "--data-dir",
        str(data_dir),
        "--cache-dir",
        str(cache),
    ]
    trained = crs("train", *common, "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert "valid popularity" in trained.stdout and "valid bpr" in trained.stdout
    models = list(cache.glob("lastfm-bpr-*.npz"))
    assert len(models) == 1
    stamp = models[0].stat().st_mtime_ns
    done = crs(
        "evaluate", *common, "--scorer", "bpr", "--limit", "30", "--out", str(tmp_path / "run"), "--quiet"
    )
    assert done.returncode == 0, done.stderr
    assert models[0].stat().st_mtime_ns == stamp  # loaded, not retrained


def test_view_why_asks_the_policy_for_its_reasons(tmp_path: Path, data_dir: Path) -> None:
    run = tmp_path / "run"
    common = ("--data-dir", str(data_dir))
    done = crs("evaluate", "--dataset", "lastfm_star", "--limit", "5", "--quiet", "--out", str(run), *common)
    assert done.returncode == 0, done.stderr
    view = crs("view", str(run), "--conversation", "0", "--conversation", "3", "--why", *common)
    assert view.returncode == 0, view.stderr
    lines = view.stdout.splitlines()
    system_turns = [line for line in lines if "system t=" in line]
    reasons = [line.strip() for line in lines if line.strip().startswith("why: ")]
    assert system_turns and len(reasons) == len(system_turns)
    assert all(r.startswith(("why: Asking about", "why: Recommending")) for r in reasons)


def test_train_policy_reports_its_training(tmp_path: Path, data_dir: Path) -> None:
    quick = tmp_path / "quick.toml"  # what is reported, not what is learned: a short training
    quick.write_text("[scorer.bpr]\nepochs = 1\ndim = 4\n")
    common = ("--data-dir", str(data_dir), "--cache-dir", str(tmp_path), "--config", str(quick), "--quiet")
    first = crs("train", "--dataset", "lastfm", "--policy", "belief", *common)
    assert first.returncode == 0, first.stderr
    assert "policy belief trained" in first.stdout
    again = crs("train", "--dataset", "lastfm", "--policy", "belief", *common)
    assert again.returncode == 0 and "policy belief loaded from the cache" in again.stdout
    unknown = crs("train", "--dataset", "lastfm", "--policy", "nonsense", *common)
    assert unknown.returncode == 2 and unknown.stderr.startswith("error:")
