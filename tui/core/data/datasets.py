"""Load Spider-format folders (tables.json, examples, SQLite databases) and report problems."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.core.sql.sqlite_ro import MissingDatabase, connect_readonly

# Each split is a list of alternatives; the first alternative with a file present wins.
SPLIT_FILES: dict[str, tuple[tuple[str, ...], ...]] = {
    "train": (("train_spider.json", "train_others.json"), ("train.json",), ("train.jsonl",)),
    "dev": (("dev.json",), ("dev.jsonl",)),
}
"""Known splits and the files that make them up; any other split name maps to NAME.json(l)."""

_NOT_EXAMPLE_FILES = frozenset({"tables.json"})
_REQUIRED_FIELDS = ("db_id", "question", "query")


class DatasetError(Exception):
    """The folder cannot be loaded at all (not a folder, no example files for the split)."""


@dataclass(frozen=True)
class Example:
    """One question/SQL pair of a Spider-format dataset."""

    db_id: str
    """The database the question is asked about."""
    question: str
    """The natural-language question."""
    query: str
    """The gold SQL."""
    source: str
    """File name the example came from (e.g. ``train_spider.json``)."""
    index: int
    """Position in that file (0-based list index, or 0-based line index for JSONL)."""


@dataclass(frozen=True)
class DatasetProblem:
    """Something wrong with the dataset that loading skipped or reported and went past."""

    kind: str
    """Stable snake_case kind: missing_database, empty_database, unknown_db_id, malformed_example,
    unreadable_file, missing_tables, unreadable_database, gold_failed, gold_timeout."""
    db_id: str | None
    """The database concerned, when there is one."""
    message: str
    """Human-readable explanation."""
    source: str | None = None
    """File name concerned, when there is one."""
    index: int | None = None
    """Example index inside ``source``, when there is one."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "db_id": self.db_id, "message": self.message,
                "source": self.source, "index": self.index}


@dataclass
class SpiderDataset:
    """The examples of one split of a Spider-format folder, plus what was wrong with it."""

    root: Path
    """The dataset folder."""
    split: str
    """The split that was loaded (``train``, ``dev``, ... or ``files`` for explicit files)."""
    examples: list[Example]
    """Every well-formed example, in file order (including those whose database is missing)."""
    problems: list[DatasetProblem] = field(default_factory=list)
    """Problems found while loading (missing or empty databases, malformed entries...)."""
    sources: list[Path] = field(default_factory=list)
    """Example files that were read."""
    schema_db_ids: frozenset[str] = frozenset()
    """db_ids described by tables.json (empty when it is missing)."""
    empty_db_ids: frozenset[str] = frozenset()
    """Databases that exist but hold no rows in any table."""

    @property
    def db_ids(self) -> list[str]:
        """Distinct db_ids used by the examples, sorted."""
        return sorted({example.db_id for example in self.examples})

    def db_path(self, db_id: str) -> Path | None:
        """``database/<db_id>/<db_id>.sqlite`` when that file exists, else None."""
        return database_path(self.root, db_id)

    def splits(self) -> list[str]:
        """Splits available in this folder."""
        return available_splits(self.root)

    def counts_by_db(self) -> dict[str, int]:
        """Number of examples per db_id."""
        return dict(Counter(example.db_id for example in self.examples))

    def executable_examples(self) -> list[Example]:
        """Examples whose database file is present (the ones that can be prepared and run)."""
        present = {db_id for db_id in self.db_ids if self.db_path(db_id) is not None}
        return [example for example in self.examples if example.db_id in present]

    def problems_of(self, kind: str) -> list[DatasetProblem]:
        """Problems of one kind."""
        return [problem for problem in self.problems if problem.kind == kind]


def database_path(root: Path, db_id: str) -> Path | None:
    """The SQLite file of ``db_id`` under ``root/database``, or None when it is not there."""
    if not db_id or "/" in db_id or "\\" in db_id or db_id in (".", ".."):
        return None
    candidate = Path(root) / "database" / db_id / f"{db_id}.sqlite"
    return candidate if candidate.is_file() else None


def available_splits(root: Path) -> list[str]:
    """Known splits with files present, then any other NAME.json / NAME.jsonl example file."""
    root = Path(root)
    found = [name for name, groups in SPLIT_FILES.items() if _split_files(root, groups)]
    claimed = {n for groups in SPLIT_FILES.values() for group in groups for n in group}
    if root.is_dir():
        for path in sorted(root.iterdir()):
            if (path.suffix in (".json", ".jsonl") and path.name not in claimed
                    and path.name not in _NOT_EXAMPLE_FILES and path.stem not in found):
                found.append(path.stem)
    return found


