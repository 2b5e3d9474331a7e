"""Spider hardness levels, rule by rule, on queries shaped like Spider's labelled ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui.core.evaluation.components import count_components, hardness
from tui.core.evaluation.hardness import LEVELS, HardnessCounts, HardnessError

# Each query has the same structure as a Spider dev gold query whose level the official
# evaluation.py prints (its evaluation_examples/eval_result_example.txt); names are invented.
LABELLED = [
    ("easy", "SELECT count(*) FROM boats WHERE masts > 4"),
    ("easy", "SELECT hull_no FROM boats WHERE port = 'Oslo'"),
    ("easy", "SELECT DISTINCT T1.title FROM books AS T1 JOIN loans AS T2 ON T1.id = T2.book_id"),
    # Spider's count_others ignores the aggregate inside a single HAVING condition.
    ("easy", "SELECT shelf FROM books GROUP BY shelf HAVING count(*) BETWEEN 1 AND 2"),
    ("medium", "SELECT count(*) FROM races WHERE season = 2014 OR season = 2015"),
    ("medium", "SELECT name FROM crew WHERE rank = 'A' AND ship = 'B'"),
    ("medium", "SELECT T2.title, T2.genre, count(*) FROM loans AS T1 JOIN books AS T2 "
               "ON T1.book_id = T2.id GROUP BY T2.id"),
    ("medium", "SELECT count(*) FROM loans AS T1 JOIN members AS T2 ON T1.member = T2.id "
               "WHERE T2.age > 20"),
    ("medium", "SELECT city FROM members WHERE age < 30 GROUP BY city HAVING count(*) > 1"),
    ("medium", "SELECT count(DISTINCT name) FROM races WHERE track = 'X' AND surface = 'L'"),
    ("medium", "SELECT DISTINCT T1.label FROM kinds AS T1 JOIN books AS T2 ON T1.code = T2.kind "
               "JOIN loans AS T3 ON T2.id = T3.book_id"),
    ("hard", "SELECT count(*) FROM loans AS T1 JOIN books AS T2 ON T1.book_id = T2.id "
             "ORDER BY T2.pages DESC LIMIT 1"),
    ("hard", "SELECT count(*) FROM loans AS T1 JOIN books AS T2 ON T1.book_id = T2.id "
             "WHERE T2.genre = 'a' OR T2.genre = 'b'"),
    ("hard", "SELECT weight FROM boats WHERE masts = 4 AND built = 1974 ORDER BY weight LIMIT 1"),
    ("hard", "SELECT T1.region, count(*) FROM regions AS T1 JOIN towns AS T2 ON T1.id = T2.region "
             "JOIN shops AS T3 ON T2.id = T3.town GROUP BY T1.region"),
    ("hard", "SELECT title FROM books EXCEPT SELECT T1.title FROM books AS T1 JOIN loans AS T2 "
             "ON T1.id = T2.book_id"),
    ("hard", "SELECT name FROM ports WHERE code NOT IN (SELECT origin FROM trips "
             "UNION SELECT target FROM trips)"),
    ("extra", "SELECT avg(age) FROM members WHERE id NOT IN (SELECT T1.id FROM members AS T1 "
              "JOIN loans AS T2 ON T1.id = T2.member)"),
    ("extra", "SELECT T1.name FROM towns AS T1 JOIN regions AS T2 ON T1.region = T2.id "
              "JOIN shops AS T3 ON T1.id = T3.town WHERE T2.name = 'north' "
              "GROUP BY T1.name HAVING count(*) >= 3"),
    ("extra", "SELECT T2.name, T2.size FROM shows AS T1 JOIN halls AS T2 ON T1.hall = T2.id "
              "WHERE T1.year >= 2014 GROUP BY T2.id ORDER BY count(*) DESC LIMIT 1"),
    ("extra", "SELECT T1.title FROM books AS T1 JOIN loans AS T2 ON T1.id = T2.book_id "
              "WHERE T2.days < (SELECT avg(days) FROM loans)"),
    ("extra", "SELECT T1.id, T1.maker FROM makers AS T1 JOIN models AS T2 ON T1.id = T2.maker "
              "GROUP BY T1.id HAVING count(*) >= 2 INTERSECT SELECT T1.id, T1.maker FROM makers "
              "AS T1 JOIN models AS T2 ON T1.id = T2.maker GROUP BY T1.id HAVING count(*) > 3"),
    ("extra", "SELECT T1.code FROM ports AS T1 JOIN trips AS T2 ON T1.code = T2.target "
              "OR T1.code = T2.origin GROUP BY T1.code ORDER BY count(*) LIMIT 1"),
]


@pytest.mark.parametrize(("level", "sql"), LABELLED)
def test_labelled_structures(level: str, sql: str) -> None:
    assert hardness(sql) == level


def test_counts_of_a_set_operation_use_the_leftmost_select() -> None:
    counts = count_components("SELECT a FROM t WHERE b = 1 UNION SELECT a FROM u "
                              "JOIN v ON u.x = v.x WHERE c LIKE '%q%' ORDER BY a LIMIT 3")
    assert counts == HardnessCounts(component1=1, component2=1, others=0)


def test_like_or_and_nested_are_counted_in_every_condition() -> None:
    counts = count_components("SELECT a FROM t JOIN u ON t.x = u.x OR t.y LIKE 'z%' "
                              "WHERE t.b NOT LIKE 'q%' AND t.c IN (SELECT c FROM w) "
                              "AND t.d BETWEEN (SELECT 1) AND (SELECT 2)")
    # where + 1 join + 1 OR + 2 LIKE; three nested queries; where conditions > 1.
    assert counts == HardnessCounts(component1=5, component2=3, others=1)


def test_levels_follow_evaluation_py_thresholds() -> None:
    assert HardnessCounts(1, 0, 0).level == "easy"
    assert HardnessCounts(1, 0, 2).level == "medium"
    assert HardnessCounts(2, 0, 1).level == "medium"
    assert HardnessCounts(2, 0, 3).level == "hard"
    assert HardnessCounts(3, 0, 2).level == "hard"
    assert HardnessCounts(1, 1, 0).level == "hard"
    assert HardnessCounts(4, 0, 0).level == "extra"
    assert HardnessCounts(1, 1, 1).level == "extra"
    assert HardnessCounts(0, 2, 0).level == "extra"


@pytest.mark.parametrize("sql", ["", "SELECT FROM WHERE (", "DROP TABLE x"])
def test_unparseable_sql_raises(sql: str) -> None:
    with pytest.raises(HardnessError):
        hardness(sql)


@pytest.mark.spider
def test_every_spider_training_query_has_a_level(spider: Path) -> None:
    queries = [
        item["query"]
        for name in ("train_spider.json", "train_others.json")
        for item in json.loads((spider / name).read_text(encoding="utf-8"))
    ]
    levels = {hardness(query) for query in queries}
    assert levels == set(LEVELS)
