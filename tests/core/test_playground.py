"""The playground's core services on real SQLite files: models, workspace, runs."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.demo_entries import demo_entries
from tui.core.inference.playground import (
    Asked,
    ModelChoice,
    PlaygroundError,
    QuestionHistory,
    automatic_choice,
    classify_model,
    endpoint_key,
    open_workspace,
    order_models,
    pretty_sql,
    run_scored,
)
from tui.core.sql.sqlexec import ReadOnlyExecutor


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A tiny database with 1,500 rows in one table."""
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        db.executemany("INSERT INTO item VALUES (?, ?, ?)",
                       [(i, f"item {i}", i * 0.5) for i in range(1, 1501)])
    return path


def test_models_are_ordered_tuned_checkpoints_base_and_non_chat_models_dropped() -> None:
    listed = ["gpt-4o-mini", "text-embedding-3-small", "ft:gpt-4o-mini:org::abc",
              "whisper-1", "ft:gpt-4o-mini:org::abc", "dall-e-3"]
    ordered = order_models(listed, ["ft:gpt-4o-mini:org::abc:ckpt-step-10"])
    assert [(c.name, c.kind) for c in ordered] == [
        ("ft:gpt-4o-mini:org::abc", "fine-tuned"),
        ("ft:gpt-4o-mini:org::abc:ckpt-step-10", "checkpoint"),
        ("gpt-4o-mini", "base")]
    assert classify_model("llama3.1") == "base"
    assert ModelChoice("m", "endpoint", base_url="http://h/v1").label == "m @ http://h/v1"


def test_endpoint_key_comes_from_the_named_variable_and_is_never_in_the_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    choice = ModelChoice("m", "endpoint", base_url="http://127.0.0.1:1/v1", key_env="PG_KEY")
    monkeypatch.delenv("PG_KEY", raising=False)
    with pytest.raises(PlaygroundError, match=r"\$PG_KEY is not set"):
        endpoint_key(choice)
    monkeypatch.setenv("PG_KEY", "sk-secret-value-1234")
    assert endpoint_key(choice) == "sk-secret-value-1234"
    assert endpoint_key(ModelChoice("m", "endpoint", base_url="http://h/v1")) == "no-key"


def test_demo_workspace_has_every_database_and_the_dev_questions() -> None:
    workspace = open_workspace(None)
    assert [db.db_id for db in workspace.databases] == [
        "airline", "bookshop", "clinic", "university"]
    dev = demo_entries("dev")
    assert workspace.split == "dev" and len(workspace.questions) == len(dev)
    assert workspace.questions[0].question == dev[0]["question"]
    assert workspace.database("bookshop") is not None and workspace.database("nope") is None


def test_workspace_without_dev_uses_another_split_and_a_jsonl_file_is_refused(
        tmp_path: Path, shop: Path) -> None:
    root = tmp_path / "data"
    (root / "database" / "shop").mkdir(parents=True)
    shutil.copy(shop, root / "database" / "shop" / "shop.sqlite")
    (root / "database" / "empty").mkdir()  # a folder without its .sqlite is not a database
    (root / "train.json").write_text(json.dumps([
        {"db_id": "shop", "question": "How many items?", "query": "SELECT count(*) FROM item"},
        {"db_id": "gone", "question": "Lost?", "query": "SELECT 1"}]))
    workspace = open_workspace(root)
    assert [db.db_id for db in workspace.databases] == ["shop"]
    assert workspace.split == "train"
    assert [e.question for e in workspace.questions] == ["How many items?"]
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text("{}\n")
    with pytest.raises(PlaygroundError, match="is a file"):
        open_workspace(jsonl)
    with pytest.raises(PlaygroundError, match=r"dataset folder not found: .*nothing"):
        open_workspace(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PlaygroundError, match="no SQLite databases"):
        open_workspace(tmp_path / "empty")


def test_pretty_sql_lays_out_and_leaves_what_it_cannot_parse() -> None:
    assert pretty_sql("select name from item where price>1") == (
        "SELECT\n  name\nFROM item\nWHERE\n  price > 1")
    assert pretty_sql("SELEC nonsense ((") == "SELEC nonsense (("
    assert pretty_sql("") == ""


def test_run_scored_gives_rows_and_an_ex_verdict(shop: Path) -> None:
    before = shop.read_bytes()
    with ReadOnlyExecutor(shop, max_rows=100) as executor:
        typed = run_scored(executor, "SELECT count(*) FROM item", None)
        assert typed.result is not None and typed.result.rows == [(1500,)]
        assert typed.match is None and typed.gold is None
        gold = "SELECT name, price FROM item WHERE price > 700"
        swapped = run_scored(executor, "SELECT price, name FROM item WHERE price > 700", gold)
        assert swapped.match is True  # columns may be permuted
        wrong = run_scored(executor, "SELECT name, price FROM item WHERE price >= 700", gold)
        assert wrong.match is False
        # A result past the row cap is shown cut, but compared whole.
        everything = run_scored(executor, "SELECT id FROM item", "SELECT id FROM item")
        assert everything.result is not None and everything.result.truncated
        assert everything.result.row_count == 100 and everything.match is True
        refused = run_scored(executor, "DELETE FROM item", gold)
        assert refused.error is not None and refused.error.type == "not_allowed"
        assert refused.match is False and refused.result is None
        broken_gold = run_scored(executor, "SELECT 1", "SELECT nope FROM item")
        assert broken_gold.match is None and "no such column" in (broken_gold.gold_error or "")
    assert shop.read_bytes() == before


def test_question_history_is_newest_first_skips_bad_lines_and_stays_bounded(
        tmp_path: Path) -> None:
    history = QuestionHistory(tmp_path / "h.jsonl", limit=3)
    assert history.load() == []
    for n in range(5):
        history.add(Asked(question=f"q{n}", db_id="shop", model="m", sql=f"SELECT {n}"))
    with history.path.open("a") as handle:
        handle.write("not json\n")
    loaded = history.load()
    assert [entry.question for entry in loaded] == ["q4", "q3"]  # the bad line took a slot
    assert all(entry.at > 0 for entry in loaded)
    for n in range(5, 9):
        history.add(Asked(question=f"q{n}", db_id="shop", model="m", sql="SELECT 1"))
    assert len(history.path.read_text().splitlines()) <= 2 * 3
    assert [entry.question for entry in history.load()] == ["q8", "q7", "q6"]


def test_automatic_choice_never_replaces_the_users_pick() -> None:
    base = ModelChoice("sqltune-local-base", "base")
    old = ModelChoice("ft:sqltune-local-base:me::old", "fine-tuned")
    new = ModelChoice("ft:sqltune-local-base:me::new", "fine-tuned")
    assert automatic_choice([], None, None, None) is None
    assert automatic_choice([old, base], None, None, None) == old  # first listed
    # a job produced `new`: it replaces the model the pane chose, not one the user picked
    assert automatic_choice([new, old, base], old, old, new.name) == new
    assert automatic_choice([new, old, base], old, None, new.name) == old
    assert automatic_choice([new, old, base], base, old, new.name) == base
    # not listed yet: keep what is there
    assert automatic_choice([old, base], old, old, new.name) == old
