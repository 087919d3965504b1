"""Real `crs` processes for the tests that kill them part way (no lost work)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest


def start_crs(argv: list[str]) -> subprocess.Popen[str]:
    """`python -m crs ARGV`, its output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "crs", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_lines(path: Path, lines: int, process: subprocess.Popen[str]) -> None:
    """Until `path` holds `lines` complete lines (conversations written), so that a kill lands part way."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= lines:
            return
        if process.poll() is not None:
            pytest.fail(f"the run ended before {path} had {lines} lines: {process.communicate()}")
        time.sleep(0.01)
    pytest.fail(f"{path} did not reach {lines} lines in 5 minutes")
