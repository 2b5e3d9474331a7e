"""The bundled demo dataset: gold SQL runs, tables.json matches the files, builds repeat."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from tests.demo_entries import demo_entries
from tui.core.data.datasets import load_dataset
from tui.core.evaluation.components import hardness
from tui.core.paths import demo_dir
from tui.core.sql.sqlite_ro import connect_readonly

DEMO = demo_dir()
SPLITS = ("train", "dev")
MIN_COUNTS = {"train": 120, "dev": 40}
LEVELS = ("easy", "medium", "hard", "extra")


def _examples(split: str) -> list[dict[str, str]]:
    return demo_entries(split)


def _tables() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((DEMO / "tables.json").read_text(encoding="utf-8"))
    return data


def _db_path(root: Path, db_id: str) -> Path:
    return root / "database" / db_id / f"{db_id}.sqlite"


def _built_files(root: Path) -> list[Path]:
    """The build's outputs, relative to root."""
    names = [Path("tables.json"), Path("train.json"), Path("dev.jsonl")]
    names += sorted(p.relative_to(root) for p in (root / "database").glob("*/*.sqlite"))
    return names


@pytest.mark.parametrize("split", SPLITS)
def test_split_has_enough_well_formed_examples(split: str) -> None:
    examples = _examples(split)
    assert len(examples) >= MIN_COUNTS[split]
    for example in examples:
        assert set(example) == {"db_id", "question", "query"}, example
        assert example["question"].strip() and example["query"].strip()
    questions = [example["question"] for example in examples]
    assert len(set(questions)) == len(questions), "a question appears twice in the same split"


def test_every_database_appears_in_both_splits_with_several_examples() -> None:
    db_ids = {entry["db_id"] for entry in _tables()}
    assert len(db_ids) >= 4
    for split in SPLITS:
        counts = Counter(example["db_id"] for example in _examples(split))
        assert set(counts) == db_ids, f"{split}: databases {sorted(counts)} vs {sorted(db_ids)}"
        assert min(counts.values()) >= (25 if split == "train" else 8), counts


def test_dev_questions_are_not_copies_of_train_questions() -> None:
    def norm(text: str) -> str:
        return " ".join(text.lower().rstrip("?.").split())

    train = {norm(example["question"]) for example in _examples("train")}
    copied = [example["question"] for example in _examples("dev")
              if norm(example["question"]) in train]
    assert copied == []
    train_pairs = {(example["db_id"], example["query"]) for example in _examples("train")}
    same_sql = [example["query"] for example in _examples("dev")
                if (example["db_id"], example["query"]) in train_pairs]
    assert same_sql == []


@pytest.mark.parametrize("split", SPLITS)
def test_every_gold_query_executes_and_most_return_rows(split: str) -> None:
    examples = _examples(split)
    connections: dict[str, sqlite3.Connection] = {}
    failures: list[str] = []
    empty: list[str] = []
    try:
        for example in examples:
            db_id = example["db_id"]
            if db_id not in connections:
                connections[db_id] = connect_readonly(_db_path(DEMO, db_id))
            try:
                rows = connections[db_id].execute(example["query"]).fetchall()
            except sqlite3.Error as error:
                failures.append(f"{db_id}: {example['query']} -> {error}")
                continue
            if not rows:
                empty.append(f"{db_id}: {example['question']}")
    finally:
        for connection in connections.values():
            connection.close()
    assert failures == []
    assert len(empty) <= 0.1 * len(examples), f"{len(empty)} empty answers: {empty}"


@pytest.mark.parametrize("split", SPLITS)
def test_order_by_limit_answers_have_no_tie_at_the_cut(split: str) -> None:
    """A gold "top k" whose k-th and (k+1)-th rows tie would make the right answer arbitrary."""
    ties: list[str] = []
    for example in _examples(split):
        tree = sqlglot.parse_one(example["query"], read="sqlite")
        if not isinstance(tree, exp.Select) or tree.args.get("limit") is None:
            continue
        keep = int(tree.args["limit"].expression.name)
        probe = tree.copy()
        probe.set("expressions", [tree.args["order"].expressions[0].this.copy()])
        probe.set("distinct", None)
        connection = connect_readonly(_db_path(DEMO, example["db_id"]))
        try:
            keys = [row[0] for row in connection.execute(
                probe.limit(keep + 1).sql(dialect="sqlite")).fetchall()]
        finally:
            connection.close()
        if len(keys) > keep and keys[keep - 1] == keys[keep]:
            ties.append(f"{example['db_id']}: {example['question']} {keys}")
    assert ties == []


