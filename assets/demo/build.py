"""Rebuild the bundled Spider-format demo dataset deterministically from Python literals."""

from __future__ import annotations

import json
import random
import sqlite3
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _domains import airline, bookshop, clinic, university  # noqa: E402

DOMAINS: tuple[ModuleType, ...] = (bookshop, clinic, airline, university)


def column_type(declared: str) -> str:
    """Spider's coarse column type for a declared SQLite type."""
    upper = declared.upper()
    if any(word in upper for word in ("INT", "REAL", "NUM", "DEC", "FLOAT", "DOUBLE")):
        return "number"
    if "DATE" in upper or "TIME" in upper:
        return "time"
    if "BOOL" in upper:
        return "boolean"
    if "CHAR" in upper or "TEXT" in upper or "CLOB" in upper:
        return "text"
    return "others"


def natural(name: str) -> str:
    """Spider's readable name: lower case, underscores as spaces."""
    return name.replace("_", " ").lower()


def write_database(path: Path, module: ModuleType) -> None:
    """Create one SQLite file from a domain module's schema and seeded rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    rows = module.populate(random.Random(module.SEED))
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA foreign_keys = ON")
        for statement in module.SCHEMA:
            con.execute(statement)
        for table, table_rows in rows.items():
            if table_rows:
                marks = ", ".join("?" * len(table_rows[0]))
                con.executemany(f"INSERT INTO {table} VALUES ({marks})", table_rows)
        con.commit()
        problems = con.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise ValueError(f"{module.DB_ID}: foreign key violations {problems[:5]}")
        con.execute("VACUUM")
    finally:
        con.close()


def describe(path: Path, db_id: str) -> dict[str, Any]:
    """The tables.json entry of one SQLite file, read from the file itself."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [name for (name,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
        columns: list[list[Any]] = [[-1, "*"]]
        types = ["text"]
        primary: list[int] = []
        index: dict[tuple[str, str], int] = {}
        for t, table in enumerate(tables):
            for _cid, name, declared, _nn, _default, pk in con.execute(
                    f"PRAGMA table_info('{table}')"):
                index[(table, name.lower())] = len(columns)
                if pk:
                    primary.append(len(columns))
                columns.append([t, name])
                types.append(column_type(declared))
        foreign: list[list[int]] = []
        for table in tables:
            for fk in con.execute(f"PRAGMA foreign_key_list('{table}')"):
                ref_table, source, target = fk[2], fk[3], fk[4]
                foreign.append([index[(table, source.lower())], index[(ref_table, target.lower())]])
    finally:
        con.close()
    return {
        "column_names": [[t, natural(name) if t >= 0 else name] for t, name in columns],
        "column_names_original": columns,
        "column_types": types,
        "db_id": db_id,
        "foreign_keys": foreign,
        "primary_keys": primary,
        "table_names": [natural(name) for name in tables],
        "table_names_original": tables,
    }


def examples(split: str) -> list[dict[str, str]]:
    """All examples of one split, database by database."""
    return [
        {"db_id": module.DB_ID, "question": question, "query": query}
        for module in DOMAINS
        for question, query in getattr(module, split)
    ]


def write_json(path: Path, data: Any) -> None:
    """Stable, readable JSON with a trailing newline."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: list[Any]) -> None:
    """One example per line (the JSON Lines form of a split)."""
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows),
                    encoding="utf-8")


def build(out: Path) -> None:
    """Write database/, tables.json, train.json and dev.jsonl under out."""
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for module in DOMAINS:
        db_path = out / "database" / module.DB_ID / f"{module.DB_ID}.sqlite"
        write_database(db_path, module)
        entries.append(describe(db_path, module.DB_ID))
    write_json(out / "tables.json", entries)
    write_json(out / "train.json", examples("TRAIN"))
    write_jsonl(out / "dev.jsonl", examples("DEV"))


def main(argv: list[str]) -> int:
    """Build into the given folder, or next to this script."""
    build(Path(argv[0]) if argv else HERE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
