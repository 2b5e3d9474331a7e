"""Bench the read-only executor: overhead against plain sqlite3, and how well deadlines are kept.

    .venv/bin/python bench/bench_sqlexec.py [--rounds 3] [--spider-limit N] [--json]

(a) Overhead. The same gold queries (demo train + dev, and Spider train when
    ../shared/spider-train is present) run through
      - plain sqlite3: one `mode=ro` URI connection per database, execute + fetchmany;
      - sqltune's ReadOnlyExecutor: one executor per database (authorizer, progress-handler
        deadline, bounded printf, row cap) - the way the playground and a long evaluation use it;
    and, opening a connection for every query,
      - plain sqlite3 connect + execute + fetch + close, against run_readonly().
    Each pair runs interleaved, best of --rounds; ratio = executor time / plain time.
(b) Deadlines. Runaway queries (recursive-CTE bombs, huge cross joins, a huge sort, a LIKE
    over a cross join) under timeouts of 0.1 / 0.25 / 0.5 / 1 s: overshoot = time the
    QueryError('timeout') arrived minus the deadline, p50 and max per timeout.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.core.data.datasets import Example, load_dataset
from tui.core.paths import demo_dir, spider_dir
from tui.core.sql.sqlexec import QueryError, ReadOnlyExecutor, run_readonly

MAX_ROWS = 100_000
TIMEOUTS = (0.1, 0.25, 0.5, 1.0)
RUNAWAYS = {
    "recursive_count": "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
                       "SELECT count(*) FROM n",
    "recursive_strings": "WITH RECURSIVE s(x) AS (SELECT 'a' UNION ALL SELECT x || 'a' FROM s "
                         "WHERE length(x) < 100000) SELECT max(length(x)) FROM s",
    "cross_join_5": "SELECT count(*) FROM t a, t b, t c, t d, t e",
    "cross_join_sort": "SELECT a.v, b.v, c.v FROM t a, t b, t c ORDER BY a.v * b.v - c.v "
                       "LIMIT 1",
    "cross_join_like": "SELECT count(*) FROM t a, t b, t c WHERE a.s || b.s || c.s LIKE '%zz%'",
}


def _ro_uri(path: Path) -> str:
    return f"file:{quote(str(path.resolve()))}?mode=ro"


def _workload(rounds_limit: int | None) -> dict[str, list[tuple[Path, str]]]:
    """Gold queries that run in plain sqlite3, grouped by corpus, as (db, sql)."""
    corpora: dict[str, list[Example]] = {}
    demo = demo_dir()
    corpora["demo"] = [e for split in ("train", "dev")
                       for e in load_dataset(demo, split).executable_examples()]
    spider = spider_dir()
    if spider is not None:
        spider_examples = load_dataset(spider).executable_examples()
        corpora["spider"] = spider_examples[:rounds_limit] if rounds_limit else spider_examples
    workload: dict[str, list[tuple[Path, str]]] = {}
    for name, examples in corpora.items():
        root = demo if name == "demo" else spider
        assert root is not None
        queries: list[tuple[Path, str]] = []
        for example in examples:
            db = Path(root) / "database" / example.db_id / f"{example.db_id}.sqlite"
            try:  # keep only what plain sqlite3 runs, so both sides do the same work
                connection = sqlite3.connect(_ro_uri(db), uri=True)
                try:
                    connection.execute(example.query).fetchmany(MAX_ROWS + 1)
                finally:
                    connection.close()
            except sqlite3.Error:
                continue
            queries.append((db, example.query))
        workload[name] = queries
    return workload


def _plain_reused(queries: list[tuple[Path, str]]) -> float:
    connections: dict[Path, sqlite3.Connection] = {}
    started = time.perf_counter()
    for db, sql in queries:
        connection = connections.get(db)
        if connection is None:
            connection = connections[db] = sqlite3.connect(_ro_uri(db), uri=True)
        cursor = connection.execute(sql)
        cursor.fetchmany(MAX_ROWS + 1)
        cursor.close()
    elapsed = time.perf_counter() - started
    for connection in connections.values():
        connection.close()
    return elapsed


def _executor_reused(queries: list[tuple[Path, str]]) -> float:
    executors: dict[Path, ReadOnlyExecutor] = {}
    started = time.perf_counter()
    for db, sql in queries:
        executor = executors.get(db)
        if executor is None:
            executor = executors[db] = ReadOnlyExecutor(db, timeout=30, max_rows=MAX_ROWS)
        executor.run(sql)
    elapsed = time.perf_counter() - started
    for executor in executors.values():
        executor.close()
    return elapsed


def _plain_oneshot(queries: list[tuple[Path, str]]) -> float:
    started = time.perf_counter()
    for db, sql in queries:
        connection = sqlite3.connect(_ro_uri(db), uri=True)
        connection.execute(sql).fetchmany(MAX_ROWS + 1)
        connection.close()
    return time.perf_counter() - started


def _executor_oneshot(queries: list[tuple[Path, str]]) -> float:
    started = time.perf_counter()
    for db, sql in queries:
        run_readonly(db, sql, timeout=30, max_rows=MAX_ROWS)
    return time.perf_counter() - started


def _best_pair(plain: Callable[[list[tuple[Path, str]]], float],
               ours: Callable[[list[tuple[Path, str]]], float],
               queries: list[tuple[Path, str]], rounds: int) -> tuple[float, float]:
    plain_times, our_times = [], []
    for _ in range(rounds):  # interleaved so machine load hits both sides alike
        plain_times.append(plain(queries))
        our_times.append(ours(queries))
    return min(plain_times), min(our_times)


def _runaway_db(folder: Path) -> Path:
    path = folder / "runaway.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t (v INTEGER, s TEXT)")
    connection.executemany("INSERT INTO t VALUES (?, ?)",
                           [(i, f"row{i:04d}") for i in range(400)])
    connection.commit()
    connection.close()
    return path


def _deadlines(repeats: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        db = _runaway_db(Path(folder))
        with ReadOnlyExecutor(db, max_rows=10) as executor:
            for timeout in TIMEOUTS:
                overshoots: list[float] = []
                per_query: dict[str, float] = {}
                for name, sql in RUNAWAYS.items():
                    worst = 0.0
                    for _ in range(repeats):
                        started = time.monotonic()
                        try:
                            executor.run(sql, timeout=timeout)
                        except QueryError as error:
                            if error.type != "timeout":
                                message = f"{name}: expected a timeout, got {error}"
                                raise SystemExit(message) from None
                        else:
                            raise SystemExit(f"{name} finished within {timeout} s; make it "
                                             "heavier")
                        overshoot = time.monotonic() - started - timeout
                        overshoots.append(overshoot)
                        worst = max(worst, overshoot)
                    per_query[name] = round(worst * 1000, 2)
                results[f"{timeout:g}"] = {
                    "runs": len(overshoots),
                    "overshoot_p50_ms": round(statistics.median(overshoots) * 1000, 2),
                    "overshoot_max_ms": round(max(overshoots) * 1000, 2),
                    "worst_by_query_ms": per_query,
                }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spider-limit", type=int, default=None,
                        help="use only the first N Spider examples")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of each runaway query per timeout")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    workload = _workload(args.spider_limit)
    overhead: dict[str, Any] = {}
    for name, queries in workload.items():
        plain, ours = _best_pair(_plain_reused, _executor_reused, queries, args.rounds)
        plain_once, ours_once = _best_pair(_plain_oneshot, _executor_oneshot, queries,
                                           args.rounds)
        overhead[name] = {
            "queries": len(queries),
            "plain_reused_s": round(plain, 4), "executor_reused_s": round(ours, 4),
            "reused_ratio": round(ours / plain, 3),
            "plain_per_query_us": round(plain / len(queries) * 1e6, 1),
            "executor_per_query_us": round(ours / len(queries) * 1e6, 1),
            "plain_oneshot_s": round(plain_once, 4), "run_readonly_s": round(ours_once, 4),
            "oneshot_ratio": round(ours_once / plain_once, 3),
        }
    deadlines = _deadlines(args.repeats)
    report = {"overhead": overhead, "deadlines": deadlines, "rounds": args.rounds}
    if args.json:
        print(json.dumps(report))
        return 0
    print("executor overhead vs plain sqlite3 (same queries, best of "
          f"{args.rounds}; ratio = executor / plain)")
    for name, row in overhead.items():
        print(f"  {name:<7} {row['queries']:>5} queries  reused connection: plain "
              f"{row['plain_reused_s']:.3f} s, executor {row['executor_reused_s']:.3f} s, "
              f"ratio {row['reused_ratio']:.2f}x")
        print(f"  {'':<7} {'':>5}          open per query:    plain "
              f"{row['plain_oneshot_s']:.3f} s, run_readonly {row['run_readonly_s']:.3f} s, "
              f"ratio {row['oneshot_ratio']:.2f}x")
    print("deadline overshoot on runaway queries (time past the deadline when the timeout "
          "error arrived)")
    for timeout, row in deadlines.items():
        print(f"  timeout {timeout:>4} s: {row['runs']} runs, overshoot p50 "
              f"{row['overshoot_p50_ms']:.1f} ms, max {row['overshoot_max_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
