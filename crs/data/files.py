"""Reading data files with errors that name the file and what was expected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crs.data.errors import DataError


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(f"missing file (expected {what})", path)
    return path


def read_json(path: Path, what: str) -> Any:
    require_file(path, what)
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise DataError(
            f"not valid JSON (line {error.lineno}, column {error.colno}); expected {what}", path
        ) from None
    except UnicodeDecodeError:
        raise DataError(f"not UTF-8 text; expected {what}", path) from None


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise DataError(f"expected a JSON object: {what}; found {type(data).__name__}", path)
    return data


def as_int(value: Any, path: Path, context: str) -> int:
    """An integer id, accepting the numeric strings that JSON object keys force on the SCPR files."""
    if isinstance(value, bool):
        raise DataError(f"{context}: expected an integer id, found {value!r}", path)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise DataError(f"{context}: expected an integer id, found {value!r}", path)
