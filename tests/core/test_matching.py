"""EX semantics: column permutation, ORDER BY, duplicates, NULLs and floats."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tui.core.sql.matching import canonical, order_matters, results_match
from tui.core.sql.sqlexec import run_readonly


def test_identical_results_match() -> None:
    rows = [(1, "a"), (2, "b")]
    assert results_match(rows, list(rows), ordered=False)
    assert results_match(rows, list(rows), ordered=True)


def test_columns_may_be_permuted() -> None:
    gold = [(1, "a", 10.5), (2, "b", 20.0)]
    predicted = [("a", 10.5, 1), ("b", 20.0, 2)]
    assert results_match(gold, predicted, ordered=False)
    assert results_match(gold, predicted, ordered=True)


def test_permutation_must_be_one_for_all_rows() -> None:
    # Each row is a rearrangement of the gold row, but no single column order fits both.
    gold = [(1, 2), (3, 4)]
    predicted = [(1, 2), (4, 3)]
    assert not results_match(gold, predicted, ordered=False)


def test_columns_with_equal_multisets_are_disambiguated_by_rows() -> None:
    gold = [(1, 2), (2, 1), (3, 3)]
    swapped = [(2, 1), (1, 2), (3, 3)]
    assert results_match(gold, swapped, ordered=False)
    wrong = [(1, 1), (2, 2), (3, 3)]
    assert not results_match(gold, wrong, ordered=False)


def test_row_order_matters_only_when_gold_is_sorted() -> None:
    gold = [(1,), (2,), (3,)]
    reversed_rows = [(3,), (2,), (1,)]
    assert results_match(gold, reversed_rows, ordered=False)
    assert not results_match(gold, reversed_rows, ordered=True)


def test_duplicates_count() -> None:
    assert not results_match([(1,), (1,), (2,)], [(1,), (2,), (2,)], ordered=False)
    assert not results_match([(1,), (1,)], [(1,)], ordered=False)
    assert results_match([(1,), (2,), (1,)], [(1,), (1,), (2,)], ordered=False)


def test_row_and_column_counts_must_agree() -> None:
    assert not results_match([(1, 2)], [(1,)], ordered=False)
    assert not results_match([(1,)], [(1,), (1,)], ordered=False)
    # Spider: two empty results are equal whatever their columns.
    assert results_match([], [], ordered=True)


def test_nulls_equal_nulls_only() -> None:
    assert results_match([(None, 1)], [(1, None)], ordered=False)
    assert not results_match([(None,)], [(0,)], ordered=False)
    assert not results_match([(None,)], [("",)], ordered=False)


def test_floats_compare_after_rounding_and_integral_floats_equal_ints() -> None:
    assert results_match([(0.3,)], [(0.1 + 0.2,)], ordered=False)
    assert results_match([(2,)], [(2.0,)], ordered=False)
    assert results_match([(1 / 3,)], [(0.33333333333,)], ordered=False)
    assert not results_match([(0.3,)], [(0.31,)], ordered=False)
    assert canonical(float("nan")) == canonical(float("nan"))


def test_text_is_exact() -> None:
    assert not results_match([("Paris",)], [("paris",)], ordered=False)
    assert not results_match([("1",)], [(1,)], ordered=False)


def test_many_identical_columns_stay_fast() -> None:
    # 12 interchangeable columns: 12! orders, but identical columns are tried once.
    gold = [tuple([i] * 12) for i in range(50)]
    started = time.monotonic()
    assert results_match(gold, list(reversed(gold)), ordered=False)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT a FROM t ORDER BY a", True),
    ("select a from t order  by a desc limit 3", True),
    ("SELECT a FROM (SELECT a FROM t ORDER BY a LIMIT 3)", False),
    ("SELECT a FROM t WHERE a IN (SELECT a FROM t ORDER BY a LIMIT 1)", False),
    ("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1", True),
    ("SELECT a FROM t", False),
])
def test_order_matters_reads_the_top_level(sql: str, expected: bool) -> None:
    assert order_matters(sql) is expected


def test_matching_real_query_results(tmp_path: Path) -> None:
    db = tmp_path / "shop.sqlite"
    connection = sqlite3.connect(db)
    connection.executescript(
        "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL, shelf TEXT);"
        "INSERT INTO item VALUES (1, 'pen', 1.5, 'a'), (2, 'ink', 4.0, 'a'),"
        " (3, 'pad', 2.25, NULL), (4, 'pen', 1.5, 'b');"
    )
    connection.commit()
    connection.close()

    def rows(sql: str) -> list[tuple[object, ...]]:
        return run_readonly(db, sql, timeout=2, max_rows=1000).rows

    gold = "SELECT name, avg(price) FROM item GROUP BY name ORDER BY avg(price) DESC"
    assert order_matters(gold)
    same = "SELECT avg(price) AS p, name FROM item GROUP BY name ORDER BY p DESC"
    assert results_match(rows(gold), rows(same), ordered=True)
    ascending = "SELECT name, avg(price) FROM item GROUP BY name ORDER BY avg(price)"
    assert not results_match(rows(gold), rows(ascending), ordered=True)
    assert results_match(rows(gold), rows(ascending), ordered=False)
    assert results_match(rows("SELECT shelf FROM item"),
                         rows("SELECT shelf FROM item ORDER BY id DESC"), ordered=False)
    assert not results_match(rows("SELECT name FROM item"),
                             rows("SELECT DISTINCT name FROM item"), ordered=False)