def _split_files(root: Path, groups: Sequence[Sequence[str]]) -> list[Path]:
    for group in groups:
        present = [root / name for name in group if (root / name).is_file()]
        if present:
            return present
    return []


def files_for_split(root: Path, split: str) -> list[Path]:
    """Example files that make up ``split`` in ``root`` (empty when none is present)."""
    groups = SPLIT_FILES.get(split, ((f"{split}.json",), (f"{split}.jsonl",)))
    return _split_files(Path(root), groups)


def load_dataset(root: Path, split: str = "train", *, files: Sequence[Path] | None = None,
                 check_databases: bool = True) -> SpiderDataset:
    """Load one split of a Spider-format folder, reporting problems instead of stopping.

    ``root`` may also be a single JSON/JSONL example file (its folder is then the root).
    ``files`` overrides the split's files with explicit JSON/JSONL files of db_id/question/query.
    ``check_databases`` looks for missing and empty databases (cheap: one small query per table).
    """
    root = Path(root)
    if root.is_file():
        files, root, split = [root], root.parent, "files"
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    if files is not None:
        sources = [Path(f) if Path(f).is_absolute() else root / f for f in files]
    else:
        sources = files_for_split(root, split)
    if not sources:
        known = ", ".join(available_splits(root)) or "none"
        raise DatasetError(f"no example files for split {split!r} in {root} (splits here: {known})")

    problems: list[DatasetProblem] = []
    schema_db_ids = _read_tables(root, problems)
    examples: list[Example] = []
    for source in sources:
        examples.extend(_read_examples(source, problems))

    dataset = SpiderDataset(root=root, split=split, examples=examples, problems=problems,
                            sources=sources, schema_db_ids=schema_db_ids)
    counts = dataset.counts_by_db()
    if schema_db_ids:
        for db_id in sorted(set(counts) - schema_db_ids):
            problems.append(DatasetProblem(
                "unknown_db_id", db_id,
                f"{db_id}: not described in tables.json ({counts[db_id]} examples)"))
    if check_databases:
        dataset.empty_db_ids = frozenset(_check_databases(root, counts, problems))
    return dataset


def _read_tables(root: Path, problems: list[DatasetProblem]) -> frozenset[str]:
    path = root / "tables.json"
    if not path.is_file():
        problems.append(DatasetProblem("missing_tables", None, "tables.json is missing; "
                                       "schemas are read from the SQLite files only",
                                       "tables.json"))
        return frozenset()
    try:
        data = json.loads(path.read_bytes())
    except OSError as error:
        problems.append(DatasetProblem("unreadable_file", None,
                                       f"tables.json cannot be read: {error}", "tables.json"))
        return frozenset()
    except ValueError as error:
        problems.append(DatasetProblem(
            "unreadable_file", None,
            f"{json_error('tables.json', error)}; schemas are read from the SQLite files only",
            "tables.json"))
        return frozenset()
    if not isinstance(data, list):
        problems.append(DatasetProblem("unreadable_file", None,
                                       "tables.json is not a JSON list", "tables.json"))
        return frozenset()
    return frozenset(entry["db_id"] for entry in data
                     if isinstance(entry, dict) and isinstance(entry.get("db_id"), str))


def _read_examples(path: Path, problems: list[DatasetProblem]) -> Iterable[Example]:
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as error:
        problems.append(DatasetProblem("unreadable_file", None, f"{name}: {error}", name))
        return []
    entries: list[tuple[int, Any]] = []
    if path.suffix == ".jsonl":
        for index, line in enumerate(raw.splitlines()):
            if not line.strip():
                continue
            try:
                entries.append((index, json.loads(line)))
            except ValueError as error:
                problems.append(DatasetProblem("malformed_example", None,
                                               json_error(name, error, index + 1), name, index))
    else:
        try:
            data = json.loads(raw)
        except ValueError as error:
            problems.append(DatasetProblem("unreadable_file", None, json_error(name, error),
                                           name))
            return []
        if not isinstance(data, list):
            problems.append(DatasetProblem("unreadable_file", None,
                                           f"{name}: expected a JSON list of examples", name))
            return []
        entries = list(enumerate(data))
    examples = []
    for index, entry in entries:
        wrong = _what_is_wrong(entry)
        if wrong:
            where = f"line {index + 1}" if path.suffix == ".jsonl" else f"entry {index}"
            db_id = entry.get("db_id") if isinstance(entry, dict) else None
            problems.append(DatasetProblem("malformed_example",
                                           db_id if isinstance(db_id, str) else None,
                                           f"{name} {where}: {wrong}", name, index))
            continue
        examples.append(Example(entry["db_id"], entry["question"], entry["query"], name, index))
    return examples


