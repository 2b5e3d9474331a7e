"""The one read-only path for model-written SQL: deny writes, keep deadlines, cap rows, cancel."""

from __future__ import annotations

import math
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tui.core.sql.sqlite_ro import MissingDatabase
from tui.core.sql.sqlprintf import BoundedPrintf

# SQLite checks the deadline every this many virtual-machine steps (bench/bench_sqlexec.py).
PROGRESS_STEPS = 1000
# No single string or blob may exceed this: zeroblob/randomblob bombs fail at once.
MAX_VALUE_BYTES = 10_000_000
MAX_SQL_BYTES = 1_000_000

# Introspection pragmas that only read (plain or as pragma_xxx() table functions).
READ_ONLY_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "collation_list", "function_list", "module_list", "pragma_list",
    "database_list",
})
# Settings that may be read (never set): PRAGMA name with no argument.
READABLE_SETTINGS = frozenset({
    "user_version", "application_id", "schema_version", "page_size", "page_count",
    "freelist_count", "encoding", "journal_mode", "foreign_keys", "auto_vacuum",
})
# Preparing an eponymous virtual table (json_each, pragma_table_info) asks to UPDATE these;
# mode=ro, query_only and the denied writable_schema make any real schema write impossible.
_SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master",
                            "sqlite_temp_schema"})
# Statements refused by their first word (REINDEX, for one, skips the authorizer).
WRITE_KEYWORDS = frozenset({
    "insert", "update", "delete", "replace", "upsert", "create", "drop", "alter", "reindex",
    "analyze", "vacuum", "attach", "detach", "begin", "commit", "end", "rollback",
    "savepoint", "release",
})
DENIED_FUNCTIONS = frozenset({
    "load_extension", "fts3_tokenizer", "readfile", "writefile", "edit", "sqlite_dbpage",
})
_ALLOWED_ACTIONS = frozenset({
    sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE, sqlite3.SQLITE_PRAGMA,
})
_ACTION_NAMES = {
    1: "CREATE INDEX", 2: "CREATE TABLE", 3: "CREATE TEMP INDEX", 4: "CREATE TEMP TABLE",
    5: "CREATE TEMP TRIGGER", 6: "CREATE TEMP VIEW", 7: "CREATE TRIGGER", 8: "CREATE VIEW",
    9: "DELETE", 10: "DROP INDEX", 11: "DROP TABLE", 12: "DROP TEMP INDEX",
    13: "DROP TEMP TABLE", 14: "DROP TEMP TRIGGER", 15: "DROP TEMP VIEW", 16: "DROP TRIGGER",
    17: "DROP VIEW", 18: "INSERT", 22: "a transaction", 23: "UPDATE", 24: "ATTACH",
    25: "DETACH", 26: "ALTER TABLE", 27: "REINDEX", 28: "ANALYZE",
    29: "CREATE VIRTUAL TABLE", 30: "DROP VIRTUAL TABLE", 32: "a savepoint",
}

ERROR_TYPES = (
    "syntax_error", "schema_error", "not_allowed", "timeout", "cancelled",
    "missing_database", "too_large", "runtime_error",
)


@dataclass(frozen=True)
class QueryResult:
    """What one read-only statement returned."""

    columns: list[str]
    """Result column names, in order (empty for a statement without a result)."""
    rows: list[tuple[Any, ...]]
    """At most max_rows rows, as SQLite's Python values (int, float, str, bytes, None)."""
    row_count: int
    """len(rows): rows actually returned (the capped count when truncated)."""
    truncated: bool
    """True when the statement had more rows than max_rows."""
    elapsed_ms: float
    """Wall time from open to the last fetched row."""

    def to_json(self) -> dict[str, Any]:
        """The JSON shape `sqltune query --json` prints (blobs and non-finite floats as text)."""
        return {
            "columns": list(self.columns),
            "rows": [[jsonable(value) for value in row] for row in self.rows],
            "row_count": self.row_count,
            "truncated": self.truncated,
            "elapsed_ms": round(self.elapsed_ms, 3),
        }


class QueryError(Exception):
    """A statement that could not run; `type` is one of ERROR_TYPES."""

    def __init__(self, type: str, message: str) -> None:
        super().__init__(f"{type}: {message}")
        self.type = type
        self.message = message

    def to_json(self) -> dict[str, Any]:
        """{"error": {"type", "message"}} as the CLI prints it."""
        return {"error": {"type": self.type, "message": self.message}}


def jsonable(value: Any) -> Any:
    """One SQLite value as JSON: bytes become SQLite's blob literal x'..', inf becomes text."""
    if isinstance(value, bytes | bytearray | memoryview):
        return f"x'{bytes(value).hex()}'"
    if isinstance(value, float) and not math.isfinite(value):
        return "Infinity" if value > 0 else "-Infinity" if value < 0 else "NaN"
    return value


