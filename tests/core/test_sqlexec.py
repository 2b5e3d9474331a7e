"""The read-only executor: results, errors, cancel, and a hostile corpus that changes nothing."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tui.core.sql.sqlexec import QueryError, ReadOnlyExecutor, first_keyword, jsonable, run_readonly

CORPUS = Path(__file__).parent / "hostile" / "corpus.sql"
DEADLINE = 0.3
# Scheduling slack on a busy CI machine; bench/bench_sqlexec.py measures the real overshoot.
SLACK = 0.25


def make_concert_db(path: Path, *, wal: bool = False) -> Path:
    """A small Spider-like database with a view, an index and a blob column."""
    connection = sqlite3.connect(path)
    if wal:
        connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(
        """
        CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, age INTEGER,
                             photo BLOB);
        CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, singer_id INTEGER
                              REFERENCES singer(singer_id), year INTEGER, score REAL);
        CREATE INDEX singer_age ON singer (age);
        CREATE VIEW singer_names AS SELECT name FROM singer;
        """
    )
    connection.executemany(
        "INSERT INTO singer VALUES (?, ?, ?, ?)",
        [(i, f"singer {i}", 20 + i % 30, bytes([i % 256, 0, 255])) for i in range(1, 41)],
    )
    connection.executemany(
        "INSERT INTO concert VALUES (?, ?, ?, ?)",
        [(i, 1 + i % 40, 2000 + i % 20, i / 3) for i in range(1, 81)],
    )
    connection.commit()
    connection.close()
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_corpus() -> list[tuple[str, str, str]]:
    cases: list[tuple[str, str, str]] = []
    header = re.compile(r"^-- case: (\S+) \| (\S+)$", re.MULTILINE)
    matches = list(header.finditer(CORPUS.read_text(encoding="utf-8")))
    text = CORPUS.read_text(encoding="utf-8")
    for number, match in enumerate(matches):
        end = matches[number + 1].start() if number + 1 < len(matches) else len(text)
        cases.append((match.group(1), match.group(2), text[match.end():end].strip()))
    return cases


CASES = load_corpus()


@pytest.fixture
def concert_db(tmp_path: Path) -> Path:
    folder = tmp_path / "db"
    folder.mkdir()
    return make_concert_db(folder / "concert.sqlite")


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 50
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "expect", "sql"), CASES, ids=[case[0] for case in CASES])
def test_hostile_statement_changes_nothing(
    name: str, expect: str, sql: str, concert_db: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    sql = sql.replace("{OUT}", str(out)).replace("{CWD}", "")
    before = sha256(concert_db)
    folder_before = sorted(os.listdir(concert_db.parent))

    started = time.monotonic()
    try:
        result = run_readonly(concert_db, sql, timeout=DEADLINE, max_rows=100)
        outcome = "ok"
    except QueryError as error:
        outcome = error.type
        result = None
    elapsed = time.monotonic() - started

    assert outcome in expect.split("/"), (name, outcome, result)
    assert elapsed <= DEADLINE + SLACK, (name, elapsed)
    assert sha256(concert_db) == before
    assert sorted(os.listdir(concert_db.parent)) == folder_before
    assert os.listdir(out) == []
    assert os.listdir(cwd) == []


def test_rows_columns_and_truncation(concert_db: Path) -> None:
    result = run_readonly(concert_db, "SELECT singer_id, name FROM singer ORDER BY singer_id",
                          timeout=2, max_rows=5)
    assert result.columns == ["singer_id", "name"]
    assert result.rows == [(i, f"singer {i}") for i in range(1, 6)]
    assert result.row_count == 5
    assert result.truncated is True
    assert result.elapsed_ms >= 0
    whole = run_readonly(concert_db, "SELECT count(*) FROM singer;", timeout=2, max_rows=5)
    assert (whole.rows, whole.truncated) == ([(40,)], False)


def test_exactly_max_rows_is_not_truncated(concert_db: Path) -> None:
    result = run_readonly(concert_db, "SELECT name FROM singer", timeout=2, max_rows=40)
    assert (result.row_count, result.truncated) == (40, False)
    empty = run_readonly(concert_db, "SELECT name FROM singer", timeout=2, max_rows=0)
    assert (empty.rows, empty.truncated) == ([], True)


def test_json_shape_encodes_blobs_and_infinities(concert_db: Path) -> None:
    result = run_readonly(concert_db, "SELECT photo, 1e999, -1e999, NULL, 2.5 FROM singer "
                          "WHERE singer_id = 1", timeout=2, max_rows=10)
    shaped = result.to_json()
    assert shaped["rows"] == [["x'0100ff'", "Infinity", "-Infinity", None, 2.5]]
    assert set(shaped) == {"columns", "rows", "row_count", "truncated", "elapsed_ms"}
    assert jsonable(memoryview(b"\x01")) == "x'01'"


@pytest.mark.parametrize(("sql", "kind"), [
    ("SELEC name FROM singer", "syntax_error"),
    ("SELECT name FROM singer WHERE", "syntax_error"),
    ("SELECT nope FROM singer", "schema_error"),
    ("SELECT * FROM missing_table", "schema_error"),
    ("SELECT abs(-9223372036854775808)", "runtime_error"),
])
def test_error_types(concert_db: Path, sql: str, kind: str) -> None:
    with pytest.raises(QueryError) as caught:
        run_readonly(concert_db, sql, timeout=2, max_rows=10)
    assert caught.value.type == kind
    assert caught.value.to_json()["error"]["type"] == kind


def test_missing_database_is_never_created(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "missing.sqlite"
    with pytest.raises(QueryError) as caught:
        run_readonly(target, "SELECT 1", timeout=1, max_rows=1)
    assert caught.value.type == "missing_database"
    assert not target.exists()
    assert not target.parent.exists()


def test_read_only_pragmas_and_schema_reads(concert_db: Path) -> None:
    info = run_readonly(concert_db, "PRAGMA table_info(singer)", timeout=2, max_rows=10)
    assert [row[1] for row in info.rows] == ["singer_id", "name", "age", "photo"]
    version = run_readonly(concert_db, "PRAGMA user_version", timeout=2, max_rows=10)
    assert version.rows == [(0,)]


def test_cancel_from_another_thread(concert_db: Path) -> None:
    executor = ReadOnlyExecutor(concert_db, timeout=60, max_rows=10)
    bomb = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n"
    timer = threading.Timer(0.2, executor.cancel)
    timer.start()
    try:
        with pytest.raises(QueryError) as caught:
            executor.run(bomb)
        assert caught.value.type == "cancelled"
        # The same executor keeps working, and an idle cancel does not poison the next run.
        executor.cancel()
        assert executor.run("SELECT count(*) FROM singer").rows == [(40,)]
    finally:
        timer.cancel()
        executor.close()


def test_executor_recovers_after_timeout(concert_db: Path) -> None:
    with ReadOnlyExecutor(concert_db, timeout=0.1, max_rows=10) as executor:
        with pytest.raises(QueryError) as caught:
            executor.run("SELECT count(*) FROM singer a, singer b, singer c, singer d, singer e")
        assert caught.value.type == "timeout"
        assert executor.run("SELECT 1 + 1").rows == [(2,)]


def test_wal_database_without_wal_file_creates_nothing(tmp_path: Path) -> None:
    db = make_concert_db(tmp_path / "wal.sqlite", wal=True)
    assert sorted(os.listdir(tmp_path)) == ["wal.sqlite"]
    before = sha256(db)
    result = run_readonly(db, "SELECT count(*) FROM singer", timeout=2, max_rows=10)
    assert result.rows == [(40,)]
    assert sorted(os.listdir(tmp_path)) == ["wal.sqlite"]
    assert sha256(db) == before


def test_wal_database_with_live_writer_sees_committed_rows(tmp_path: Path) -> None:
    db = make_concert_db(tmp_path / "wal.sqlite", wal=True)
    writer = sqlite3.connect(db)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("INSERT INTO singer (name, age) VALUES ('late', 1)")
        writer.commit()
        files = sorted(os.listdir(tmp_path))
        result = run_readonly(db, "SELECT count(*) FROM singer", timeout=2, max_rows=10)
        assert result.rows == [(41,)]
        assert sorted(os.listdir(tmp_path)) == files
    finally:
        writer.close()


@pytest.mark.parametrize(("sql", "word"), [
    ("  -- note\n /* block */ (SELECT 1)", "select"),
    ("with x as (select 1) select * from x", "with"),
    ("", ""),
    ("/* unterminated", ""),
    ("REINDEX", "reindex"),
])
def test_first_keyword(sql: str, word: str) -> None:
    assert first_keyword(sql) == word


def test_paths_relative_symlinked_and_not_regular_files(concert_db: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(concert_db.parent)
    relative = run_readonly(Path(concert_db.name), "SELECT count(*) FROM singer", timeout=2,
                            max_rows=1)
    assert relative.rows == [(40,)]
    odd = tmp_path / "odd dir #1?"
    odd.mkdir()
    link = odd / "link.sqlite"
    link.symlink_to(concert_db)
    assert run_readonly(link, "SELECT count(*) FROM concert", timeout=2).rows == [(80,)]
    assert sorted(os.listdir(odd)) == ["link.sqlite"]
    fifo = tmp_path / "fifo.sqlite"
    os.mkfifo(fifo)
    for target in (fifo, tmp_path, concert_db / "below"):
        started = time.monotonic()
        with pytest.raises(QueryError) as caught:  # a FIFO must not block the open
            run_readonly(target, "SELECT 1", timeout=1)
        assert caught.value.type == "missing_database", target
        assert time.monotonic() - started < 1


def test_symlinked_wal_database_reads_the_live_wal(tmp_path: Path) -> None:
    db = make_concert_db(tmp_path / "wal.sqlite", wal=True)
    elsewhere = tmp_path / "links"
    elsewhere.mkdir()
    link = elsewhere / "link.sqlite"
    link.symlink_to(db)
    writer = sqlite3.connect(db)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("INSERT INTO singer (name, age) VALUES ('late', 1)")
        writer.commit()
        result = run_readonly(link, "SELECT count(*) FROM singer", timeout=2, max_rows=1)
        assert result.rows == [(41,)]  # the committed row lives only in the target's -wal
        assert os.listdir(elsewhere) == ["link.sqlite"]
    finally:
        writer.close()
