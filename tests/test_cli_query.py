"""``sqltune query --db FILE "SQL" --json`` as a whole process: rows, errors, nothing written."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.core.test_sqlexec import make_concert_db


def sqltune(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui", *argv], capture_output=True, text=True,
                          timeout=60, check=False)


def one_json(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 1, completed.stdout + completed.stderr
    data: dict[str, Any] = json.loads(lines[0])
    return data


@pytest.fixture
def db(tmp_path: Path) -> Path:
    folder = tmp_path / "db"
    folder.mkdir()
    return make_concert_db(folder / "concert.sqlite")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rows_as_json(db: Path) -> None:
    completed = sqltune("query", "--db", str(db), "--json", "--max-rows", "3",
                        "SELECT singer_id, name, photo, age / 2.0 AS half FROM singer "
                        "ORDER BY singer_id")
    assert completed.returncode == 0, completed.stderr
    data = one_json(completed)
    assert set(data) == {"columns", "rows", "row_count", "truncated", "elapsed_ms"}
    assert data["columns"] == ["singer_id", "name", "photo", "half"]
    assert data["rows"] == [[1, "singer 1", "x'0100ff'", 10.5], [2, "singer 2", "x'0200ff'", 11.0],
                            [3, "singer 3", "x'0300ff'", 11.5]]
    assert data["row_count"] == 3 and data["truncated"] is True
    assert isinstance(data["elapsed_ms"], float) and data["elapsed_ms"] >= 0
    whole = one_json(sqltune("query", "--db", str(db), "--json", "SELECT count(*) FROM concert"))
    assert (whole["rows"], whole["row_count"], whole["truncated"]) == ([[80]], 1, False)


@pytest.mark.parametrize(("sql", "kind"), [
    ("SELEC 1", "syntax_error"),
    ("SELECT nope FROM singer", "schema_error"),
    ("ATTACH DATABASE 'x.sqlite' AS x", "not_allowed"),
    ("SELECT 1; SELECT 2", "not_allowed"),
])
def test_errors_exit_1(db: Path, sql: str, kind: str) -> None:
    completed = sqltune("query", "--db", str(db), "--json", sql)
    assert completed.returncode == 1
    error = one_json(completed)["error"]
    assert set(error) == {"type", "message"} and error["type"] == kind and error["message"]


def test_write_is_refused_and_the_file_is_byte_identical(db: Path, tmp_path: Path) -> None:
    before, files = digest(db), sorted(os.listdir(db.parent))
    for sql in ("DELETE FROM singer",
                "UPDATE singer SET name = 'x'",
                "WITH gone AS (SELECT 1) INSERT INTO singer (name) SELECT 'x' FROM gone",
                "DROP TABLE concert",
                "PRAGMA user_version = 7",
                f"VACUUM INTO '{tmp_path / 'copy.sqlite'}'"):
        completed = sqltune("query", "--db", str(db), "--json", sql)
        assert completed.returncode == 1, sql
        assert one_json(completed)["error"]["type"] == "not_allowed", sql
    assert digest(db) == before
    assert sorted(os.listdir(db.parent)) == files
    assert not (tmp_path / "copy.sqlite").exists()
    assert one_json(sqltune("query", "--db", str(db), "--json",
                            "SELECT count(*) FROM singer"))["rows"] == [[40]]


def test_deadline_missing_file_and_bad_arguments(db: Path, tmp_path: Path) -> None:
    bomb = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n"
    timed = sqltune("query", "--db", str(db), "--json", "--timeout", "0.2", bomb)
    assert timed.returncode == 1 and one_json(timed)["error"]["type"] == "timeout"
    missing = tmp_path / "nowhere" / "missing.sqlite"
    gone = sqltune("query", "--db", str(missing), "--json", "SELECT 1")
    assert gone.returncode == 1 and one_json(gone)["error"]["type"] == "missing_database"
    assert not missing.parent.exists()
    bad = sqltune("query", "--db", str(db), "--json", "--max-rows", "-1", "SELECT 1")
    assert bad.returncode == 1 and one_json(bad)["error"]["type"] == "invalid_argument"


def test_text_output(db: Path) -> None:
    completed = sqltune("query", "--db", str(db), "SELECT name, NULL AS empty FROM singer "
                        "WHERE singer_id <= 2 ORDER BY singer_id")
    assert completed.returncode == 0
    lines = completed.stdout.splitlines()
    assert lines[0].split() == ["name", "|", "empty"]
    assert lines[2].split() == ["singer", "1", "|", "NULL"]
    assert lines[-1].startswith("2 row(s) in ")
    failed = sqltune("query", "--db", str(db), "DELETE FROM singer")
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith("error (not_allowed): ")