def _wal_state(db: Path) -> str:
    """'rollback', 'wal-idle' (WAL header but no -wal file), 'wal-live' or 'wal-unrecovered'
    (a -wal file without -shm).

    Raises MissingDatabase unless `db` is an existing regular file (never a FIFO or device).
    """
    try:
        if not stat.S_ISREG(os.stat(db).st_mode):
            raise MissingDatabase(f"database file not found: {db} is not a regular file")
        handle = os.open(db, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise MissingDatabase(f"database file not found: {db}") from None
    try:
        header = os.read(handle, 20)
    finally:
        os.close(handle)
    if len(header) < 20 or header[18] != 2:
        return "rollback"
    real = os.path.realpath(db)  # SQLite keeps -wal and -shm beside a symlink's target
    if not os.path.exists(f"{real}-wal"):
        return "wal-idle"
    return "wal-live" if os.path.exists(f"{real}-shm") else "wal-unrecovered"


def _file_uri(db: Path, options: str) -> str:
    """A `file:` URI of the absolute path; no resolve() (a syscall per component), since
    SQLite itself follows symlinks and '..' exactly as the OS would."""
    text = os.fspath(db)
    if not os.path.isabs(text):
        text = os.path.join(os.getcwd(), text)
    return f"file:{quote(text)}?{options}"


def open_readonly(db: Path) -> sqlite3.Connection:
    """A locked-down read-only connection that creates no file beside the database."""
    db = Path(db)
    try:
        state = _wal_state(db)
        if state == "wal-unrecovered":
            raise QueryError("runtime_error",
                             "WAL database needs recovery (a -wal file without -shm); "
                             "open it once with a writer first")
        # mode=ro on a WAL database would create -wal and -shm; with no -wal file all
        # content is in the main file, so immutable reads it without creating anything.
        # mode=ro never creates the database file itself, even if it vanished just now.
        options = "mode=ro&immutable=1" if state == "wal-idle" else "mode=ro"
        connection = sqlite3.connect(_file_uri(db, options), uri=True, check_same_thread=False)
    except MissingDatabase as error:
        raise QueryError("missing_database", str(error)) from None
    except (sqlite3.Error, OSError) as error:
        raise QueryError("runtime_error", f"cannot open database: {error}") from None
    connection.isolation_level = None
    connection.execute("PRAGMA query_only=ON")
    disable_extensions = getattr(connection, "enable_load_extension", None)
    if disable_extensions is not None:  # absent when Python is built without extension support
        disable_extensions(False)
    connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    connection.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES)
    return connection


def _pragma_reads(name: str | None, argument: str | None) -> bool:
    name = (name or "").lower()
    return name in READ_ONLY_PRAGMAS or (argument is None and name in READABLE_SETTINGS)


def first_keyword(sql: str) -> str:
    """The statement's first word, lower-case, after comments, blanks and '(' ('' if none)."""
    position, length = 0, len(sql)
    while position < length:
        char = sql[position]
        if char.isspace() or char == "(":
            position += 1
        elif sql.startswith("--", position):
            end = sql.find("\n", position)
            position = length if end < 0 else end + 1
        elif sql.startswith("/*", position):
            end = sql.find("*/", position + 2)
            position = length if end < 0 else end + 2
        else:
            break
    end = position
    while end < length and (sql[end].isalnum() or sql[end] == "_"):
        end += 1
    return sql[position:end].lower()


@dataclass
class _Guard:
    """Authorizer and progress handler state for one connection."""

    deadline: float = math.inf
    timeout: float = 0.0
    timed_out: bool = False
    cancelled: bool = False
    denied: str | None = None
    failure: tuple[str, str] | None = None
    active: bool = field(default=False)

    def authorize(self, action: int, arg1: str | None, arg2: str | None,
                  _db: str | None, _trigger: str | None) -> int:
        if action in _ALLOWED_ACTIONS:
            if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in DENIED_FUNCTIONS:
                self.denied = f"function {arg2}() is not allowed"
                return sqlite3.SQLITE_DENY
            if action == sqlite3.SQLITE_PRAGMA and not _pragma_reads(arg1, arg2):
                self.denied = f"PRAGMA {arg1} is not allowed (read-only executor)"
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_UPDATE and (arg1 or "").lower() in _SCHEMA_TABLES:
            return sqlite3.SQLITE_OK
        name = _ACTION_NAMES.get(action, f"action {action}")
        target = f" {arg1}" if arg1 and action != sqlite3.SQLITE_TRANSACTION else ""
        self.denied = f"{name}{target} is not allowed: this executor only reads"
        return sqlite3.SQLITE_DENY

    def progress(self) -> int:
        if self.cancelled:
            return 1
        if time.monotonic() > self.deadline:
            self.timed_out = True
            return 1
        return 0


