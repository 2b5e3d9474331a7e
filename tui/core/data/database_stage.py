"""Prepare's per-database stage: a database's gold check and schema text (in a forked helper
process when that pays), and the examples each database carries through it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tui.core.data.datasets import Example, SpiderDataset, check_gold
from tui.core.data.prompts import PromptTemplate
from tui.core.data.schema import SchemaCache, SchemaError
from tui.core.sql.sqlite_ro import MissingDatabase, connect_readonly

GoldCheck = Literal["compile", "run", "off"]
GOLD_CHECKS = ("compile", "run", "off")


@dataclass(frozen=True)
class Skipped:
    """Examples left out before counting, and why."""

    reason: str
    """missing_database, empty_database, unreadable_database, schema_error, gold_failed,
    gold_timeout or malformed_example."""
    db_id: str | None
    """The database concerned."""
    examples: int
    """How many examples this entry covers."""
    message: str
    """Human-readable explanation."""
    source: str | None = None
    """Example file, for a single example."""
    index: int | None = None
    """Index in that file, for a single example."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"reason": self.reason, "db_id": self.db_id, "examples": self.examples,
                "message": self.message, "source": self.source, "index": self.index}


@dataclass(frozen=True)
class Positioned:
    """An example with its place in the dataset (examples of a database travel together)."""

    position: int
    example: Example

    @property
    def db_id(self) -> str:
        return self.example.db_id


@dataclass(frozen=True)
class DatabaseJob:
    """One database and its usable examples."""

    db_id: str
    examples: list[Positioned]


@dataclass(frozen=True)
class DatabaseReady:
    """What the database side produced for a job: its schema text, and what to skip."""

    db_id: str
    schema: str | None
    skipped: list[Skipped]


def example_key(item: Positioned) -> tuple[str, int]:
    return item.example.source, item.example.index


def database_jobs(dataset: SpiderDataset, usable: Sequence[Example]) -> list[DatabaseJob]:
    by_db: dict[str, list[Positioned]] = {}
    for position, example in enumerate(usable):
        by_db.setdefault(example.db_id, []).append(Positioned(position, example))
    return [DatabaseJob(db_id, items) for db_id, items in by_db.items()]


def prepare_database(dataset: SpiderDataset, job: DatabaseJob, cache: SchemaCache, *,
                     template: PromptTemplate, gold_check: GoldCheck,
                     gold_timeout: float) -> DatabaseReady:
    """Gold check and schema text of one database (runs in the helper process when forked).

    ``gold_check``: compile (SQLite compiles each gold query), run (execute it, at most
    ``gold_timeout`` seconds each) or off; ``template`` decides the schema's sample values."""
    examples = [item.example for item in job.examples]
    path = dataset.db_path(job.db_id)
    if path is None:
        return DatabaseReady(job.db_id, None, [Skipped(
            "missing_database", job.db_id, len(examples),
            f"{job.db_id}: database/{job.db_id}/{job.db_id}.sqlite is missing")])
    failures = check_gold_of(dataset, path, examples, gold_check, gold_timeout)
    remaining = len(examples) - len(failures)
    if remaining == 0:
        return DatabaseReady(job.db_id, None, failures)
    try:
        schema = cache.schema_text(path, template.sample_values,
                                   sample_rows=template.sample_rows)
    except SchemaError as error:
        return DatabaseReady(job.db_id, None, [*failures, Skipped(
            "schema_error", job.db_id, remaining, f"{job.db_id}: {error}")])
    return DatabaseReady(job.db_id, schema, failures)


def check_gold_of(dataset: SpiderDataset, path: Path, examples: Sequence[Example],
                  gold_check: GoldCheck, gold_timeout: float) -> list[Skipped]:
    if gold_check == "off":
        return []
    if gold_check == "run":
        wanted = {(e.source, e.index) for e in examples}
        db_ids = {e.db_id for e in examples}
        return [Skipped(p.kind, p.db_id, 1, p.message, p.source, p.index)
                for p in check_gold(dataset, timeout=gold_timeout, db_ids=db_ids)
                if (p.source, p.index) in wanted]
    return compile_gold(path, examples)


def compile_gold(path: Path, examples: Sequence[Example]) -> list[Skipped]:
    """Gold queries SQLite cannot compile (no such table or column, syntax): EXPLAIN, no run."""
    failures = []
    try:
        connection = connect_readonly(path)
    except (MissingDatabase, sqlite3.Error) as error:
        return [Skipped("gold_failed", e.db_id, 1, f"gold SQL not checked: {error}", e.source,
                        e.index) for e in examples]
    try:
        for example in examples:
            try:
                connection.execute("EXPLAIN " + example.query)
            except (sqlite3.Error, ValueError, OverflowError) as error:
                failures.append(Skipped("gold_failed", example.db_id, 1,
                                        f"gold SQL fails: {error}", example.source,
                                        example.index))
    finally:
        connection.close()
    return failures
