"""Prompt schema text: CREATE TABLE statements rebuilt from a SQLite file, with samples, cached."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.core.sql.sqlite_ro import MissingDatabase, connect_readonly

MAX_VALUE_CHARS = 40
"""Sample strings longer than this are cut (with an ellipsis) to keep prompts compact."""

SAMPLE_TIME_LIMIT = 2.0
"""Seconds allowed for reading one database's samples (huge tables must not stall a prompt)."""

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# SQLite keywords that occur as names in real schemas; such names are quoted to stay valid SQL.
_KEYWORD_WORDS = """
abort action add after all alter analyze and as asc attach autoincrement before begin between by
cascade case cast check collate column commit conflict constraint create cross current
current_date current_time current_timestamp database default deferrable deferred delete desc
detach distinct do drop each else end escape except exclusive exists explain fail filter first
following for foreign from full generated glob group groups having if ignore immediate in index
indexed initially inner insert instead intersect into is isnull join key last left like limit
match natural no not nothing notnull null nulls of offset on or order others outer over
partition plan pragma preceding primary query raise range recursive references regexp reindex
release rename replace restrict returning right rollback row rows savepoint select set table
temp temporary then ties to transaction trigger unbounded union unique update using vacuum
values view virtual when where window with without
"""
_KEYWORDS = frozenset(_KEYWORD_WORDS.split())


class SchemaError(Exception):
    """The database cannot be read (missing file, not a SQLite database, ...)."""


def quote_name(name: str) -> str:
    """An identifier as SQL: bare when plain, double-quoted (quotes doubled) otherwise."""
    if _PLAIN_NAME.match(name) and name.lower() not in _KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def format_value(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """A sample value as a short SQL literal (strings single-quoted and truncated)."""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, int | float):
        return repr(value)
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return "'" + text.replace("'", "''") + "'"


