"""The schema a system prompt describes, read from its CREATE TABLE statements with sqlglot."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

_CREATE = re.compile(r"\bCREATE\s+(?:TEMP(?:ORARY)?\s+)?TABLE\b", re.IGNORECASE)
_SAMPLE = re.compile(r"'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
NUMERIC_TYPES = ("INT", "REAL", "FLOA", "DOUB", "NUM", "DEC", "BIGINT", "SMALLINT", "TINYINT")


def name_words(name: str) -> list[str]:
    """An identifier split into lower-case words: ``StuID`` -> stu, id; ``first_name`` -> ..."""
    return [w.lower() for w in _WORD.findall(name.replace("_", " "))]


@dataclass
class SchemaColumn:
    """A column: name, declared type and the sample values the prompt shows."""

    name: str
    """Column name as declared."""
    type: str = ""
    """Declared type, upper-case ("" when none)."""
    samples: list[str | float] = field(default_factory=list)
    """Sample values from ``-- e.g.`` comments (strings and numbers)."""

    @property
    def numeric(self) -> bool:
        """Whether the declared type is numeric."""
        return any(t in self.type for t in NUMERIC_TYPES)


@dataclass
class SchemaTable:
    """A table with its columns and keys."""

    name: str
    """Table name as declared."""
    columns: list[SchemaColumn] = field(default_factory=list)
    """Columns in declaration order."""
    primary_key: list[str] = field(default_factory=list)
    """Primary-key columns."""
    foreign_keys: list[tuple[str, str, str]] = field(default_factory=list)
    """(column, referenced table, referenced column) triples."""

    def column(self, name: str) -> SchemaColumn | None:
        """Case-insensitive column lookup."""
        low = name.lower()
        return next((c for c in self.columns if c.name.lower() == low), None)


@dataclass
class Schema:
    """All tables a prompt declares."""

    tables: list[SchemaTable] = field(default_factory=list)
    """Tables in prompt order."""

    def table(self, name: str) -> SchemaTable | None:
        """Case-insensitive table lookup."""
        low = name.lower()
        return next((t for t in self.tables if t.name.lower() == low), None)

    @property
    def fingerprint(self) -> str:
        """Stable id of the table/column names (same database, same fingerprint)."""
        text = ";".join(sorted(t.name.lower() + ":" + ",".join(sorted(c.name.lower()
                                                                      for c in t.columns))
                               for t in self.tables))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        """Compact JSON form (samples kept)."""
        return {"tables": [[t.name, [[c.name, c.type, c.samples] for c in t.columns],
                            t.primary_key, [list(fk) for fk in t.foreign_keys]]
                           for t in self.tables]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schema:
        """Inverse of ``to_json``."""
        return cls([SchemaTable(str(name), [SchemaColumn(str(c[0]), str(c[1]), list(c[2]))
                                            for c in cols], [str(k) for k in pk],
                                [(str(a), str(b), str(c)) for a, b, c in fks])
                    for name, cols, pk, fks in data["tables"]])


def _statement_end(text: str, start: int) -> int:
    """Index just past the parenthesis closing the first '(' after ``start`` (-1 if none)."""
    depth = 0
    i, n = start, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"`[":
            close = "]" if ch == "[" else ch
            j = text.find(close, i + 1)
            while j != -1 and close != "]" and j + 1 < n and text[j + 1] == close:
                j = text.find(close, j + 2)
            if j == -1:
                return -1
            i = j + 1
            continue
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j == -1 else j + 1
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j == -1 else j + 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _samples(comments: list[str] | None) -> list[str | float]:
    values: list[str | float] = []
    for comment in comments or []:
        text = comment.strip()
        if not text.lower().startswith("e.g."):
            continue
        for quoted, number in _SAMPLE.findall(text[4:]):
            if quoted:
                if not quoted.endswith("…"):
                    values.append(quoted.replace("''", "'"))
            elif number:
                values.append(float(number) if any(c in number for c in ".eE") else int(number))
    return values


def _identifiers(node: exp.Expression | None) -> list[str]:
    if node is None:
        return []
    return [e.name for e in node.expressions if isinstance(e, exp.Identifier | exp.Column)]


def _table_from(create: exp.Create) -> SchemaTable | None:
    schema = create.this
    if not isinstance(schema, exp.Schema) or not isinstance(schema.this, exp.Table):
        return None
    table = SchemaTable(schema.this.name)
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            kind = item.args.get("kind")
            type_text = kind.sql(dialect="sqlite").upper() if kind is not None else ""
            table.columns.append(SchemaColumn(item.name, type_text, _samples(item.comments)))
            if any(isinstance(c.args.get("kind"), exp.PrimaryKeyColumnConstraint)
                   for c in item.args.get("constraints") or []):
                table.primary_key.append(item.name)
        elif isinstance(item, exp.PrimaryKey):
            table.primary_key = _identifiers(item)
        elif isinstance(item, exp.ForeignKey):
            reference = item.args.get("reference")
            target = reference.this if isinstance(reference, exp.Reference) else None
            if isinstance(target, exp.Schema) and isinstance(target.this, exp.Table):
                refs = _identifiers(target) or [""] * len(_identifiers(item))
                for column, ref in zip(_identifiers(item), refs, strict=False):
                    table.foreign_keys.append((column, target.this.name, ref))
            elif isinstance(target, exp.Table):
                for column in _identifiers(item):
                    table.foreign_keys.append((column, target.name, ""))
    return table


_NAME = r'"(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[^\s(),]+'
_LINE_COLUMN = re.compile(rf"^\s*({_NAME})\s*([^,]*)")
_LINE_FK = re.compile(rf"FOREIGN\s+KEY\s*\(([^)]*)\)\s*REFERENCES\s+({_NAME})\s*(?:\(([^)]*)\))?",
                      re.IGNORECASE)
_LINE_PK = re.compile(r"^\s*PRIMARY\s+KEY\s*\(([^)]*)\)", re.IGNORECASE)
_CONSTRAINT_WORDS = ("PRIMARY", "FOREIGN", "UNIQUE", "CHECK", "CONSTRAINT")


def _unquote(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] in "\"`[" and name[-1] in "\"`]":
        return name[1:-1].replace('""', '"')
    return name


def _names(text: str) -> list[str]:
    return [_unquote(part) for part in text.split(",") if part.strip()]


def _table_from_lines(statement: str) -> SchemaTable | None:
    """Line-by-line reading for statements sqlglot rejects (types like ``character varchar``)."""
    head, _, body = statement.partition("(")
    name = _unquote(_CREATE.sub("", head).strip())
    if not name:
        return None
    table = SchemaTable(name)
    for line in body.rsplit(")", 1)[0].splitlines():
        definition, _, comment = line.partition("--")
        definition = definition.strip().rstrip(",").strip()
        if not definition:
            continue
        word = definition.split()[0].upper()
        if word in _CONSTRAINT_WORDS:
            if (pk := _LINE_PK.match(definition)) is not None:
                table.primary_key = _names(pk.group(1))
            if (fk := _LINE_FK.search(definition)) is not None:
                refs = _names(fk.group(3) or "")
                for i, column in enumerate(_names(fk.group(1))):
                    table.foreign_keys.append(
                        (column, _unquote(fk.group(2)), refs[i] if i < len(refs) else ""))
            continue
        if (match := _LINE_COLUMN.match(definition)) is None:
            continue
        rest = match.group(2).upper()
        kind = re.split(r"\b(?:PRIMARY|NOT|NULL|DEFAULT|UNIQUE|REFERENCES|CHECK)\b", rest)[0]
        declared = SchemaColumn(_unquote(match.group(1)), kind.strip(), _samples([comment]))
        table.columns.append(declared)
        if "PRIMARY KEY" in rest:
            table.primary_key.append(declared.name)
    return table


@functools.lru_cache(maxsize=64)
def parse_schema(text: str) -> Schema:
    """Every CREATE TABLE in ``text`` that sqlglot can parse; other lines are ignored.

    Cached by prompt text: every question about one database sends the same system prompt, and
    parsing it costs more than answering. Callers share the result and must not change it.
    """
    schema = Schema()
    position = 0
    while True:
        match = _CREATE.search(text, position)
        if match is None:
            break
        line_start = text.rfind("\n", 0, match.start()) + 1
        if "--" in text[line_start:match.start()] or \
                text.rfind("/*", 0, match.start()) > text.rfind("*/", 0, match.start()):
            position = match.end()  # inside a comment
            continue
        end = _statement_end(text, match.end())
        if end == -1:
            break
        position = end
        statement = text[match.start():end]
        try:
            parsed = sqlglot.parse_one(statement, read="sqlite")
            table = _table_from(parsed) if isinstance(parsed, exp.Create) else None
        except (sqlglot.errors.SqlglotError, ValueError):
            table = None
        by_lines = _table_from_lines(statement)
        if table is None or (by_lines is not None and len(by_lines.columns) > len(table.columns)):
            table = by_lines  # sqlglot drops untyped columns; the line reading keeps them
        if table is not None and table.columns and schema.table(table.name) is None:
            schema.tables.append(table)
    # Resolve implicit references (REFERENCES parent) to the parent's primary key.
    for table in schema.tables:
        for i, (column, parent, ref) in enumerate(table.foreign_keys):
            found = schema.table(parent)
            if not ref and found is not None and found.primary_key:
                table.foreign_keys[i] = (column, parent, found.primary_key[0])
    return schema
