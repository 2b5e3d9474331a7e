"""What the preview pages through: a loaded Spider split, or a JSONL file read lazily by line."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the core's dataset modules (json, sqlite3) load in the pane's workers
    from tui.core.data.datasets import DatasetProblem, SpiderDataset
    from tui.core.data.jsonl_reader import Row as LineRow

ShouldStop = Callable[[], bool]
"""Polled by long scans so a cancelled worker stops early."""

DB_PROBLEMS = frozenset({"missing_database", "empty_database", "unknown_db_id",
                         "unreadable_database"})
"""Dataset problems that concern every example of one database."""


@dataclass(frozen=True)
class Row:
    """One example as the preview shows it."""

    index: int
    """Position in the source (0-based)."""
    db_id: str
    """Database name ("" when the line does not say, e.g. chat JSONL)."""
    question: str
    """The user's question."""
    sql: str
    """The gold SQL (the assistant's answer in chat JSONL)."""
    where: str
    """File and entry or line, for the user to find it."""
    messages: tuple[dict[str, Any], ...] | None = None
    """Chat messages as written in a chat JSONL (None: rendered from the template)."""


class ExampleSource(ABC):
    """A read-only sequence of examples with filters and a problem scan."""

    label: str
    """Shown in the pane's title line."""
    root: Path
    """Folder whose database/ holds the SQLite files."""

    @abstractmethod
    def known_count(self) -> int:
        """Examples known so far (a lazy file grows this while it is indexed)."""

    @abstractmethod
    def rows(self, indices: Sequence[int]) -> list[Row]:
        """The examples at these positions."""

    @abstractmethod
    def db_ids(self) -> list[str]:
        """Databases named by the examples seen so far."""

    @abstractmethod
    def matching(self, db_id: str | None, text: str, should_stop: ShouldStop) -> list[int]:
        """Positions of the examples of ``db_id`` whose question or SQL contains ``text``."""

    @abstractmethod
    def problems(self, model: str, should_stop: ShouldStop) -> dict[int, list[str]]:
        """Problems by example position, plus -1 for problems of no single example."""

    def warnings(self) -> list[str]:
        """Problems of no single example already known when opened (a file that is not JSON),
        word for word as ``sqltune prepare`` prints them; problems() may add more."""
        return []

    def db_path(self, db_id: str) -> Path | None:
        """The SQLite file of a database, when present."""
        from tui.core.data.datasets import database_path

        return database_path(self.root, db_id) if db_id else None


class SpiderSource(ExampleSource):
    """One split of a Spider-format folder, loaded whole (Spider's 7,000 examples are small)."""

    def __init__(self, dataset: SpiderDataset) -> None:
        self.dataset = dataset
        """The loaded split."""
        self.root = dataset.root
        self.label = f"{dataset.root.name} · {dataset.split}"
        self._positions = {(e.source, e.index): i for i, e in enumerate(dataset.examples)}
        self._by_db: dict[str, list[int]] = {}
        for i, e in enumerate(dataset.examples):
            self._by_db.setdefault(e.db_id, []).append(i)

    @classmethod
    def open(cls, root: Path, split: str = "train") -> SpiderSource:
        """Load a folder (no gold check yet: that is the slow part of problems())."""
        from tui.core.data.datasets import load_dataset

        return cls(load_dataset(root, split))

    def known_count(self) -> int:
        return len(self.dataset.examples)

    def rows(self, indices: Sequence[int]) -> list[Row]:
        examples = self.dataset.examples
        return [Row(i, e.db_id, e.question, e.query, f"{e.source} #{e.index}")
                for i in indices for e in (examples[i],)]

    def db_ids(self) -> list[str]:
        return self.dataset.db_ids

    def matching(self, db_id: str | None, text: str, should_stop: ShouldStop) -> list[int]:
        needle = text.casefold()
        return [i for i, e in enumerate(self.dataset.examples)
                if (db_id is None or e.db_id == db_id)
                and (not needle or needle in e.question.casefold() or needle in e.query.casefold())]

    def problems(self, model: str, should_stop: ShouldStop) -> dict[int, list[str]]:
        from tui.core.data.datasets import check_gold

        found: dict[int, list[str]] = {}
        problems = [*self.dataset.problems, *check_gold(self.dataset, should_stop=should_stop)]
        for problem in problems:
            for i in self._rows_of(problem):
                found.setdefault(i, []).append(problem.message)
        return found

    def warnings(self) -> list[str]:
        return [p.message for p in self.dataset.problems if self._rows_of(p) == [-1]]

    def _rows_of(self, problem: DatasetProblem) -> list[int]:
        """The example positions a problem concerns; [-1] when no shown example does."""
        where = self._positions.get((problem.source or "", problem.index or 0))
        if problem.index is not None and where is not None:
            return [where]
        if problem.kind in DB_PROBLEMS and problem.db_id in self._by_db:
            return self._by_db[problem.db_id]
        return [-1]


