"""A kill never leaves a trained artifact that would be loaded half-written: a real `crs train`
SIGKILLed while its policy trains, and a write SIGKILLed between its last byte and the rename.
The rerun trains again and writes what an uninterrupted run writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from crs.artifacts import load_arrays, save_arrays, temporaries
from crs.cli import main

# Small enough to train in seconds, long enough (scpr_rl's episodes) for a kill to land in training.
SETTINGS = """
[scorer.bpr]
epochs = 2
dim = 8
[policy.scpr_rl]
episodes = 600
hidden = 8
"""


def train(cache: Path, settings: Path, data_dir: Path) -> list[str]:
    return [
        *("train", "--dataset", "lastfm_star", "--policy", "scpr_rl"),
        *("--cache-dir", str(cache), "--config", str(settings), "--data-dir", str(data_dir), "--quiet"),
    ]


def artifacts(cache: Path) -> dict[str, tuple[dict[str, object], dict[str, np.ndarray]]]:
    """Every artifact in the cache, as a loader sees it (each must load)."""
    out = {}
    for path in sorted(cache.glob("*.npz")):
        meta, arrays = load_arrays(path)
        meta.pop("train_seconds", None)  # measured
        out[path.name] = (meta, arrays)
    return out


def assert_same(a: dict[str, tuple[dict[str, object], dict[str, np.ndarray]]], b: dict) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name][0] == b[name][0], name
        assert sorted(a[name][1]) == sorted(b[name][1]), name
        for key, array in a[name][1].items():
            assert np.array_equal(array, b[name][1][key]), f"{name}: {key}"


def test_a_train_killed_while_the_policy_learns_leaves_nothing_to_load(
    tmp_path: Path, data_dir: Path
) -> None:
    settings = tmp_path / "crs.toml"
    settings.write_text(SETTINGS)
    cache = tmp_path / "cache"
    process = subprocess.Popen(
        [sys.executable, "-m", "crs", *train(cache, settings, data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not list(cache.glob("*-bpr-*.npz")):  # the scorer is saved: the policy trains next
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no scorer was saved: {process.communicate()}")
        time.sleep(0.01)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert not list(cache.glob("*scpr_rl*.npz")), "the kill came after training: make it train longer"
    assert [name for name in os.listdir(cache) if not name.startswith(".")] == [
        p.name for p in cache.glob("*-bpr-*.npz")
    ]
    artifacts(cache)  # what is there loads

    assert main(train(cache, settings, data_dir)) == 0
    whole = tmp_path / "whole"
    assert main(train(whole, settings, data_dir)) == 0
    assert_same(artifacts(cache), artifacts(whole))
    assert [p.name for p in cache.glob("*scpr_rl*.npz")] and not list(cache.glob(".*"))


WRITER = """
import os, sys, time
from pathlib import Path
import numpy as np
from crs.artifacts import save_arrays

real_fsync = os.fsync

def fsync_then_hang(fd):  # every byte is written, the rename has not happened: kill here
    real_fsync(fd)
    print("written", flush=True)
    time.sleep(120)

os.fsync = fsync_then_hang
save_arrays(Path(sys.argv[1]), {"version": 2}, {"weights": np.full(100_000, 2.0)})
"""


def test_a_write_killed_before_its_rename_keeps_the_old_artifact(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "model.npz"
    save_arrays(path, {"version": 1}, {"weights": np.ones(100_000)})
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), str(path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline() == "written\n"
    process.send_signal(signal.SIGKILL)
    process.communicate()
    meta, arrays = load_arrays(path)  # the old artifact, whole
    assert meta == {"version": 1} and np.array_equal(arrays["weights"], np.ones(100_000))
    (left,) = temporaries(path)  # SIGKILL gives no chance to clean up: the temporary stays ...
    assert left.name.startswith(".model.npz.") and list(path.parent.glob("*.npz")) == [path]

    save_arrays(path, {"version": 3}, {"weights": np.zeros(3)})
    assert temporaries(path) == [left]  # ... while it might be another writer's, young ...
    hours_ago = time.time() - 7200
    os.utime(left, (hours_ago, hours_ago))
    save_arrays(path, {"version": 4}, {"weights": np.zeros(3)})
    assert temporaries(path) == []  # ... and is removed by the next write once it is stale
    assert load_arrays(path)[0] == {"version": 4}
