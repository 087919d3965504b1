"""No lost work: a run folder keeps every finished conversation, a killed run resumes to exactly
the files an uninterrupted run writes, and a folder is never written by two runs or silently
overwritten. The kills are real: a `crs evaluate` process, SIGKILL or SIGTERM part way."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from crs_process import start_crs, wait_for_lines

from crs.cli import main
from crs.evaluation.run_folder import RunFolder, RunFolderError

# A run of a few seconds with no training, so that a kill lands part way.
RUN = ["evaluate", "--dataset", "lastfm_star", "--policy", "max_entropy", "--scorer", "popularity"]
CONVERSATIONS = 3000
MEASURED = {"seconds", "conversations_per_second", "decision_ms_p50", "decision_ms_p95"}


def start(out: Path, data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    argv = [*RUN, "--limit", str(CONVERSATIONS), "--out", str(out), "--data-dir", str(data_dir), "--quiet"]
    return start_crs([*argv, *extra])


def without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k != "decision_ms"}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def transcripts(folder: Path) -> list[Any]:
    lines = (folder / "transcripts.jsonl").read_text(encoding="utf-8").splitlines()
    return [without_times(json.loads(line)) for line in lines]


def metrics(folder: Path) -> dict[str, Any]:
    data = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if k not in MEASURED}


def test_a_killed_run_resumes_to_what_an_uninterrupted_run_writes(tmp_path: Path, data_dir: Path) -> None:
    killed = tmp_path / "killed"
    process = start(killed, data_dir, "--workers", "2")
    wait_for_lines(killed / "transcripts.jsonl", 500, process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    saved = (killed / "transcripts.jsonl").read_bytes().count(b"\n")
    assert 500 <= saved < CONVERSATIONS and not (killed / "metrics.json").exists()
    with (killed / "transcripts.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"conversation_id": 9, "turns": [')  # a write the kill cut short

    assert main(["evaluate", "--resume", str(killed), "--data-dir", str(data_dir), "--quiet"]) == 0
    whole = tmp_path / "whole"
    argv = [*RUN, "--limit", str(CONVERSATIONS), "--out", str(whole), "--data-dir", str(data_dir), "--quiet"]
    assert main(argv) == 0
    assert transcripts(killed) == transcripts(whole)
    assert metrics(killed) == metrics(whole)
    assert sorted(p.name for p in killed.iterdir()) == sorted(p.name for p in whole.iterdir())
    assert not (killed / ".lock").exists()


def test_sigterm_keeps_what_finished_and_says_how_to_resume(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "run"
    process = start(out, data_dir, "--workers", "2")
    wait_for_lines(out / "transcripts.jsonl", 300, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and f"crs evaluate --resume {out}" in err
    saved = (out / "transcripts.jsonl").read_text(encoding="utf-8").splitlines()
    assert f"{len(saved)} finished conversations are saved" in err
    assert [json.loads(line)["conversation_id"] for line in saved] == list(range(len(saved)))


def test_bad_outputs_and_resumes_fail_before_any_work(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def error_of(*argv: str) -> str:
        assert main([*argv, "--data-dir", str(data_dir), "--quiet"]) == 2
        return capsys.readouterr().err

    (tmp_path / "a-file").write_text("x")
    assert "cannot write run folder" in error_of(
        *RUN, "--limit", "3", "--out", str(tmp_path / "a-file" / "run")
    )
    assert "no config.json" in error_of("evaluate", "--resume", str(tmp_path))
    assert "unknown dataset" in error_of("evaluate", "--dataset", "nope", "--out", str(tmp_path / "nope"))
    assert not (tmp_path / "nope").exists()  # a run that failed before writing leaves no folder

    busy = tmp_path / "busy"
    with RunFolder.create(busy):
        assert "being written by another run" in error_of(*RUN, "--limit", "3", "--out", str(busy))
    assert not busy.exists() or not any(busy.iterdir())

    done = tmp_path / "done"
    assert main([*RUN, "--limit", "5", "--out", str(done), "--data-dir", str(data_dir), "--quiet"]) == 0
    capsys.readouterr()
    assert "already exists and is not empty" in error_of(*RUN, "--limit", "5", "--out", str(done))
    assert "is complete" in error_of("evaluate", "--resume", str(done))
    (done / "metrics.json").unlink()  # as if it had been killed before the end
    assert main(["view", str(done)]) == 2
    assert f"crs evaluate --resume {done}" in capsys.readouterr().err
    assert "--limit 7 differs from the run's saved 5" in error_of(
        "evaluate", "--resume", str(done), "--limit", "7"
    )
    assert "drop --out" in error_of("evaluate", "--resume", str(done), "--out", str(tmp_path / "x"))
    assert (
        main(["evaluate", "--resume", str(done), "--data-dir", str(data_dir), "--quiet", "--workers", "2"])
        == 0
    )


def test_damage_before_the_last_line_is_an_error_naming_the_line(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "transcripts.jsonl").write_text('{"conversation_id": 0}\n[1, 2]\n{"conversation_id": 2}\n')
    with pytest.raises(RunFolderError, match=r"transcripts.jsonl, line 1"):
        RunFolder.resume(folder)


def test_view_shows_only_numbers_the_transcripts_hold(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main([*RUN, "--limit", "20", "--out", str(run), "--data-dir", str(data_dir), "--quiet"]) == 0
    other = tmp_path / "other"
    argv = [
        "evaluate",
        "--dataset",
        "lastfm",
        "--policy",
        "random",
        "--scorer",
        "popularity",
        "--limit",
        "20",
    ]
    assert main([*argv, "--out", str(other), "--data-dir", str(data_dir), "--quiet"]) == 0
    capsys.readouterr()
    transcripts_file = run / "transcripts.jsonl"
    whole = transcripts_file.read_text(encoding="utf-8")

    def error_with(text: str, *flags: str) -> str:
        transcripts_file.write_text(text, encoding="utf-8")
        assert main(["view", str(run), *flags]) == 2
        return capsys.readouterr().err

    assert "holds no conversations" in error_with("")
    assert "line 1: not a transcript record (a JSON list" in error_with("[1, 2]\n")
    assert "says conversations = 20, but transcripts.jsonl gives 10" in error_with(
        "".join(whole.splitlines(keepends=True)[:10])
    )
    mixed = (other / "transcripts.jsonl").read_text(encoding="utf-8")
    assert "the folder mixes two runs" in error_with(mixed)
    assert "--conversation 99999: the run holds conversations 0..19" in error_with(
        whole, "--conversation", "99999"
    )
    transcripts_file.write_text(whole, encoding="utf-8")
    assert main(["view", str(run), "--conversation", "3"]) == 0
    assert "conversation 3:" in capsys.readouterr().out


def test_a_cache_that_cannot_take_a_file_is_one_clear_error(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crs.artifacts import save_arrays

    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("x")
    quick = tmp_path / "quick.toml"  # one epoch: the failure is at the first write, not the training
    quick.write_text("[scorer.bpr]\nepochs = 1\ndim = 4\n")
    argv = ["evaluate", "--dataset", "lastfm_star", "--limit", "3", "--data-dir", str(data_dir), "--quiet"]
    argv += ["--config", str(quick)]
    assert main([*argv, "--cache-dir", str(blocked), "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: cannot write {blocked}/") and "--cache-dir" in error
    assert not (tmp_path / "run").exists()
    (tmp_path / "cache" / "model.npz").mkdir(parents=True)  # a folder where the file belongs
    with pytest.raises(OSError, match="cannot write .*model.npz: Is a directory"):
        save_arrays(tmp_path / "cache" / "model.npz", {}, {"a": np.zeros(2)})
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["model.npz"]  # no temporary left
