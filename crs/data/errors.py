"""Errors raised when a dataset cannot be found or read. Their messages are meant for people."""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """A data file is missing or does not have the expected form."""

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(f"{path}: {message}" if path is not None else message)


class DataNotFoundError(DataError):
    """No data directory, or no dataset inside it."""
