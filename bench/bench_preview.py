"""Preview of a 100,000-example chat JSONL: lazy line index vs. json-loading every line."""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAGE = 50
WORDS = ("name", "age", "city", "title", "year", "price", "rating", "country", "budget",
         "salary", "date", "status", "code", "type", "amount", "score", "rank", "owner")
TABLES = ("singer", "concert", "stadium", "student", "course", "teacher", "airport", "flight",
          "employee", "department", "orders", "products", "customers", "shipments", "museum")


def _schema(rng: random.Random) -> str:
    """A CREATE TABLE block of realistic size (what the default template puts in `system`)."""
    parts = []
    for table in rng.sample(TABLES, rng.randint(2, 6)):
        columns = [f"  {table}_id INTEGER PRIMARY KEY, -- e.g. 1, 2, 3"]
        for word in rng.sample(WORDS, rng.randint(3, 8)):
            samples = ", ".join(f"'{rng.choice(WORDS).title()} {rng.randint(1, 99)}'"
                                for _ in range(3))
            columns.append(f"  {word} TEXT, -- e.g. {samples}")
        parts.append(f"CREATE TABLE {table} (\n" + "\n".join(columns) + "\n);")
    return "\n\n".join(parts)


def generate(path: Path, examples: int, seed: int = 0) -> int:
    """Write ``examples`` chat lines (about 2-3 KB each, like Spider with the default prompt)."""
    rng = random.Random(seed)
    schemas = [_schema(rng) for _ in range(40)]
    instructions = ("You write SQL for the SQLite database described below. "
                    "Answer the user's question with one SQL query and nothing else.")
    with open(path, "w", encoding="utf-8") as out:
        for i in range(examples):
            table, word = rng.choice(TABLES), rng.choice(WORDS)
            record = {"messages": [
                {"role": "system", "content": f"{instructions}\n\n{schemas[i % len(schemas)]}"},
                {"role": "user", "content": f"What is the {word} of every {table} (#{i})?"},
                {"role": "assistant", "content": f"SELECT {word} FROM {table} WHERE rowid = {i}"},
            ]}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path.stat().st_size


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(mode: str, path: Path) -> dict[str, float]:
    """Runs in a fresh process so that each approach has its own peak RSS."""
    started = time.perf_counter()
    if mode == "app":
        return _app_child(path, started)
    if mode == "lazy":
        from tui.core.data.jsonl_reader import JsonlReader

        reader = JsonlReader(path)
        opened = time.perf_counter()
        count = len(reader)
        page = reader.page(0, PAGE)
        paged = time.perf_counter()
        scan = reader.filter("concert")
        scan.run()
        filtered = time.perf_counter()
        matches = len(scan.matches)
        middle = reader.page(count // 2, PAGE)
        assert len(page) == PAGE and len(middle) == PAGE and page[0].sql
    else:
        with open(path, encoding="utf-8") as source:
            rows = [json.loads(line) for line in source]
        opened = time.perf_counter()
        count = len(rows)
        page = rows[:PAGE]
        paged = time.perf_counter()
        matches = sum(1 for row in rows if any(
            "concert" in m["content"].casefold() for m in row["messages"]
            if m["role"] != "system"))
        filtered = time.perf_counter()
        assert len(page) == PAGE
    return {"open_s": opened - started, "first_page_s": paged - opened,
            "open_and_page_s": paged - started, "filter_s": filtered - paged,
            "rows": count, "matches": matches, "peak_rss_mb": _peak_rss_mb()}


def _app_child(path: Path, started: float) -> dict[str, float]:
    """The real pane: sqltune --data FILE headless at 80x24, until the first page is on screen
    (then until the problem scan, a JSONL validation of every line, has finished)."""
    import asyncio
    import os

    os.environ.setdefault("SQLTUNE_DATA_DIR", str(path.parent / "data"))
    os.environ.setdefault("SQLTUNE_CONFIG_DIR", str(path.parent / "config"))
    from tui.app import make_app
    from tui.widgets.dataset_preview import DatasetPreview

    figures: dict[str, float] = {}

    def no_provider() -> None:
        raise RuntimeError("no provider in this bench")

    async def run() -> None:
        app = make_app(data=path, start_local=no_provider)
        async with app.run_test(size=(80, 24)) as pilot:
            running = time.perf_counter()
            pane = app.pane("dataset")
            assert isinstance(pane, DatasetPreview)
            table = pane.query_one("#dataset-table")
            while pane.source is None or not table.row_count:  # type: ignore[attr-defined]
                await pilot.pause(0.005)
            figures["open_and_page_s"] = time.perf_counter() - started
            figures["page_after_app_start_s"] = time.perf_counter() - running
            figures["rss_at_page_mb"] = _peak_rss_mb()
            figures["rows"] = pane.source.known_count()
            while pane.problems is None:
                await pilot.pause(0.02)
            figures["problem_scan_s"] = time.perf_counter() - started

    asyncio.run(run())
    figures["peak_rss_mb"] = _peak_rss_mb()
    return figures


def measure(mode: str, path: Path) -> dict[str, float]:
    """Run one approach in its own Python process and read back its figures."""
    done = subprocess.run([sys.executable, __file__, "--child", mode, str(path)],
                          check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return
    with tempfile.TemporaryDirectory(prefix="sqltune-bench-") as folder:
        path = Path(folder) / "preview.jsonl"
        size = generate(path, args.examples)
        lazy = measure("lazy", path)
        base = measure("baseline", path)
        app = measure("app", path)
    assert lazy["rows"] == base["rows"] == app["rows"] == args.examples
    assert lazy["matches"] == base["matches"]
    verdict = (lazy["open_and_page_s"] < 1.0 and lazy["peak_rss_mb"] < 200
               and app["page_after_app_start_s"] < 1.0 and app["peak_rss_mb"] < 200)
    if args.json:
        print(json.dumps({"examples": args.examples, "bytes": size, "lazy": lazy,
                          "baseline": base, "app": app, "ok": verdict}))
        return
    print(f"file: {args.examples:,} examples, {size / 1e6:.1f} MB")
    print(f"{'':28}{'lazy index':>14}{'json.loads all':>16}{'ratio':>9}")
    for key, label, scale in (
            ("open_s", "open (ms)", 1000), ("first_page_s", f"first page of {PAGE} (ms)", 1000),
            ("open_and_page_s", "open + first page (ms)", 1000),
            ("filter_s", "full text filter (ms)", 1000), ("peak_rss_mb", "peak RSS (MB)", 1)):
        ratio = base[key] / lazy[key] if lazy[key] else float("inf")
        print(f"{label:28}{lazy[key] * scale:>14.1f}{base[key] * scale:>16.1f}{ratio:>8.1f}x")
    print("(the baseline filters rows it already parsed; the lazy filter parses as it scans,\n"
          " in blocks, so a UI shows matches while the scan goes on)")
    print(f"the pane itself (sqltune --data FILE, headless 80x24): first page "
          f"{app['page_after_app_start_s'] * 1000:.0f} ms after the app started, "
          f"{app['open_and_page_s'] * 1000:.0f} ms after the process did (imports included; "
          f"RSS {app['rss_at_page_mb']:.0f} MB);\n"
          f"problem scan of every line done after {app['problem_scan_s']:.2f} s "
          f"(peak RSS {app['peak_rss_mb']:.0f} MB)")
    print(f"target (open + first page < 1 s, peak RSS < 200 MB): {'met' if verdict else 'MISSED'}")


if __name__ == "__main__":
    main()
