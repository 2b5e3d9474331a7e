"""prepare(): a Spider-format folder to counted examples, skips with reasons, a fitted budget."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tui.core.budget.tokens import get_encoding
from tui.core.data.jsonl import validate_jsonl
from tui.core.data.prepare import PrepareError, PrepareOptions, prepare
from tui.core.data.prompts import DEFAULT_TEMPLATE, TEMPLATES, render_messages
from tui.core.data.schema import SchemaCache

SHOP_QUESTIONS = [
    ("How many customers are there?", "SELECT count(*) FROM customers"),
    ("List the names of all customers.", "SELECT name FROM customers"),
    ("Which cities do customers live in?", "SELECT DISTINCT city FROM customers"),
    ("What is the total amount of all orders?", "SELECT sum(amount) FROM orders"),
    ("Show the largest order amount.", "SELECT max(amount) FROM orders"),
    ("How many orders did each customer place?",
     "SELECT customer_id, count(*) FROM orders GROUP BY customer_id"),
    ("Names of customers with an order over 50.",
     "SELECT DISTINCT T1.name FROM customers AS T1 JOIN orders AS T2 "
     "ON T1.id = T2.customer_id WHERE T2.amount > 50"),
    ("Customers without orders?",
     "SELECT name FROM customers WHERE id NOT IN (SELECT customer_id FROM orders)"),
    ("Cities with more than one customer.",
     "SELECT city FROM customers GROUP BY city HAVING count(*) > 1"),
    ("The three biggest orders.", "SELECT id, amount FROM orders ORDER BY amount DESC LIMIT 3"),
    ("Average order amount?", "SELECT avg(amount) FROM orders"),
    ("Broken gold query", "SELECT * FROM no_such_table"),
]
SCHOOL_QUESTIONS = [
    ("How many students?", "SELECT count(*) FROM students"),
    ("Names of students in grade 3.", "SELECT name FROM students WHERE grade = 3"),
    ("Highest grade?", "SELECT max(grade) FROM students"),
    ("Students per grade.", "SELECT grade, count(*) FROM students GROUP BY grade"),
    ("Students sorted by name.", "SELECT name FROM students ORDER BY name"),
    ("Grades above 2 or named Ann.",
     "SELECT name FROM students WHERE grade > 2 UNION SELECT name FROM students "
     "WHERE name = 'Ann'"),
]


def _database(path: Path, script: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    connection.executescript(script)
    connection.commit()
    connection.close()


def build_spider_folder(root: Path) -> Path:
    """A tiny Spider-format folder: two good databases, an empty one, a missing one, one bad
    gold query."""
    _database(root / "database" / "shop" / "shop.sqlite", """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL,
                             customer_id INTEGER REFERENCES customers(id));
        INSERT INTO customers VALUES (1, 'Ada', 'Paris'), (2, 'Bob', 'Oslo'),
                                     (3, 'Cy', 'Paris'), (4, 'Di', 'Rome');
        INSERT INTO orders VALUES (1, 20.5, 1), (2, 75.0, 1), (3, 60.0, 2), (4, 5.0, 3);
    """)
    _database(root / "database" / "school" / "school.sqlite", """
        CREATE TABLE students (id INTEGER PRIMARY KEY, name TEXT, grade INTEGER);
        INSERT INTO students VALUES (1, 'Ann', 1), (2, 'Ben', 3), (3, 'Cat', 3), (4, 'Dan', 2);
    """)
    _database(root / "database" / "vacant" / "vacant.sqlite",
              "CREATE TABLE things (id INTEGER PRIMARY KEY, label TEXT);")
    examples: list[dict[str, Any]] = []
    examples += [{"db_id": "shop", "question": q, "query": s} for q, s in SHOP_QUESTIONS]
    examples += [{"db_id": "school", "question": q, "query": s} for q, s in SCHOOL_QUESTIONS]
    examples += [{"db_id": "vacant", "question": "How many things?",
                  "query": "SELECT count(*) FROM things"}] * 2
    examples += [{"db_id": "ghost", "question": f"Question {i}?", "query": "SELECT 1"}
                 for i in range(3)]
    (root / "train.json").write_text(json.dumps(examples, indent=1))
    tables = [{"db_id": db, "table_names_original": []}
              for db in ("shop", "school", "vacant", "ghost")]
    (root / "tables.json").write_text(json.dumps(tables))
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return build_spider_folder(tmp_path / "spider-mini")


def _cookbook(messages: list[dict[str, str]]) -> int:
    enc = get_encoding("o200k_base")
    return sum(3 + sum(len(enc.encode(v)) for v in m.values()) for m in messages) + 3


def test_counts_and_skips(folder: Path) -> None:
    result = prepare(folder)
    assert result.loaded == 23
    reasons = {(s.reason, s.db_id): s.examples for s in result.skipped}
    assert reasons == {("missing_database", "ghost"): 3, ("empty_database", "vacant"): 2,
                       ("gold_failed", "shop"): 1}
    failed = next(s for s in result.skipped if s.reason == "gold_failed")
    assert (failed.source, failed.index) == ("train.json", 11)
    assert "no_such_table" in failed.message
    assert not (folder / "database" / "ghost").exists()  # a missing database is never created
    assert len(result.examples) == result.budget.examples == 17
    assert result.budget.kept == 17 and result.budget.epochs == 5  # auto: 100 // 17
    cache = SchemaCache()
    for example, messages, count in zip(result.examples, result.messages, result.tokens,
                                        strict=True):
        schema = cache.schema_text(folder / "database" / example.db_id / f"{example.db_id}.sqlite",
                                   DEFAULT_TEMPLATE.sample_values)
        expected = render_messages(DEFAULT_TEMPLATE, schema, example.question, example.query)
        assert messages == expected
        assert count == _cookbook(expected)
    assert result.budget.tokens_per_epoch == sum(result.tokens)
    assert result.budget.by_database == {"shop": (11, 11), "school": (6, 6)}


def test_json_has_the_contract_fields(folder: Path) -> None:
    data = prepare(folder).to_json()
    for key, kind in (("examples", int), ("kept", int), ("epochs", int),
                      ("tokens_per_epoch", int), ("trained_tokens", int),
                      ("estimated_cost_usd", float), ("encoding", str),
                      ("max_example_tokens", int), ("over_context", int), ("skipped", list),
                      ("model", str), ("token_limit", int), ("strategy", str),
                      ("template", str), ("by_database", dict)):
        assert isinstance(data[key], kind), key
    assert data["encoding_note"] is None and data["out"] is None
    assert json.loads(json.dumps(data)) == data


def test_a_small_limit_keeps_every_database(folder: Path) -> None:
    full = prepare(folder)
    options = PrepareOptions(token_limit=full.budget.trained_tokens // 3, epochs=5)
    result = prepare(folder, options)
    assert 2 <= result.budget.kept < 17
    assert all(kept >= 1 for _, kept in result.budget.by_database.values())
    assert result.budget.trained_tokens <= options.token_limit


def test_write_produces_valid_chat_jsonl(folder: Path, tmp_path: Path) -> None:
    result = prepare(folder)
    written = result.write(tmp_path / "train.jsonl")
    assert written.examples == result.budget.kept
    report = validate_jsonl(tmp_path / "train.jsonl", result.options.model)
    assert report.ok, report.to_dict()
    lines = (tmp_path / "train.jsonl").read_text().splitlines()
    assert [json.loads(line)["messages"] for line in lines] == result.messages


def test_validation_split_is_held_out_of_the_budget(folder: Path, tmp_path: Path) -> None:
    result = prepare(folder, PrepareOptions(validation_db_ids=frozenset({"school"})))
    assert len(result.validation) == 6 and result.budget.examples == 11
    assert set(result.budget.by_database) == {"shop"}
    written = result.write(tmp_path / "t.jsonl", tmp_path / "v.jsonl")
    assert (written.examples, written.validation_examples) == (11, 6)
    fraction = prepare(folder, PrepareOptions(validation_fraction=0.25, seed=4))
    assert len(fraction.validation) == 4 and fraction.budget.examples == 13
    assert fraction.validation_tokens > 0


def test_gold_run_mode_and_off(folder: Path) -> None:
    run = prepare(folder, PrepareOptions(gold_check="run"))
    assert [(s.reason, s.index) for s in run.skipped if s.reason == "gold_failed"] == [
        ("gold_failed", 11)]
    off = prepare(folder, PrepareOptions(gold_check="off"))
    assert off.budget.examples == 18


def test_keeping_empty_databases(folder: Path) -> None:
    result = prepare(folder, PrepareOptions(skip_empty_databases=False))
    assert result.budget.by_database["vacant"] == (2, 2)
    assert any("vacant" in warning for warning in result.warnings)


def test_templates_change_the_counts(folder: Path) -> None:
    compact = prepare(folder, PrepareOptions(template=TEMPLATES["compact"]))
    rich = prepare(folder, PrepareOptions(template=TEMPLATES["rich"]))
    assert compact.budget.tokens_per_epoch < rich.budget.tokens_per_epoch


def test_unusable_folders(tmp_path: Path) -> None:
    with pytest.raises(PrepareError, match="not found"):
        prepare(tmp_path / "nowhere")
    (tmp_path / "no-tables").mkdir()
    (tmp_path / "no-tables" / "train.json").write_text("[]")
    with pytest.raises(PrepareError, match=r"tables\.json"):
        prepare(tmp_path / "no-tables")
    with pytest.raises(PrepareError):
        PrepareOptions(validation_fraction=1.0)


@pytest.mark.spider
def test_spider_figures(spider: Path) -> None:
    result = prepare(spider)
    missing = {s.db_id: s.examples for s in result.skipped if s.reason == "missing_database"}
    assert missing == {"baseball_1": 82, "soccer_1": 14}
    assert sum(1 for s in result.skipped if s.reason == "gold_failed") == 3
    assert result.loaded == 8659
    assert result.budget.kept == result.budget.examples > 6500
    assert result.budget.epochs == 3 and result.budget.over_context == 0
    small = prepare(spider, PrepareOptions(token_limit=3_000_000, epochs=2))
    assert small.budget.kept < small.budget.examples
    assert all(kept >= 1 for _, kept in small.budget.by_database.values())


@pytest.mark.spider
def test_spider_rich_template_averages_over_1500_tokens(spider: Path) -> None:
    result = prepare(spider, PrepareOptions(template=TEMPLATES["rich"], template_name="rich"))
    assert result.budget.mean_example_tokens >= 1500