def json_error(name: str, error: ValueError, line: int | None = None) -> str:
    """``train.json line 19 column 24: not valid JSON (Invalid control character)``; ``line``
    is the file's line when the text that failed was one line of it (JSON Lines)."""
    if isinstance(error, json.JSONDecodeError):
        where = f"line {line if line is not None else error.lineno} column {error.colno}"
        return f"{name} {where}: not valid JSON ({error.msg.removesuffix(' at')})"
    where = f" line {line}" if line is not None else ""
    return f"{name}{where}: not valid JSON ({error})"  # e.g. not UTF-8: no position


def _what_is_wrong(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return f"expected an object, got {type(entry).__name__}"
    missing = [key for key in _REQUIRED_FIELDS if key not in entry]
    if missing:
        return "missing " + ", ".join(missing)
    for key in _REQUIRED_FIELDS:
        value = entry[key]
        if not isinstance(value, str):
            return f"{key} is {type(value).__name__}, expected a string"
        if not value.strip():
            return f"{key} is empty"
    return None


def _check_databases(root: Path, counts: dict[str, int],
                     problems: list[DatasetProblem]) -> set[str]:
    empty: set[str] = set()
    for db_id in sorted(counts):
        path = database_path(root, db_id)
        if path is None:
            problems.append(DatasetProblem(
                "missing_database", db_id,
                f"{db_id}: database/{db_id}/{db_id}.sqlite is missing "
                f"({counts[db_id]} examples cannot be executed)"))
            continue
        try:
            has_rows = _has_rows(path)
        except (sqlite3.Error, MissingDatabase) as error:
            problems.append(DatasetProblem("unreadable_database", db_id,
                                           f"{db_id}: cannot read the database ({error})"))
            continue
        if not has_rows:
            empty.add(db_id)
            problems.append(DatasetProblem(
                "empty_database", db_id,
                f"{db_id}: no rows in any table (gold results are all empty)"))
    return empty


def _has_rows(path: Path) -> bool:
    connection = connect_readonly(path)
    try:
        tables = [row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            if connection.execute(f"SELECT 1 FROM {quoted} LIMIT 1").fetchone():
                return True
        return False
    finally:
        connection.close()


ProgressCallback = Callable[[int, int], None]
"""Called with (done, total) while gold SQL runs."""


def check_gold(dataset: SpiderDataset, *, timeout: float = 5.0,
               db_ids: Iterable[str] | None = None, progress: ProgressCallback | None = None,
               should_stop: Callable[[], bool] | None = None) -> list[DatasetProblem]:
    """Execute every gold query read-only (time limit per query) and report the ones that fail.

    Examples whose database is missing are skipped (``load_dataset`` reports those).
    ``db_ids`` restricts the check; ``should_stop`` is polled between queries to cancel.
    """
    wanted = set(db_ids) if db_ids is not None else None
    by_db: dict[str, list[Example]] = {}
    for example in dataset.examples:
        if wanted is None or example.db_id in wanted:
            by_db.setdefault(example.db_id, []).append(example)
    paths = {db_id: dataset.db_path(db_id) for db_id in by_db}
    total = sum(len(items) for db_id, items in by_db.items() if paths[db_id] is not None)
    done = 0
    failures: list[DatasetProblem] = []
    for db_id in sorted(by_db):
        items = by_db[db_id]
        path = paths[db_id]
        if path is None:
            continue
        connection = connect_readonly(path, check_same_thread=False)
        try:
            try:
                connection.execute("PRAGMA query_only = ON")
                connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.Error as error:
                failures.append(DatasetProblem("unreadable_database", db_id,
                                               f"{db_id}: cannot read the database ({error})"))
                done += len(items)
                if progress is not None:
                    progress(done, total)
                continue
            for example in items:
                if should_stop is not None and should_stop():
                    return failures
                failure = _run_gold(connection, example, timeout)
                if failure is not None:
                    failures.append(failure)
                done += 1
                if progress is not None:
                    progress(done, total)
        finally:
            connection.close()
    return failures


def _run_gold(connection: sqlite3.Connection, example: Example,
              timeout: float) -> DatasetProblem | None:
    deadline = time.monotonic() + timeout
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        for _row in connection.execute(example.query):
            pass  # rows are only stepped through, never kept
    except sqlite3.OperationalError as error:
        if time.monotonic() > deadline and "interrupt" in str(error).lower():
            return DatasetProblem("gold_timeout", example.db_id,
                                  f"gold SQL took longer than {timeout:g} s",
                                  example.source, example.index)
        return DatasetProblem("gold_failed", example.db_id, f"gold SQL fails: {error}",
                              example.source, example.index)
    except (sqlite3.Error, ValueError, OverflowError) as error:
        return DatasetProblem("gold_failed", example.db_id, f"gold SQL fails: {error}",
                              example.source, example.index)
    finally:
        connection.set_progress_handler(None, 0)
    return None
