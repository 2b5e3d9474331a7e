"""Loading Spider-format folders built by fixtures, and the shared Spider training data."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tui.core.data.datasets import (
    DatasetError,
    available_splits,
    check_gold,
    load_dataset,
)


def make_db(root: Path, db_id: str, script: str) -> Path:
    path = root / "database" / db_id / f"{db_id}.sqlite"
    path.parent.mkdir(parents=True)
    connection = sqlite3.connect(path)
    connection.executescript(script)
    connection.commit()
    connection.close()
    return path


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


def ex(db_id: str, question: str, query: str) -> dict[str, str]:
    return {"db_id": db_id, "question": question, "query": query}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A small Spider folder: one good database, one empty, one missing, one not in tables.json."""
    root = tmp_path / "spider"
    root.mkdir()
    make_db(root, "concert", """
        CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, age INT);
        INSERT INTO singer VALUES (1, 'Joe', 52), (2, 'Ann', 31);
    """)
    make_db(root, "empty", "CREATE TABLE t (a INT); CREATE TABLE u (b TEXT);")
    make_db(root, "extra", "CREATE TABLE x (v INT); INSERT INTO x VALUES (1);")
    write_json(root / "tables.json", [{"db_id": name} for name in ("concert", "empty", "gone")])
    write_json(root / "train_spider.json", [
        ex("concert", "How many singers?", "SELECT count(*) FROM singer"),
        ex("concert", "Names of singers", "SELECT name FROM singer"),
        {"db_id": "concert", "question": "No query"},
        ex("empty", "How many rows?", "SELECT count(*) FROM t"),
        "not an object",
        ex("gone", "Anything?", "SELECT 1"),
        {"db_id": "concert", "question": 5, "query": "SELECT 1"},
    ])
    write_json(root / "train_others.json", [
        ex("extra", "Values?", "SELECT v FROM x"),
        ex("concert", "Broken", "SELECT nope FROM singer"),
    ])
    write_json(root / "dev.json", [ex("concert", "Oldest singer?",
                                      "SELECT name FROM singer ORDER BY age DESC LIMIT 1")])
    return root


def kinds(problems: list[Any]) -> list[tuple[str, str | None]]:
    return sorted(((p.kind, p.db_id) for p in problems), key=lambda k: (k[0], k[1] or ""))


def test_train_split_reads_both_files_and_reports_problems(folder: Path) -> None:
    dataset = load_dataset(folder)
    assert dataset.split == "train"
    assert [s.name for s in dataset.sources] == ["train_spider.json", "train_others.json"]
    assert [(e.source, e.index) for e in dataset.examples] == [
        ("train_spider.json", 0), ("train_spider.json", 1), ("train_spider.json", 3),
        ("train_spider.json", 5), ("train_others.json", 0), ("train_others.json", 1)]
    assert dataset.db_ids == ["concert", "empty", "extra", "gone"]
    assert kinds(dataset.problems) == [
        ("empty_database", "empty"), ("malformed_example", None),
        ("malformed_example", "concert"), ("malformed_example", "concert"),
        ("missing_database", "gone"), ("unknown_db_id", "extra")]
    malformed = {(p.source, p.index): p.message for p in dataset.problems_of("malformed_example")}
    assert "missing query" in malformed[("train_spider.json", 2)]
    assert "expected an object" in malformed[("train_spider.json", 4)]
    assert "question is int" in malformed[("train_spider.json", 6)]
    assert dataset.empty_db_ids == {"empty"}
    assert dataset.db_path("gone") is None
    assert dataset.db_path("concert") == folder / "database" / "concert" / "concert.sqlite"
    assert {e.db_id for e in dataset.executable_examples()} == {"concert", "empty", "extra"}
    assert dataset.counts_by_db()["concert"] == 3


def test_missing_database_file_is_never_created(folder: Path) -> None:
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    dataset = load_dataset(folder)
    check_gold(dataset)
    assert not (folder / "database" / "gone").exists()
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before


def test_databases_are_byte_identical_after_loading_and_checking(folder: Path) -> None:
    paths = sorted(folder.rglob("*.sqlite"))
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    check_gold(load_dataset(folder))
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths] == digests


def test_dev_split_and_split_discovery(folder: Path) -> None:
    write_json(folder / "test.json", [ex("concert", "q", "SELECT 1")])
    (folder / "extra.jsonl").write_text(json.dumps(ex("concert", "q", "SELECT 2")) + "\n")
    assert available_splits(folder) == ["train", "dev", "extra", "test"]
    dev = load_dataset(folder, "dev")
    assert [e.question for e in dev.examples] == ["Oldest singer?"]
    assert dev.splits() == ["train", "dev", "extra", "test"]
    assert [e.query for e in load_dataset(folder, "extra").examples] == ["SELECT 2"]