class JsonlSource(ExampleSource):
    """A JSONL file of Spider examples or chat messages, through the core's lazy JsonlReader:
    an index of line offsets, lines parsed only when shown."""

    def __init__(self, path: Path) -> None:
        from tui.core.data.jsonl_reader import JsonlReader

        self.path = path
        """The JSONL file."""
        self.root = path.parent
        self.label = path.name
        self.reader = JsonlReader(path)
        """Random access by line (positions are 0-based line numbers)."""
        self._db_ids: set[str] = set()

    def known_count(self) -> int:
        return len(self.reader)

    def rows(self, indices: Sequence[int]) -> list[Row]:
        if not indices:
            return []
        first, last = min(indices), max(indices)
        if last - first + 1 == len(indices):  # a page: one read
            return [self._row(line) for line in self.reader.page(first, len(indices))]
        return [self._row(self.reader[i]) for i in indices if 0 <= i < len(self.reader)]

    def _row(self, line: LineRow) -> Row:
        where = f"line {line.line}"
        if line.error is not None:
            return Row(line.index, "", f"({line.error})", "", where)
        if not isinstance(line.data, dict):
            return Row(line.index, "", "(not a JSON object)", str(line.data)[:200], where)
        db_id = line.db_id or ""
        self._db_ids.add(db_id)
        return Row(line.index, db_id, line.question or "", line.sql or "", where,
                   tuple(line.messages) if "messages" in line.data else None)

    def db_ids(self) -> list[str]:
        return sorted(self._db_ids - {""})

    def matching(self, db_id: str | None, text: str, should_stop: ShouldStop) -> list[int]:
        return list(self.reader.filter(text, db_id).run(should_stop))

    def problems(self, model: str, should_stop: ShouldStop) -> dict[int, list[str]]:
        found: dict[int, list[str]] = {}
        first = self.rows([0])
        if first and first[0].messages is not None:
            from tui.core.data.jsonl import validate_jsonl

            report = validate_jsonl(self.path, model)
            for issue in [*report.errors, *report.warnings]:
                found.setdefault(issue.line - 1, []).append(f"{issue.field}: {issue.message}")
            return found
        from tui.core.data.datasets import load_dataset

        dataset = load_dataset(self.path)
        self._db_ids.update(dataset.db_ids)
        for problem in dataset.problems:
            at = problem.index if problem.index is not None else -1
            found.setdefault(at, []).append(problem.message)
        return found


def _last(messages: list[Any], role: str) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == role:
            content = message.get("content")
            if isinstance(content, str):
                return content
            import json

            return json.dumps(content)
    return ""


def open_source(data: Path) -> ExampleSource:
    """A Spider folder's train split (or its first split), or a JSONL/JSON file."""
    from tui.core.data.datasets import load_dataset

    if data.is_file() and data.suffix == ".jsonl":
        return JsonlSource(data)
    if data.is_file():
        return SpiderSource(load_dataset(data))
    splits = _splits(data)
    return SpiderSource.open(data, "train" if "train" in splits or not splits else splits[0])


def _splits(root: Path) -> list[str]:
    from tui.core.data.datasets import available_splits

    return available_splits(root)