class ReadOnlyExecutor:
    """Runs one statement at a time on one database; `cancel()` works from any thread."""

    def __init__(self, db: Path, *, timeout: float = 5.0, max_rows: int = 1000) -> None:
        self.db = Path(db)
        self.timeout = timeout
        self.max_rows = max_rows
        self._connection: sqlite3.Connection | None = None
        self._guard = _Guard()
        self._run_lock = threading.Lock()
        self._state_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = open_readonly(self.db)
            connection.set_authorizer(self._guard.authorize)
            connection.set_progress_handler(self._guard.progress, PROGRESS_STEPS)
            bounded = BoundedPrintf(self._guard, MAX_VALUE_BYTES)
            for name in ("printf", "format"):
                connection.create_function(name, -1, bounded, deterministic=True)
            self._connection = connection
        return self._connection

    def run(self, sql: str, *, timeout: float | None = None,
            max_rows: int | None = None) -> QueryResult:
        """Run `sql` (exactly one statement); raise QueryError on any failure."""
        timeout = self.timeout if timeout is None else timeout
        max_rows = self.max_rows if max_rows is None else max_rows
        if max_rows < 0:
            raise ValueError("max_rows must be >= 0")
        with self._run_lock:
            started = time.monotonic()
            guard = self._guard
            with self._state_lock:
                guard.deadline = started + max(0.0, timeout)
                guard.timeout = timeout
                guard.timed_out = guard.cancelled = False
                guard.denied = guard.failure = None
                guard.active = True
            try:
                keyword = first_keyword(sql)
                if keyword in WRITE_KEYWORDS:
                    raise QueryError("not_allowed",
                                     f"{keyword.upper()} is not allowed: this executor only "
                                     "runs queries (SELECT, WITH, VALUES)")
                connection = self._connect()
                cursor = connection.execute(sql)
                try:
                    columns = [item[0] for item in cursor.description or ()]
                    rows = cursor.fetchmany(max_rows + 1) if columns else []
                finally:
                    cursor.close()
            except sqlite3.Error as error:
                raise self._translate(error, sql) from None
            except OverflowError as error:
                raise QueryError("too_large", str(error)) from None
            finally:
                with self._state_lock:
                    guard.active = False
            truncated = len(rows) > max_rows
            rows = rows[:max_rows]
            return QueryResult(columns=columns, rows=rows, row_count=len(rows),
                               truncated=truncated,
                               elapsed_ms=(time.monotonic() - started) * 1000.0)

    def _translate(self, error: sqlite3.Error, sql: str) -> QueryError:
        guard = self._guard
        text = str(error)
        lowered = text.lower()
        if guard.cancelled:
            return QueryError("cancelled", "the query was cancelled")
        if guard.timed_out or lowered == "interrupted":
            return QueryError("timeout", f"the query ran past its {guard.timeout:g} s deadline")
        if guard.failure is not None:
            return QueryError(*guard.failure)
        if isinstance(error, sqlite3.ProgrammingError) and "one statement" in lowered:
            return QueryError("not_allowed", "only one SQL statement may run at a time")
        if guard.denied is not None and "authori" in lowered:
            return QueryError("not_allowed", guard.denied)
        if "readonly" in lowered or "read-only" in lowered or "authori" in lowered:
            return QueryError("not_allowed", f"{text}: this executor only reads")
        if "too big" in lowered or "too large" in lowered or "too long" in lowered:
            return QueryError("too_large", text)
        if ("syntax error" in lowered or "incomplete input" in lowered
                or "unrecognized token" in lowered or not sql.strip()):
            return QueryError("syntax_error", text)
        if lowered.startswith(("no such table", "no such column", "no such function",
                               "ambiguous column", "no tables specified")):
            return QueryError("schema_error", text)
        return QueryError("runtime_error", text)

    def cancel(self) -> None:
        """Stop the statement running now (if any) with QueryError('cancelled')."""
        with self._state_lock:
            if not self._guard.active:
                return
            self._guard.cancelled = True
            connection = self._connection
        if connection is not None:
            connection.interrupt()

    def close(self) -> None:
        """Close the connection (the next run opens a new one)."""
        with self._run_lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> ReadOnlyExecutor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def run_readonly(db: Path, sql: str, *, timeout: float = 5.0,
                 max_rows: int = 1000) -> QueryResult:
    """Run one statement on a read-only connection; raise QueryError on failure."""
    with ReadOnlyExecutor(db, timeout=timeout, max_rows=max_rows) as executor:
        return executor.run(sql)


def format_table(result: QueryResult, *, max_width: int = 40) -> str:
    """A plain-text table of a result for terminals (the CLI without --json)."""
    def cell(value: Any) -> str:
        text = "NULL" if value is None else str(jsonable(value))
        text = text.replace("\n", " ")
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    header = [cell(name) for name in result.columns]
    body: list[Sequence[str]] = [[cell(value) for value in row] for row in result.rows]
    widths = [max([len(header[i])] + [len(row[i]) for row in body]) for i in range(len(header))]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    more = " (truncated)" if result.truncated else ""
    lines.append(f"{result.row_count} row(s){more} in {result.elapsed_ms:.1f} ms")
    return "\n".join(lines)
