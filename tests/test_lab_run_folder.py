"""No lost work in the policy lab: a `crs compare` or `crs sweep` killed part way keeps every
finished configuration and the conversations of the one it was playing, and `--resume REPORT`
ends with the report an uninterrupted run writes, measured times apart. The kills are real: a
subprocess, SIGKILL or SIGTERM once some transcripts exist."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from crs_process import start_crs, wait_for_lines

from crs.cli import main
from crs.lab.report import ReportFolder

# Fast policies and the popularity scorer: nothing trains, a configuration plays in a second or two.
CONVERSATIONS = 200
MEASURED = {
    "seconds",
    "setup_seconds",
    "conversations_per_second",
    "decision_ms",
    "decision_ms_p50",
    "decision_ms_p95",
}


@pytest.fixture
def files(tmp_path: Path, data_dir: Path) -> dict[str, Path]:
    settings = tmp_path / "crs.toml"
    settings.write_text('[evaluate]\nscorer = "popularity"\n')
    entropy = tmp_path / "entropy.toml"
    entropy.write_text('label = "entropy"\npolicy = "max_entropy"\n')
    brief = tmp_path / "brief.toml"
    brief.write_text('label = "brief"\npolicy = "max_entropy"\n[questions]\nmax_questions = 2\n')
    return {"settings": settings, "entropy": entropy, "brief": brief, "data": data_dir}


def common(files: dict[str, Path]) -> list[str]:
    return ["--dataset", "lastfm_star", "--limit", str(CONVERSATIONS), "--data-dir", str(files["data"])]


def start(argv: list[str]) -> subprocess.Popen[str]:
    return start_crs([*argv, "--quiet"])


def without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k not in MEASURED}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def table_without_times(text: str) -> str:
    """table.md less what is measured: the decision-time columns and the seconds per configuration."""
    lines, section = [], ""
    for line in text.splitlines():
        section = line if line.startswith("## ") else section
        if section == "## Metrics" and line.startswith("|"):
            line = "|".join(line.split("|")[:-3])  # the last two cells, decision ms p50 and p95
        lines.append(re.sub(r"[\d.]+ s\b", "T s", line))
    return "\n".join(lines)


def report_of(folder: Path) -> dict[str, Any]:
    """Everything in a report folder that does not depend on the clock."""
    out: dict[str, Any] = {
        "files": sorted(str(p.relative_to(folder)) for p in folder.rglob("*")),
        "table.json": without_times(json.loads((folder / "table.json").read_text())),
        "table.md": table_without_times((folder / "table.md").read_text()),
        "disagreements.md": (folder / "disagreements.md").read_text(),
    }
    if (folder / "sweep.json").exists():
        out["sweep.json"] = without_times(json.loads((folder / "sweep.json").read_text()))
    for run in sorted((folder / "runs").iterdir()):
        lines = (run / "transcripts.jsonl").read_text().splitlines()
        out[run.name] = {
            "transcripts": [without_times(json.loads(line)) for line in lines],
            "metrics": without_times(json.loads((run / "metrics.json").read_text())),
            "config": {
                k: v for k, v in json.loads((run / "config.json").read_text()).items() if k != "resolved"
            },
        }
    return out


def test_a_killed_compare_resumes_to_the_uninterrupted_report(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "compare",
        str(files["entropy"]),
        str(files["brief"]),
        *common(files),
        "--config",
        str(files["settings"]),
    ]
    killed = tmp_path / "killed"
    process = start([*argv, "--out", str(killed)])
    # Killed while the second configuration plays: the first is finished, the second part way.
    partial = killed / "runs" / "2-brief" / "transcripts.jsonl"
    wait_for_lines(partial, 20, process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert (killed / "runs" / "1-entropy" / "metrics.json").is_file()
    saved = partial.read_bytes().count(b"\n")
    assert 20 <= saved < CONVERSATIONS and not (killed / "table.json").exists()
    with partial.open("a", encoding="utf-8") as handle:
        handle.write('{"conversation_id": 77, "turns": [')  # a write the kill cut short

    # A second run on the same folder, or a resume that changes what is measured: one error line.
    def error_of(*args: str) -> str:
        assert main([*args, "--quiet"]) == 2
        return capsys.readouterr().err

    with ReportFolder.create(tmp_path / "busy", "crs compare --resume busy"):
        assert "is being written by another run" in error_of(*argv, "--out", str(tmp_path / "busy"))
    hint = error_of(*argv, "--out", str(killed))
    assert "already exists and is not empty" in hint and f"crs compare --resume {killed}" in hint
    assert "--limit 7 differs from the report's saved 200" in error_of(
        "compare", "--resume", str(killed), "--limit", "7"
    )
    assert "differs from the report's configuration 'entropy'" in error_of(
        "compare", str(files["brief"]), str(files["entropy"]), "--resume", str(killed)
    )
    assert "is a `crs compare` report" in error_of("sweep", "--resume", str(killed))
    for error in capsys.readouterr().err.splitlines():
        assert error.startswith("error:")

    assert main(["compare", "--resume", str(killed), "--data-dir", str(files["data"]), "--quiet"]) == 0
    assert "is complete" in error_of("compare", "--resume", str(killed))
    whole = tmp_path / "whole"
    assert main([*argv, "--out", str(whole), "--quiet"]) == 0
    assert report_of(killed) == report_of(whole)
    assert not list(killed.rglob(".lock")) and not list(killed.rglob("*.tmp"))


def test_sigterm_stops_a_sweep_that_resumes_to_the_uninterrupted_report(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    argv = ["sweep", str(files["entropy"]), "--param", "list_size=5,10", *common(files)]
    argv += ["--config", str(files["settings"])]
    stopped = tmp_path / "stopped"
    process = start([*argv, "--out", str(stopped)])
    wait_for_lines(stopped / "runs" / "1-list_size-5" / "transcripts.jsonl", 20, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.strip().count("\n") == 0
    assert f"crs sweep --resume {stopped}" in err and "0 of 2 configurations finished" in err

    resume = ["sweep", "--resume", str(stopped), "--data-dir", str(files["data"]), "--quiet"]
    assert main([*resume, "--param", "list_size=5,10", str(files["entropy"])]) == 0
    whole = tmp_path / "whole"
    assert main([*argv, "--out", str(whole), "--quiet"]) == 0
    assert report_of(stopped) == report_of(whole)
    assert "sweep_sr15.png" in report_of(stopped)["files"]
