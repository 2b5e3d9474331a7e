"""Schema parsing and re-grounding of retrieved SQL onto a renamed schema, run on real SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tui.core.data.prompts import DEFAULT_TEMPLATE, render_messages
from tui.core.data.schema import SchemaCache
from tui.server.engines import ChatModel, get_engine
from tui.server.engines.grounding import ground
from tui.server.engines.schema_parse import parse_schema

from .test_engines import PAIRS, SCHEMA, chats

JOIN_PAIR = ("Names of singers who had a concert.",
             "SELECT DISTINCT T1.name FROM singer AS T1 JOIN concert AS T2 "
             "ON T1.singer_id = T2.singer_id")


@pytest.fixture
def artist_db(tmp_path: Path) -> Path:
    """The singer/concert database under other names: artist(full_name, nation), gig."""
    path = tmp_path / "music.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE artist (artist_id INTEGER PRIMARY KEY, full_name TEXT, nation TEXT,
                             age INTEGER);
        CREATE TABLE gig (gig_id INTEGER PRIMARY KEY, gig_name TEXT, year INTEGER,
                          artist_id INTEGER REFERENCES artist(artist_id));
        INSERT INTO artist VALUES (1, 'Ana Lopez', 'Spain', 31), (2, 'Bo Berg', 'Sweden', 45),
                                  (3, 'Cy Twombly', 'Spain', 28);
        INSERT INTO gig VALUES (1, 'Summer Nights', 2015, 1), (2, 'Winter Tour', 2016, 1),
                               (3, 'Fjord Fest', 2015, 2), (4, 'Late Show', 2014, 2);
    """)
    con.commit()
    con.close()
    return path


@pytest.fixture
def tuned() -> ChatModel:
    engine = get_engine()
    examples = chats([*PAIRS, JOIN_PAIR])
    run = engine.start(examples, None, engine.resolve_hyperparameters(len(examples), {}), seed=0)
    while run.steps_done < run.total_steps:
        run.step()
    return engine.load(run.state())


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return sorted(con.execute(sql).fetchall(), key=repr)
    finally:
        con.close()


def test_parse_schema_reads_prompt_text_with_samples_and_keys(artist_db: Path) -> None:
    text = render_messages(DEFAULT_TEMPLATE, SchemaCache().schema_text(artist_db, 3), "q")[0]
    schema = parse_schema(text["content"])
    assert [t.name for t in schema.tables] == ["artist", "gig"]
    artist = schema.tables[0]
    assert [c.name for c in artist.columns] == ["artist_id", "full_name", "nation", "age"]
    assert artist.column("NATION") is not None
    assert artist.column("nation").samples == ["Spain", "Sweden"]  # type: ignore[union-attr]
    assert artist.primary_key == ["artist_id"]
    assert schema.tables[1].foreign_keys == [("artist_id", "artist", "artist_id")]


def test_parse_schema_survives_odd_types_comments_and_noise() -> None:
    text = """Answer with SQL.
-- a comment line, CREATE TABLE in prose (
CREATE TABLE "Flight Legs" (
  "leg id" INTEGER PRIMARY KEY, -- e.g. 1, 2
  iata character varchar(3), -- e.g. 'GKA', 'it''s'
  rating, -- e.g. 'G'
  FOREIGN KEY (iata) REFERENCES airports(code)
);
not sql at all );"""
    schema = parse_schema(text)
    assert [t.name for t in schema.tables] == ["Flight Legs"]
    table = schema.tables[0]
    assert [c.name for c in table.columns] == ["leg id", "iata", "rating"]
    assert table.column("iata").samples == ["GKA", "it's"]  # type: ignore[union-attr]
    assert table.foreign_keys == [("iata", "airports", "code")]
    assert parse_schema("no tables here").tables == []


@pytest.mark.parametrize(("question", "expected"), [
    ("List the names of all artists.", "SELECT full_name FROM artist"),
    ("How many gigs are there?", "SELECT count(*) FROM gig"),
    ("What is the average age of artists?", "SELECT avg(age) FROM artist"),
    ("List gig names in 2015.", "SELECT gig_name FROM gig WHERE year = 2015"),
    ("Names of artists who had a gig.",
     "SELECT DISTINCT a.full_name FROM artist a JOIN gig g ON a.artist_id = g.artist_id"),
])
def test_tuned_model_regrounds_onto_a_renamed_schema(tuned: ChatModel, artist_db: Path,
                                                      question: str, expected: str) -> None:
    schema_text = SchemaCache().schema_text(artist_db, 3)
    answer = tuned.complete(render_messages(DEFAULT_TEMPLATE, schema_text, question)).text
    assert rows(artist_db, answer) == rows(artist_db, expected), answer


def test_grounding_replaces_literals_from_the_question(artist_db: Path) -> None:
    target = parse_schema(SchemaCache().schema_text(artist_db, 3))
    source = parse_schema(SCHEMA)
    sql = ground("SELECT name FROM singer WHERE country = 'France' AND age > 40", target,
                 "Which artists from Spain are older than 30?", source).sql
    assert rows(artist_db, sql) == [("Ana Lopez",)]
    # Same database: names stay, only the values follow the question.
    same = ground("SELECT count(*) FROM singer WHERE country = 'France'", source,
                  "How many singers are from 'Netherlands'?", source).sql
    assert same == "SELECT COUNT(*) FROM singer WHERE country = 'Netherlands'"
    assert ground("not sql (", target, "anything").sql == "not sql ("
