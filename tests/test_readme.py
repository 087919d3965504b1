"""Every benchmark table in the README is the one scripts/readme_tables.py writes from the committed
results in benchmarks/results/*.json: a number edited by hand, or a result committed without its
table, fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_tables_match_the_committed_results() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readme_tables.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_check_sees_a_changed_number(tmp_path: Path) -> None:
    """The check compares numbers, not just the presence of blocks."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import readme_tables
    finally:
        sys.path.pop(0)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- table:policies-first -->")
    row = text.index("| lastfm_star |", start)
    changed = text[:row] + text[row:].replace("0.", "9.", 1)
    assert readme_tables.render(changed) == text
    assert changed != text