def _cell(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """A sample-row cell: plain text on one line that cannot close the ``/* */`` block."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        text = " ".join(value.split())
        text = text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
    else:
        text = format_value(value, limit)
    return text.replace("*/", "* /")


@dataclass(frozen=True)
class Column:
    """One column as PRAGMA table_info describes it."""

    name: str
    """Column name as stored."""
    type: str
    """Declared type (may be empty in SQLite)."""
    not_null: bool
    """Declared NOT NULL."""
    pk: int
    """Position in the primary key (0 when not part of it)."""


@dataclass(frozen=True)
class ForeignKey:
    """One foreign key (possibly over several columns)."""

    columns: tuple[str, ...]
    """Columns in the referencing table."""
    table: str
    """Referenced table."""
    references: tuple[str, ...]
    """Referenced columns (empty when the key points at the parent's primary key implicitly)."""


@dataclass(frozen=True)
class Table:
    """A table's columns, keys and optional samples."""

    name: str
    """Table name as stored."""
    columns: tuple[Column, ...]
    """Columns in declaration order."""
    foreign_keys: tuple[ForeignKey, ...]
    """Foreign keys in declaration order."""


def read_tables(connection: sqlite3.Connection) -> list[Table]:
    """Tables (not views, not sqlite_ internals) with columns and keys, in creation order."""
    names = [row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY rowid")]
    tables = []
    for name in names:
        columns = tuple(
            Column(str(row[1]), str(row[2] or "").strip(), bool(row[3]), int(row[5]))
            for row in connection.execute("SELECT * FROM pragma_table_info(?)", (name,)))
        grouped: dict[int, list[tuple[str, str, str | None]]] = {}
        for row in connection.execute("SELECT * FROM pragma_foreign_key_list(?)", (name,)):
            grouped.setdefault(int(row[0]), []).append((str(row[2]), str(row[3]), row[4]))
        keys = []
        for key_id in sorted(grouped, reverse=True):  # SQLite lists the last-declared key first
            parts = grouped[key_id]
            refs = tuple(str(to) for _, _, to in parts if to is not None)
            keys.append(ForeignKey(tuple(frm for _, frm, _ in parts), parts[0][0],
                                   refs if len(refs) == len(parts) else ()))
        tables.append(Table(name, columns, tuple(keys)))
    return [_resolve_implicit_keys(table, tables) for table in tables]


def _resolve_implicit_keys(table: Table, tables: list[Table]) -> Table:
    """``REFERENCES parent`` (no columns) means the parent's primary key: spell it out."""
    primary = {t.name.lower(): tuple(c.name for c in sorted(t.columns, key=lambda c: c.pk)
                                     if c.pk) for t in tables}
    keys = tuple(
        ForeignKey(key.columns, key.table, primary.get(key.table.lower(), ()))
        if not key.references and len(primary.get(key.table.lower(), ())) == len(key.columns)
        else key
        for key in table.foreign_keys)
    return Table(table.name, table.columns, keys)


def render_table(table: Table, samples: dict[str, list[Any]] | None = None,
                 rows: tuple[list[str], list[tuple[Any, ...]]] | None = None) -> str:
    """One CREATE TABLE statement; samples become ``-- e.g.`` comments, rows a comment block."""
    pk_columns = [c.name for c in sorted((c for c in table.columns if c.pk), key=lambda c: c.pk)]
    lines: list[tuple[str, str]] = []
    for column in table.columns:
        parts = [quote_name(column.name)]
        if column.type:
            parts.append(column.type)
        if len(pk_columns) == 1 and column.name == pk_columns[0]:
            parts.append("PRIMARY KEY")
        elif column.not_null:
            parts.append("NOT NULL")
        values = (samples or {}).get(column.name) or []
        comment = " -- e.g. " + ", ".join(format_value(v) for v in values) if values else ""
        lines.append((" ".join(parts), comment))
    if len(pk_columns) > 1:
        lines.append((f"PRIMARY KEY ({', '.join(quote_name(n) for n in pk_columns)})", ""))
    for key in table.foreign_keys:
        target = quote_name(key.table)
        if key.references:
            target += f"({', '.join(quote_name(n) for n in key.references)})"
        lines.append((f"FOREIGN KEY ({', '.join(quote_name(n) for n in key.columns)}) "
                      f"REFERENCES {target}", ""))
    body = [f"  {text}{',' if i < len(lines) - 1 else ''}{comment}"
            for i, (text, comment) in enumerate(lines)]
    out = f"CREATE TABLE {quote_name(table.name)} (\n" + "\n".join(body) + "\n);"
    if rows is not None and rows[1]:
        header, data = rows
        noun = "row" if len(data) == 1 else "rows"
        block = ["/*", f"{len(data)} {noun} from {quote_name(table.name)}:",
                 "\t".join(_cell(name) for name in header)]
        block.extend("\t".join(_cell(v) for v in row) for row in data)
        block.append("*/")
        out += "\n" + "\n".join(block)
    return out


def build_schema_text(path: Path, sample_values: int = 0, sample_rows: int = 0) -> str:
    """Schema text of one SQLite file, read-only; raises SchemaError when it cannot be read."""
    try:
        connection = connect_readonly(path)
    except MissingDatabase as error:
        raise SchemaError(str(error)) from error
    try:
        connection.text_factory = lambda raw: raw.decode("utf-8", "replace")
        connection.execute("PRAGMA query_only = ON")
        tables = read_tables(connection)
        deadline = time.monotonic() + SAMPLE_TIME_LIMIT
        connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        parts = []
        for table in tables:
            samples = _sample_values(connection, table, sample_values) if sample_values else None
            rows = _sample_rows(connection, table, sample_rows) if sample_rows else None
            parts.append(render_table(table, samples, rows))
        return "\n\n".join(parts)
    except sqlite3.Error as error:
        raise SchemaError(f"cannot read schema of {path.name}: {error}") from error
    finally:
        connection.close()


SAMPLE_SCAN_ROWS = 20_000
"""Rows of a table looked at for distinct sample values (bounds the cost on big tables)."""


def _scan(connection: sqlite3.Connection, columns: str, table: Table,
          where: str = "") -> sqlite3.Cursor:
    """Rows in storage order: NOT INDEXED keeps the planner (and the SQLite version) from
    choosing another order, so the samples, and the prompt, are the same on every machine."""
    name = quote_name_always(table.name)
    try:
        return connection.execute(f"SELECT {columns} FROM {name} NOT INDEXED {where}")
    except sqlite3.OperationalError:  # e.g. virtual tables refuse NOT INDEXED
        return connection.execute(f"SELECT {columns} FROM {name} {where}")


FIRST_ROWS = 64
"""Rows of a table read in one query first: they settle the samples of most columns."""


def _sample_values(connection: sqlite3.Connection, table: Table, n: int) -> dict[str, list[Any]]:
    """Up to ``n`` distinct non-blank values per column, in storage order, from the column's
    first SAMPLE_SCAN_ROWS non-null rows. One query reads the table's first rows for every
    column; only a column those rows do not settle gets its own scan (same values, fewer
    queries). Text decodes in C; a column that is not valid UTF-8 is read again leniently."""
    lenient = connection.text_factory
    connection.text_factory = str
    names = [column.name for column in table.columns]
    found: dict[str, list[Any]] = {}
    try:
        try:
            cursor = _scan(connection, ", ".join(quote_name_always(c) for c in names), table,
                           f"LIMIT {FIRST_ROWS}")
            first: list[tuple[Any, ...]] | None = cursor.fetchall()
            cursor.close()
        except sqlite3.OperationalError:  # interrupted, undecodable text, an odd table
            first = None
        for i, name in enumerate(names):
            settled = _settled(first, i, n) if first is not None else None
            if settled is not None:
                found[name] = settled
                continue
            try:
                found[name] = _column_samples(connection, table, name, n)
            except sqlite3.OperationalError as error:
                found[name] = []  # interrupted by the time limit, or an odd column
                if "decode" in str(error):
                    connection.text_factory = lenient
                    with contextlib.suppress(sqlite3.OperationalError):
                        found[name] = _column_samples(connection, table, name, n)
                    connection.text_factory = str
    finally:
        connection.text_factory = lenient
    return found


def _distinct(values: list[Any], seen: set[tuple[str, Any]], value: Any) -> None:
    key = (type(value).__name__, value)
    if not (isinstance(value, str) and not value.strip()) and key not in seen:
        seen.add(key)
        values.append(value)


def _settled(rows: list[tuple[Any, ...]], i: int, n: int) -> list[Any] | None:
    """Column ``i``'s samples when the table's first rows decide them, else None."""
    values: list[Any] = []
    seen: set[tuple[str, Any]] = set()
    for row in rows:
        if row[i] is not None:
            _distinct(values, seen, row[i])
            if len(values) >= n:
                return values
    return values if len(rows) < FIRST_ROWS else None  # short table: every row was seen


def _column_samples(connection: sqlite3.Connection, table: Table, column: str,
                    n: int) -> list[Any]:
    name = quote_name_always(column)
    values: list[Any] = []
    seen: set[tuple[str, Any]] = set()
    cursor = _scan(connection, name, table, f"WHERE {name} IS NOT NULL LIMIT {SAMPLE_SCAN_ROWS}")
    try:
        while len(values) < n:
            batch = cursor.fetchmany(FIRST_ROWS)
            if not batch:
                break
            for (value,) in batch:
                _distinct(values, seen, value)
                if len(values) >= n:
                    break
    finally:
        cursor.close()
    return values


def _sample_rows(connection: sqlite3.Connection, table: Table,
                 n: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    header = [c.name for c in table.columns]
    try:
        cursor = _scan(connection, "*", table, f"LIMIT {int(n)}")
        return header, [tuple(row) for row in cursor]
    except sqlite3.OperationalError:
        return header, []


def quote_name_always(name: str) -> str:
    """An identifier always double-quoted (for the queries sqltune itself runs)."""
    return '"' + name.replace('"', '""') + '"'


class SchemaCache:
    """Schema text per (database file, samples), computed once and shared between threads."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._max_entries = max_entries
        self._texts: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[Any, ...], threading.Lock] = {}

    def schema_text(self, db_path: Path, sample_values: int = 0, *, sample_rows: int = 0) -> str:
        """CREATE TABLE text of ``db_path`` with up to ``sample_values`` values per column and
        ``sample_rows`` example rows per table; raises SchemaError when unreadable."""
        path = Path(db_path)
        try:
            stat = path.stat()
        except OSError as error:
            raise SchemaError(f"database file not found: {path}") from error
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size,
               max(0, sample_values), max(0, sample_rows))
        with self._lock:
            if key in self._texts:
                self._texts.move_to_end(key)
                return self._texts[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one thread builds a given key; the others wait and reuse it
            with self._lock:
                if key in self._texts:
                    return self._texts[key]
            try:
                text = build_schema_text(path, key[3], key[4])
            finally:
                with self._lock:
                    self._key_locks.pop(key, None)
            with self._lock:
                self._texts[key] = text
                while len(self._texts) > self._max_entries:
                    self._texts.popitem(last=False)
            return text

    def clear(self) -> None:
        """Forget every cached text."""
        with self._lock:
            self._texts.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._texts)
