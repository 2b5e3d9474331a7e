"""The prompt template, its recorded form, and the one rendering function."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tui.core.data.prompts import (
    DEFAULT_TEMPLATE,
    RICH_TEMPLATE,
    TEMPLATES,
    PromptTemplate,
    PromptTemplateError,
    messages_for,
    normalize_sql,
    render_messages,
)
from tui.core.data.schema import SchemaCache

SCHEMA = "CREATE TABLE singer (\n  singer_id INT PRIMARY KEY,\n  name TEXT\n);"


def test_training_messages_are_system_user_assistant() -> None:
    messages = render_messages(DEFAULT_TEMPLATE, SCHEMA, "  How many singers?\n",
                               "SELECT count(*)  FROM singer ;")
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[0]["content"] == f"{DEFAULT_TEMPLATE.instructions}\n\n{SCHEMA}"
    assert messages[1]["content"] == "How many singers?"
    assert messages[2]["content"] == "SELECT count(*) FROM singer"
    assert all(set(m) == {"role", "content"} for m in messages)


def test_inference_messages_are_the_same_prompt_without_the_answer() -> None:
    trained = render_messages(DEFAULT_TEMPLATE, SCHEMA, "How many singers?", "SELECT 1")
    asked = render_messages(DEFAULT_TEMPLATE, SCHEMA, "How many singers?")
    assert asked == trained[:2]


def test_dialect_line_and_empty_schema() -> None:
    template = PromptTemplate(instructions="Write SQL.", dialect="SQLite 3")
    assert render_messages(template, SCHEMA, "q")[0]["content"] == (
        f"Write SQL.\nDialect: SQLite 3\n\n{SCHEMA}")
    assert render_messages(template, "  ", "q")[0]["content"] == "Write SQL.\nDialect: SQLite 3"


def test_sql_normalization_keeps_literals_intact() -> None:
    assert normalize_sql("SELECT  name ,  age\n FROM  head  WHERE  x  =  'a  b' ;;") == (
        "SELECT name , age FROM head WHERE x = 'a  b'")
    assert normalize_sql('SELECT "Home  Town" FROM [my  table]') == (
        'SELECT "Home  Town" FROM [my  table]')
    assert normalize_sql("SELECT 'it''s  here'") == "SELECT 'it''s  here'"
    assert normalize_sql("SELECT a -- the  answer\n  FROM t ;") == (
        "SELECT a -- the  answer\nFROM t")
    assert normalize_sql("SELECT 1 - -2") == "SELECT 1 - -2"


def test_template_round_trips_through_json() -> None:
    for template in [*TEMPLATES.values(), PromptTemplate("Only SQL.", 0, 2, "SQLite")]:
        recorded = json.loads(json.dumps(template.to_dict()))
        assert recorded["format"] == 1
        assert PromptTemplate.from_dict(recorded) == template
        assert PromptTemplate.from_dict(recorded).fingerprint() == template.fingerprint()
    assert DEFAULT_TEMPLATE.fingerprint() != RICH_TEMPLATE.fingerprint()


def test_from_dict_tolerates_newer_keys_and_fills_defaults() -> None:
    rebuilt = PromptTemplate.from_dict({"format": 2, "sample_values": 5, "future": True})
    assert rebuilt == PromptTemplate(sample_values=5)


@pytest.mark.parametrize("data", [
    {"sample_values": -1}, {"sample_values": "3"}, {"sample_rows": True},
    {"instructions": None}, {"sample_rows": 1000},
])
def test_bad_recorded_templates_are_rejected(data: dict[str, object]) -> None:
    with pytest.raises(PromptTemplateError):
        PromptTemplate.from_dict(data)


def test_from_dict_needs_an_object() -> None:
    with pytest.raises(PromptTemplateError):
        PromptTemplate.from_dict([])  # type: ignore[arg-type]


def test_with_samples_copies() -> None:
    changed = DEFAULT_TEMPLATE.with_samples(sample_rows=4)
    assert (changed.sample_values, changed.sample_rows) == (DEFAULT_TEMPLATE.sample_values, 4)
    assert DEFAULT_TEMPLATE.sample_rows == 0


def test_messages_for_a_database_file_use_the_cached_schema(tmp_path: Path) -> None:
    path = tmp_path / "concert.sqlite"
    connection = sqlite3.connect(path)
    connection.executescript("CREATE TABLE singer (singer_id INT PRIMARY KEY, name TEXT);"
                             "INSERT INTO singer VALUES (1, 'Joe'), (2, 'Ann');")
    connection.commit()
    connection.close()
    cache = SchemaCache()
    template = PromptTemplate(sample_values=1, sample_rows=1)
    messages = messages_for(template, cache, path, "Who sings?", "SELECT name FROM singer")
    system = messages[0]["content"]
    assert "singer_id INT PRIMARY KEY, -- e.g. 1" in system
    assert "1 row from singer:" in system
    assert messages == render_messages(
        template, cache.schema_text(path, 1, sample_rows=1), "Who sings?",
        "SELECT name FROM singer")
    assert len(cache) == 1
