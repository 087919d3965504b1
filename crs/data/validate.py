"""Checking a dataset before use: a catalog folder in the generic format, or a registered dataset.

`validate_path` returns the problems; `format_report` turns them into text for people. Nothing here
prints: the command line (`crs data validate PATH`) does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from crs.data.errors import DataError
from crs.data.generic import Problem, validate_generic

__all__ = ["Problem", "format_report", "validate_path"]


def validate_path(path_or_name: str, data_dir: str | None = None) -> list[Problem]:
    """Problems of a registered dataset (by name) or of a generic-format folder; [] when it is fine.

    A registered name wins over a folder of the same name, as in `load_dataset`. A registered
    dataset is checked by loading it, which stops at its first problem.
    """
    from crs.data.loaders import load_dataset
    from crs.registry import DATASETS

    if path_or_name in DATASETS:
        try:
            load_dataset(path_or_name, data_dir)
        except DataError as error:
            return [_problem_of(error, path_or_name)]
        return []
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        return validate_generic(path)
    return [
        Problem(
            path,
            None,
            f"neither a folder nor a registered dataset ({', '.join(DATASETS.names())}); a catalog in "
            "the generic format is a folder holding items.jsonl",
        )
    ]


def _problem_of(error: DataError, name: str) -> Problem:
    message = str(error)
    # DataError puts its path in front of the message; the Problem carries the path separately.
    if error.path is not None and message.startswith(f"{error.path}: "):
        message = message[len(f"{error.path}: ") :]
    return Problem(error.path if error.path is not None else Path(name), None, message)


def format_report(problems: Sequence[Problem], path: str | Path) -> str:
    """Text for people: one line per problem (file, line, message), or that there were none."""
    if not problems:
        return f"{path}: no problems found"
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    lines = [f"{path}: {count} found"]
    lines.extend(f"  {_shortened(problem, Path(path))}" for problem in problems)
    return "\n".join(lines)


def _shortened(problem: Problem, folder: Path) -> Problem:
    """The problem with its path relative to the folder checked, which the report's first line names."""
    try:
        relative = problem.path.relative_to(folder)
    except ValueError:
        return problem
    return problem if relative == Path() else Problem(relative, problem.line, problem.message)
