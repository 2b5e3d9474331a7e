"""Schema text rebuilt from tiny SQLite files: keys, odd names, samples, caching, read-only."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest

from tui.core.data.schema import (
    SchemaCache,
    SchemaError,
    build_schema_text,
    format_value,
    quote_name,
)


def make_db(path: Path, script: str) -> Path:
    connection = sqlite3.connect(path)
    connection.executescript(script)
    connection.commit()
    connection.close()
    return path


@pytest.fixture
def concert(tmp_path: Path) -> Path:
    return make_db(tmp_path / "concert.sqlite", """
        CREATE TABLE stadium (stadium_id INTEGER PRIMARY KEY, name TEXT NOT NULL, capacity INT);
        CREATE TABLE singer (singer_id INT, name TEXT, country TEXT, PRIMARY KEY (singer_id));
        CREATE TABLE concert (
            concert_id INT PRIMARY KEY, stadium_id INT, year TEXT,
            FOREIGN KEY (stadium_id) REFERENCES stadium(stadium_id));
        CREATE TABLE singer_in_concert (
            concert_id INT, singer_id INT,
            PRIMARY KEY (concert_id, singer_id),
            FOREIGN KEY (concert_id) REFERENCES concert(concert_id),
            FOREIGN KEY (singer_id) REFERENCES singer(singer_id));
        INSERT INTO stadium VALUES (1, 'Stark''s Park', 10104), (2, 'Glebe Park', 4125),
                                   (3, 'Somerset Park', 11998), (4, 'Hampden', 52500);
        INSERT INTO singer VALUES (1, 'Joe Sharp', 'Netherlands'),
                                  (2, 'Timbaland', 'United States'),
                                  (3, 'Justin Brown', NULL), (4, 'Rose White', 'France');
        INSERT INTO concert VALUES (1, 1, '2014'), (2, 2, '2014'), (3, 2, '2015');
        INSERT INTO singer_in_concert VALUES (1, 2), (1, 3), (2, 3);
    """)


@pytest.fixture
def odd(tmp_path: Path) -> Path:
    long_note = "a very long note " * 10
    return make_db(tmp_path / "odd.sqlite", f'''
        CREATE TABLE "Home Town" ("Town ID" INTEGER PRIMARY KEY, "Name" , "order" TEXT,
                                  "say ""hi""" TEXT);
        CREATE TABLE child (id INTEGER, town, note TEXT,
                            FOREIGN KEY (town) REFERENCES "Home Town");
        CREATE TABLE nothing_here (a INT, b REAL);
        CREATE VIEW v AS SELECT * FROM child;
        INSERT INTO "Home Town" VALUES (1, 'Springfield', 'first', 'x'), (2, 7, 'second', NULL);
        INSERT INTO child VALUES (1, 1, '{long_note}'), (2, 1, '   '), (3, 1, 'a */ b');
    ''')


def test_create_table_with_primary_and_foreign_keys(concert: Path) -> None:
    text = build_schema_text(concert)
    assert text == """\
CREATE TABLE stadium (
  stadium_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  capacity INT
);

CREATE TABLE singer (
  singer_id INT PRIMARY KEY,
  name TEXT,
  country TEXT
);

CREATE TABLE concert (
  concert_id INT PRIMARY KEY,
  stadium_id INT,
  year TEXT,
  FOREIGN KEY (stadium_id) REFERENCES stadium(stadium_id)
);

CREATE TABLE singer_in_concert (
  concert_id INT,
  singer_id INT,
  PRIMARY KEY (concert_id, singer_id),
  FOREIGN KEY (concert_id) REFERENCES concert(concert_id),
  FOREIGN KEY (singer_id) REFERENCES singer(singer_id)
);"""
    # The rebuilt text is itself valid SQLite that recreates the same structure.
    copy = sqlite3.connect(":memory:")
    copy.executescript(text)
    names = [r[0] for r in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert names == ["stadium", "singer", "concert", "singer_in_concert"]


def test_sample_values_are_distinct_non_null_and_short(concert: Path) -> None:
    text = build_schema_text(concert, sample_values=2)
    assert "  name TEXT NOT NULL, -- e.g. 'Stark''s Park', 'Glebe Park'" in text
    assert "  country TEXT -- e.g. 'Netherlands', 'United States'" in text
    assert "  year TEXT, -- e.g. '2014', '2015'" in text
    three = build_schema_text(concert, sample_values=3)
    assert "'Netherlands', 'United States', 'France'" in three  # NULL skipped
    sqlite3.connect(":memory:").executescript(three)  # comments keep it valid SQL


def test_samples_follow_storage_order_not_an_index(tmp_path: Path) -> None:
    path = make_db(tmp_path / "i.sqlite", """
        CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT);
        CREATE INDEX person_name ON person(name);
        INSERT INTO person (name) VALUES ('Zed'), ('Amy'), ('Zed'), ('Bob'), ('Cid');
    """)
    text = build_schema_text(path, sample_values=3, sample_rows=2)
    assert "name TEXT -- e.g. 'Zed', 'Amy', 'Bob'" in text
    assert "1\tZed\n2\tAmy\n" in text


def test_sample_rows_block_after_each_table_with_rows(concert: Path) -> None:
    text = build_schema_text(concert, sample_rows=2)
    assert ("/*\n2 rows from singer:\nsinger_id\tname\tcountry\n1\tJoe Sharp\tNetherlands\n"
            "2\tTimbaland\tUnited States\n*/") in text
    assert text.count("/*") == 4
    sqlite3.connect(":memory:").executescript(text)


def test_odd_names_missing_types_and_empty_tables(odd: Path) -> None:
    text = build_schema_text(odd, sample_values=3, sample_rows=2)
    assert 'CREATE TABLE "Home Town" (' in text
    assert '  "Town ID" INTEGER PRIMARY KEY, -- e.g. 1, 2' in text
    assert "  Name, -- e.g. 'Springfield', 7" in text  # no declared type
    assert '  "order" TEXT, --' in text and '"say ""hi""" TEXT' in text
    assert 'FOREIGN KEY (town) REFERENCES "Home Town"("Town ID")\n' in text  # implicit key
    assert "CREATE TABLE nothing_here (\n  a INT,\n  b REAL\n);" in text
    assert "rows from nothing_here" not in text and "CREATE VIEW" not in text
    # Long strings are cut; the blank value is not a sample.
    assert "  note TEXT, -- e.g. 'a very long note a very long note a ver…', 'a */ b'\n" in text
    assert "2\t1\t\n*/" in text and "a * / b" not in text  # only two rows shown
    three = build_schema_text(odd, sample_rows=3)
    assert "3\t1\ta * / b\n*/" in three  # a cell cannot end the comment block
    sqlite3.connect(":memory:").executescript(three)
    sqlite3.connect(":memory:").executescript(text)


def test_names_and_values_are_rendered_as_sql() -> None:
    assert quote_name("singer_id") == "singer_id"
    assert quote_name("select") == '"select"'
    assert quote_name("2nd") == '"2nd"'
    assert format_value("it's") == "'it''s'"
    assert format_value("line\nbreak  here") == "'line break here'"
    assert format_value(3.5) == "3.5" and format_value(7) == "7"
    assert format_value(b"\x00\x01") == "<2 bytes>"


def test_reading_leaves_the_file_byte_identical(concert: Path) -> None:
    before = hashlib.sha256(concert.read_bytes()).hexdigest()
    build_schema_text(concert, sample_values=3, sample_rows=3)
    assert hashlib.sha256(concert.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in concert.parent.iterdir()) == ["concert.sqlite"]


def test_missing_and_broken_files_raise_without_creating_anything(tmp_path: Path) -> None:
    cache = SchemaCache()
    with pytest.raises(SchemaError):
        cache.schema_text(tmp_path / "gone.sqlite", 3)
    assert not (tmp_path / "gone.sqlite").exists()
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"definitely not sqlite" * 50)
    with pytest.raises(SchemaError):
        cache.schema_text(junk, 0)


def test_cache_computes_once_per_database_and_settings(concert: Path) -> None:
    cache = SchemaCache()
    first = cache.schema_text(concert, 3)
    assert cache.schema_text(concert, 3) is first
    assert cache.schema_text(concert, 0) != first
    assert cache.schema_text(concert, 3, sample_rows=2) != first
    assert len(cache) == 3
    cache.clear()
    assert len(cache) == 0


def test_cache_notices_a_changed_file(tmp_path: Path) -> None:
    path = make_db(tmp_path / "a.sqlite", "CREATE TABLE t (a INT);")
    cache = SchemaCache()
    assert "b TEXT" not in cache.schema_text(path, 0)
    make_db(path, "CREATE TABLE u (b TEXT); INSERT INTO u VALUES (zeroblob(50000));")
    assert "b TEXT" in cache.schema_text(path, 0)


def test_cache_is_shared_safely_between_threads(concert: Path) -> None:
    cache = SchemaCache()
    results: list[str] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        results.append(cache.schema_text(concert, 3, sample_rows=1))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and all(text is results[0] for text in results)
    assert len(cache) == 1


@pytest.mark.spider
def test_every_spider_database_renders_as_valid_sql(spider: Path) -> None:
    cache = SchemaCache()
    for path in sorted((spider / "database").glob("*/*.sqlite")):
        text = cache.schema_text(path, 3, sample_rows=1)
        assert text.startswith("CREATE TABLE"), path.name
        sqlite3.connect(":memory:").executescript(text)