def test_demo_loads_through_the_dataset_loader_without_problems() -> None:
    for split in SPLITS:
        dataset = load_dataset(DEMO, split)
        assert len(dataset.examples) == len(_examples(split))
        assert [problem.message for problem in dataset.problems] == []
        assert all(dataset.db_path(db_id) is not None for db_id in dataset.db_ids)


def test_tables_json_matches_the_sqlite_files() -> None:
    entries = _tables()
    on_disk = sorted(p.name for p in (DEMO / "database").iterdir() if p.is_dir())
    assert sorted(entry["db_id"] for entry in entries) == on_disk
    for entry in entries:
        connection = connect_readonly(_db_path(DEMO, entry["db_id"]))
        try:
            tables = [name for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
            columns: list[list[Any]] = [[-1, "*"]]
            primary: list[int] = []
            position: dict[tuple[str, str], int] = {}
            for index, table in enumerate(tables):
                for row in connection.execute(f"PRAGMA table_info('{table}')"):
                    position[(table, row[1])] = len(columns)
                    if row[5]:
                        primary.append(len(columns))
                    columns.append([index, row[1]])
            foreign = sorted(
                [position[(table, fk[3])], position[(fk[2], fk[4])]]
                for table in tables
                for fk in connection.execute(f"PRAGMA foreign_key_list('{table}')")
            )
        finally:
            connection.close()
        name = entry["db_id"]
        assert entry["table_names_original"] == tables, name
        assert entry["table_names"] == [t.replace("_", " ").lower() for t in tables], name
        assert entry["column_names_original"] == columns, name
        assert [c[0] for c in entry["column_names"]] == [c[0] for c in columns], name
        assert entry["column_names"][0] == [-1, "*"], name
        assert len(entry["column_types"]) == len(columns), name
        assert set(entry["column_types"]) <= {"text", "number", "time", "boolean", "others"}
        assert sorted(entry["primary_keys"]) == sorted(primary), name
        assert sorted(entry["foreign_keys"]) == foreign, name
        assert 3 <= len(tables) <= 6 and foreign, name
        tables_with_key = {columns[index][0] for index in primary}
        assert tables_with_key == set(range(len(tables))), f"{name}: a table has no primary key"


def test_databases_hold_realistic_amounts_of_rows() -> None:
    for entry in _tables():
        connection = connect_readonly(_db_path(DEMO, entry["db_id"]))
        try:
            for table in entry["table_names_original"]:
                (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
                assert 5 <= count <= 1000, f"{entry['db_id']}.{table}: {count} rows"
            assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        finally:
            connection.close()


def test_demo_folder_stays_small() -> None:
    files = [p for p in DEMO.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for sqlite_file in DEMO.glob("database/*/*.sqlite"):
        assert sqlite_file.stat().st_size < 200_000, sqlite_file.name
    assert sum(p.stat().st_size for p in files) < 1_500_000


def test_build_is_deterministic_and_matches_the_committed_output(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for name in ("first", "second"):
        subprocess.run([sys.executable, str(DEMO / "build.py"), str(tmp_path / name)],
                       check=True, env=env, capture_output=True, timeout=120)
    committed = _built_files(DEMO)
    assert _built_files(tmp_path / "first") == committed
    for relative in committed:
        fresh = (tmp_path / "first" / relative).read_bytes()
        assert fresh == (tmp_path / "second" / relative).read_bytes(), f"{relative} differs"
        assert fresh == (DEMO / relative).read_bytes(), (
            f"{relative} differs from a fresh build: run assets/demo/build.py and commit")


def test_each_split_covers_all_four_hardness_levels() -> None:
    for split in SPLITS:
        examples = _examples(split)
        levels = Counter(hardness(example["query"]) for example in examples)
        assert set(LEVELS) <= set(levels), f"{split}: {dict(levels)}"
        for level in LEVELS:
            assert levels[level] >= 0.1 * len(examples), f"{split}: {dict(levels)}"