def test_train_json_alternative_and_jsonl_lines(tmp_path: Path) -> None:
    make_db(tmp_path, "concert", "CREATE TABLE s (a INT); INSERT INTO s VALUES (1);")
    lines = [json.dumps(ex("concert", "q1", "SELECT a FROM s")), "", "{oops",
             json.dumps(ex("concert", "q2", "SELECT 1"))]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset = load_dataset(tmp_path)
    assert [(e.question, e.index) for e in dataset.examples] == [("q1", 0), ("q2", 3)]
    assert kinds(dataset.problems) == [("malformed_example", None), ("missing_tables", None)]
    assert "line 3" in dataset.problems_of("malformed_example")[0].message


def test_explicit_files_and_a_single_file_root(folder: Path) -> None:
    mine = folder / "mine.json"
    write_json(mine, [ex("concert", "Explicit?", "SELECT 3")])
    assert [e.query for e in load_dataset(folder, files=[mine]).examples] == ["SELECT 3"]
    assert [e.query for e in load_dataset(folder, files=["mine.json"]).examples] == ["SELECT 3"]
    single = load_dataset(mine)
    assert single.root == folder and single.split == "files"


def test_unloadable_folders_raise(tmp_path: Path) -> None:
    with pytest.raises(DatasetError):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="no example files"):
        load_dataset(tmp_path, "dev")


def test_broken_files_are_problems_not_crashes(folder: Path) -> None:
    (folder / "tables.json").write_text("{", encoding="utf-8")
    (folder / "train_others.json").write_text('{"not": "a list"}', encoding="utf-8")
    dataset = load_dataset(folder)
    unreadable = dataset.problems_of("unreadable_file")
    assert [p.source for p in unreadable] == ["tables.json", "train_others.json"]
    assert len(dataset.examples) == 4


def test_a_file_that_is_not_sqlite_is_reported(folder: Path) -> None:
    (folder / "database" / "extra" / "extra.sqlite").write_bytes(b"not a database" * 100)
    dataset = load_dataset(folder)
    assert ("unreadable_database", "extra") in kinds(dataset.problems)
    assert ("unreadable_database", "extra") in kinds(check_gold(dataset))


def test_check_gold_reports_failures_with_source_and_index(folder: Path) -> None:
    dataset = load_dataset(folder)
    seen: list[tuple[int, int]] = []
    failures = check_gold(dataset, progress=lambda done, total: seen.append((done, total)))
    assert [(f.kind, f.db_id, f.source, f.index) for f in failures] == [
        ("gold_failed", "concert", "train_others.json", 1)]
    assert "no such column: nope" in failures[0].message
    assert seen[-1] == (5, 5)  # the example on the missing database is not run
    assert check_gold(dataset, db_ids=["extra"]) == []


def test_check_gold_time_limit_and_read_only(folder: Path) -> None:
    slow = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
            "SELECT count(*) FROM n")
    write_json(folder / "dev.json", [ex("concert", "Forever", slow),
                                     ex("concert", "Write", "DELETE FROM singer"),
                                     ex("concert", "Fine", "SELECT 1")])
    failures = check_gold(load_dataset(folder, "dev"), timeout=0.2)
    assert [(f.kind, f.index) for f in failures] == [("gold_timeout", 0), ("gold_failed", 1)]
    assert "readonly" in failures[1].message.replace("-", "").replace(" ", "").lower()


def test_check_gold_can_be_stopped(folder: Path) -> None:
    assert check_gold(load_dataset(folder), should_stop=lambda: True) == []


# ---------------------------------------------------------------- the real Spider training data


@pytest.mark.spider
def test_spider_train_loads_with_the_known_problems(spider: Path) -> None:
    dataset = load_dataset(spider)
    by_source: dict[str, int] = {}
    for example in dataset.examples:
        by_source[example.source] = by_source.get(example.source, 0) + 1
    assert by_source == {"train_spider.json": 7000, "train_others.json": 1659}
    assert len(dataset.db_ids) == 146
    missing = dataset.problems_of("missing_database")
    assert sorted(p.db_id or "" for p in missing) == ["baseball_1", "soccer_1"]
    assert {p.db_id for p in dataset.problems_of("empty_database")} == {
        "academic", "geo", "imdb", "restaurants", "scholar", "yelp", "music_2"}
    assert not dataset.problems_of("malformed_example")
    assert not dataset.problems_of("unknown_db_id")
    assert len(dataset.executable_examples()) == 8659 - 82 - 14


@pytest.mark.spider
def test_spider_gold_sql_fails_exactly_where_the_readme_says(spider: Path) -> None:
    dataset = load_dataset(spider)
    failures = check_gold(dataset, timeout=10)
    assert [(f.kind, f.db_id, f.source, f.index) for f in failures] == [
        ("gold_failed", "assets_maintenance", "train_spider.json", 3153),
        ("gold_failed", "document_management", "train_spider.json", 4513),
        ("gold_failed", "document_management", "train_spider.json", 4514)]
    assert "Ref_Company_Types" in failures[0].message
    assert "INTERSECT" in failures[1].message
