"""Plug-ins from outside crs: a policy package installed into the virtual environment is found by
its entry point, evaluated and checked like a built-in one, and works by import path too."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from crs.data import Dataset
from crs.evaluation.runner import evaluate
from crs.factory import policy_for_run
from crs.registry import POLICIES, UnknownNameError, is_import_path
from crs.settings import load_settings, run_spec
from policy.conformance import check_policy

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "crs-split-half"
DISTRIBUTION = "crs-split-half"


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def crs(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "crs", *args, "--data-dir", str(data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example package, really installed (not editable) from a copy, removed afterwards."""
    _pip("uninstall", "-y", DISTRIBUTION)  # a leftover of an interrupted run
    source = tmp_path_factory.mktemp("plugin") / "crs-split-half"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    done = _pip("install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet", str(source))
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        yield DISTRIBUTION
    finally:
        _pip("uninstall", "-y", DISTRIBUTION)


def test_an_installed_policy_is_listed_checked_and_evaluated(
    installed: str, data_dir: Path, tmp_path: Path
) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "crs", "policies"], capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0 and "split_half" in listed.stdout and f"[{installed}]" in listed.stdout

    fast = ["--dataset", "lastfm_star", "--scorer", "popularity"]
    checked = crs("check", "--policy", "split_half", *fast, "--conversations", "10", data_dir=data_dir)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok   stateless" in checked.stdout and "FAIL" not in checked.stdout

    out = tmp_path / "run"
    run = crs(
        "evaluate",
        "--policy",
        "split_half",
        *fast,
        "--limit",
        "100",
        "--out",
        str(out),
        "--quiet",
        data_dir=data_dir,
    )
    assert run.returncode == 0, run.stderr
    metrics = (out / "metrics.json").read_text()
    assert '"SR@15"' in metrics
    lines = (out / "transcripts.jsonl").read_text().splitlines()
    assert len(lines) == 100 and all('"policy": "split_half"' in line for line in lines)
    # It is a real policy: it finds most targets on LastFM*.
    summary = json.loads(metrics)
    assert summary["SR@15"] > 0.5 and summary["terminations"].get("error", 0) == 0


def test_a_policy_by_import_path_needs_no_installation(
    lastfm_star: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `--policy crs_split_half:SplitHalfPolicy` does with the folder on PYTHONPATH."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    spec = run_spec(
        load_settings(
            overrides={"evaluate.policy": "crs_split_half:SplitHalfPolicy", "evaluate.scorer": "popularity"},
            params=[("list_size", 5)],
        )
    )
    policy = policy_for_run(replace(spec, limit=30), lastfm_star)
    result = evaluate(replace(spec, limit=30), lastfm_star, policy)
    assert type(policy).__name__ == "SplitHalfPolicy" and result.records[0].policy == spec.policy
    assert all(len(turn.items or ()) <= 5 for record in result.records for turn in record.turns)
    assert check_policy(policy, lastfm_star, conversations=5, list_size=5) == []


def test_bad_plugin_names_are_clear() -> None:
    assert is_import_path("package.module:Class") and not is_import_path("belief")
    with pytest.raises(UnknownNameError, match="cannot import 'no_such_package.policies'"):
        POLICIES.get("no_such_package.policies:Mine")
    with pytest.raises(UnknownNameError, match="has no 'Nope'"):
        POLICIES.get("crs.types:Nope")
    with pytest.raises(UnknownNameError, match="did you mean 'belief'"):
        POLICIES.get("belif")
