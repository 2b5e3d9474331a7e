"""Open an existing SQLite file read-only, never creating one that is missing."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote


class MissingDatabase(FileNotFoundError):
    """The SQLite file does not exist (sqltune never creates one)."""


def connect_readonly(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A read-only connection by URI; raises MissingDatabase instead of creating a file."""
    path = Path(path)
    if not path.is_file():
        raise MissingDatabase(f"database file not found: {path}")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    return sqlite3.connect(uri, uri=True, check_same_thread=check_same_thread)
