"""A local SQLite record of what the user did: datasets, uploads, jobs, models, evaluations."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.core.paths import data_dir

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY, created_at REAL NOT NULL, path TEXT NOT NULL, split TEXT NOT NULL,
    template_json TEXT NOT NULL, budget_json TEXT, jsonl_path TEXT, jsonl_sha256 TEXT,
    template_name TEXT, template_fingerprint TEXT);
CREATE TABLE IF NOT EXISTS uploads (
    id INTEGER PRIMARY KEY, created_at REAL NOT NULL, provider TEXT NOT NULL,
    file_id TEXT NOT NULL, local_path TEXT NOT NULL, sha256 TEXT NOT NULL,
    purpose TEXT NOT NULL, bytes INTEGER NOT NULL, UNIQUE (provider, file_id));
CREATE INDEX IF NOT EXISTS uploads_sha ON uploads (provider, sha256);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY, created_at REAL NOT NULL, provider TEXT NOT NULL,
    job_id TEXT NOT NULL, base_model TEXT NOT NULL, training_file TEXT NOT NULL,
    validation_file TEXT, template_json TEXT, dataset_path TEXT, budget_json TEXT,
    status TEXT, fine_tuned_model TEXT, template_name TEXT, template_fingerprint TEXT,
    UNIQUE (provider, job_id));
CREATE TABLE IF NOT EXISTS models (
    model TEXT NOT NULL, provider TEXT NOT NULL, job_id TEXT NOT NULL, kind TEXT NOT NULL,
    PRIMARY KEY (provider, model));
CREATE INDEX IF NOT EXISTS models_name ON models (model);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY, created_at REAL NOT NULL, model TEXT NOT NULL, provider TEXT,
    split TEXT NOT NULL, ex REAL NOT NULL, cost_per_question REAL,
    seconds_per_question REAL, by_hardness_json TEXT NOT NULL, questions INTEGER);
"""

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: tuple(f"ALTER TABLE {table} ADD COLUMN {column} TEXT"
             for table in ("datasets", "jobs")
             for column in ("template_name", "template_fingerprint")),
}
"""Statements that bring a file of the previous version to this one (a fresh file gets _SCHEMA)."""

_CHECKPOINT_SUFFIX = re.compile(r":ckpt-step-\d+$")


class HistoryError(Exception):
    """The history database is unusable (newer schema, corrupt file, locked too long)."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class DatasetRecord:
    """A prepared dataset: where from, which template and budget, which JSONL came out."""

    id: int
    created_at: float
    path: str
    split: str
    template: dict[str, Any]
    budget: dict[str, Any] | None
    jsonl_path: str | None
    jsonl_sha256: str | None
    template_name: str | None = None
    """The template's preset name (``rich``, ``compact+custom``...), when it was given."""
    template_fingerprint: str | None = None
    """PromptTemplate.fingerprint() of ``template``."""


@dataclass(frozen=True)
class UploadRecord:
    """A file uploaded to a provider."""

    id: int
    created_at: float
    provider: str
    file_id: str
    local_path: str
    sha256: str
    purpose: str
    bytes: int


@dataclass(frozen=True)
class JobRecord:
    """A fine-tuning job created from this machine and what it was made from."""

    id: int
    created_at: float
    provider: str
    job_id: str
    base_model: str
    training_file: str
    validation_file: str | None
    template: dict[str, Any] | None
    dataset_path: str | None
    budget: dict[str, Any] | None
    status: str | None
    fine_tuned_model: str | None
    template_name: str | None = None
    """The template's preset name, when known."""
    template_fingerprint: str | None = None
    """PromptTemplate.fingerprint() of the template (known even when the template is not)."""


@dataclass(frozen=True)
class EvaluationRecord:
    """One evaluation run's headline numbers."""

    id: int
    created_at: float
    model: str
    provider: str | None
    split: str
    ex: float
    cost_per_question: float | None
    seconds_per_question: float | None
    by_hardness: dict[str, Any]
    questions: int | None


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class History:
    """The store; safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: Path | None = None, *, clock: Any = time.time) -> None:
        self.path = path or data_dir() / "history.sqlite3"
        """The SQLite file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
            self._db.row_factory = sqlite3.Row
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise HistoryError(f"history database {self.path} is unusable: {error}") from None

    def _migrate(self) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryError(f"{self.path} was written by a newer sqltune (schema {version})")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        if version < SCHEMA_VERSION:
            with db:
                if version == 0:
                    db.executescript(_SCHEMA)
                else:
                    for step in range(version + 1, SCHEMA_VERSION + 1):
                        for statement in _MIGRATIONS[step]:
                            db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        try:
            with self._lock, self._db:
                cursor = self._db.execute(sql, params)
                return int(cursor.lastrowid or 0)
        except sqlite3.Error as error:  # locked past the timeout, disk full, corrupt page...
            raise HistoryError(f"history database {self.path}: {error}") from None

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            with self._lock:
                return list(self._db.execute(sql, params).fetchall())
        except sqlite3.Error as error:
            raise HistoryError(f"history database {self.path}: {error}") from None

    # --- datasets --------------------------------------------------------------------------

    def record_dataset(self, path: Path | str, split: str, template: dict[str, Any],
                       budget: dict[str, Any] | None = None, jsonl_path: Path | None = None,
                       jsonl_sha256: str | None = None, *, template_name: str | None = None,
                       template_fingerprint: str | None = None) -> DatasetRecord:
        """Remember a prepared dataset (the JSONL's sha256 is computed when not given)."""
        if jsonl_path is not None and jsonl_sha256 is None and jsonl_path.is_file():
            jsonl_sha256 = sha256_file(jsonl_path)
        row_id = self._write(
            "INSERT INTO datasets (created_at, path, split, template_json, budget_json,"
            " jsonl_path, jsonl_sha256, template_name, template_fingerprint)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self._clock(), str(path), split, _json(template), _json(budget),
             None if jsonl_path is None else str(jsonl_path), jsonl_sha256, template_name,
             template_fingerprint))
        return self._datasets("WHERE id = ?", (row_id,))[0]

    def datasets(self) -> list[DatasetRecord]:
        """Every prepared dataset, newest first."""
        return self._datasets("", ())

    def dataset_for_jsonl(self, sha256: str) -> DatasetRecord | None:
        """The newest dataset whose JSONL has this sha256."""
        found = self._datasets("WHERE jsonl_sha256 = ?", (sha256,))
        return found[0] if found else None

    def dataset_for_fingerprint(self, fingerprint: str) -> DatasetRecord | None:
        """The newest dataset prepared with the template of this fingerprint."""
        found = self._datasets("WHERE template_fingerprint = ?", (fingerprint,))
        return found[0] if found else None

    def _datasets(self, where: str, params: tuple[Any, ...]) -> list[DatasetRecord]:
        rows = self._rows(f"SELECT * FROM datasets {where} ORDER BY id DESC", params)
        return [DatasetRecord(r["id"], r["created_at"], r["path"], r["split"],
                              _load(r["template_json"]), _load(r["budget_json"]),
                              r["jsonl_path"], r["jsonl_sha256"], r["template_name"],
                              r["template_fingerprint"]) for r in rows]

    # --- uploads ---------------------------------------------------------------------------

    def record_upload(self, provider: str, file_id: str, local_path: Path, *,
                      sha256: str | None = None, purpose: str = "fine-tune",
                      size: int | None = None) -> UploadRecord:
        """Remember an uploaded file (sha256 and size are read from disk when not given)."""
        sha256 = sha256 or sha256_file(local_path)
        size = local_path.stat().st_size if size is None else size
        self._write(
            "INSERT OR REPLACE INTO uploads (created_at, provider, file_id, local_path, sha256,"
            " purpose, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self._clock(), provider, file_id, str(local_path), sha256, purpose, size))
        return self._uploads("WHERE provider = ? AND file_id = ?", (provider, file_id))[0]

    def uploads(self, provider: str | None = None) -> list[UploadRecord]:
        """Uploads, newest first, optionally for one provider."""
        if provider is None:
            return self._uploads("", ())
        return self._uploads("WHERE provider = ?", (provider,))

    def upload(self, provider: str, file_id: str) -> UploadRecord | None:
        """The upload that became this file id on this provider."""
        found = self._uploads("WHERE provider = ? AND file_id = ?", (provider, file_id))
        return found[0] if found else None

    def find_upload(self, provider: str, sha256: str) -> UploadRecord | None:
        """A previous upload of identical bytes to this provider (to offer reuse)."""
        found = self._uploads("WHERE provider = ? AND sha256 = ?", (provider, sha256))
        return found[0] if found else None

    def _uploads(self, where: str, params: tuple[Any, ...]) -> list[UploadRecord]:
        rows = self._rows(f"SELECT * FROM uploads {where} ORDER BY id DESC", params)
        return [UploadRecord(r["id"], r["created_at"], r["provider"], r["file_id"],
                             r["local_path"], r["sha256"], r["purpose"], r["bytes"])
                for r in rows]

    # --- jobs and models -------------------------------------------------------------------

    def record_job(self, provider: str, job_id: str, base_model: str, training_file: str, *,
                   validation_file: str | None = None, template: dict[str, Any] | None = None,
                   dataset_path: Path | str | None = None,
                   budget: dict[str, Any] | None = None, template_name: str | None = None,
                   template_fingerprint: str | None = None) -> JobRecord:
        """Remember a job this machine created (or attached to) and what it came from."""
        self._write(
            "INSERT INTO jobs (created_at, provider, job_id, base_model, training_file,"
            " validation_file, template_json, dataset_path, budget_json, template_name,"
            " template_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (provider, job_id) DO UPDATE SET base_model = excluded.base_model,"
            " training_file = excluded.training_file,"
            " validation_file = coalesce(excluded.validation_file, validation_file),"
            " template_json = coalesce(excluded.template_json, template_json),"
            " dataset_path = coalesce(excluded.dataset_path, dataset_path),"
            " budget_json = coalesce(excluded.budget_json, budget_json),"
            " template_name = coalesce(excluded.template_name, template_name),"
            " template_fingerprint = coalesce(excluded.template_fingerprint,"
            " template_fingerprint)",
            (self._clock(), provider, job_id, base_model, training_file, validation_file,
             _json(template), None if dataset_path is None else str(dataset_path),
             _json(budget), template_name, template_fingerprint))
        record = self.job(provider, job_id)
        assert record is not None
        return record

    def record_job_status(self, provider: str, job_id: str, status: str,
                          fine_tuned_model: str | None = None) -> None:
        """Update a job's status; a fine-tuned model name becomes findable by model."""
        self._write("UPDATE jobs SET status = ?, fine_tuned_model = coalesce(?, fine_tuned_model)"
                    " WHERE provider = ? AND job_id = ?",
                    (status, fine_tuned_model, provider, job_id))
        if fine_tuned_model:
            self.record_model(provider, job_id, fine_tuned_model)

    def record_model(self, provider: str, job_id: str, model: str,
                     kind: str = "fine_tuned") -> None:
        """Map a model (fine-tuned or checkpoint) name to the job that made it."""
        self._write("INSERT OR REPLACE INTO models (model, provider, job_id, kind)"
                    " VALUES (?, ?, ?, ?)", (model, provider, job_id, kind))

    def job(self, provider: str, job_id: str) -> JobRecord | None:
        """One job by provider and id."""
        found = self._jobs("WHERE provider = ? AND job_id = ?", (provider, job_id))
        return found[0] if found else None

    def jobs(self, provider: str | None = None) -> list[JobRecord]:
        """Jobs, newest first."""
        if provider is None:
            return self._jobs("", ())
        return self._jobs("WHERE provider = ?", (provider,))

    def job_for_model(self, model: str, provider: str | None = None) -> JobRecord | None:
        """The job that produced a fine-tuned model or one of its checkpoints."""
        for name in dict.fromkeys((model, _CHECKPOINT_SUFFIX.sub("", model))):
            sql = "SELECT provider, job_id FROM models WHERE model = ?"
            params: tuple[Any, ...] = (name,)
            if provider is not None:
                sql, params = sql + " AND provider = ?", (name, provider)
            for row in self._rows(sql, params):
                record = self.job(row["provider"], row["job_id"])
                if record is not None:
                    return record
            found = self._jobs("WHERE fine_tuned_model = ?" + (
                " AND provider = ?" if provider else ""),
                (name, provider) if provider else (name,))
            if found:
                return found[0]
        return None

    def _jobs(self, where: str, params: tuple[Any, ...]) -> list[JobRecord]:
        rows = self._rows(f"SELECT * FROM jobs {where} ORDER BY id DESC", params)
        return [JobRecord(r["id"], r["created_at"], r["provider"], r["job_id"], r["base_model"],
                          r["training_file"], r["validation_file"], _load(r["template_json"]),
                          r["dataset_path"], _load(r["budget_json"]), r["status"],
                          r["fine_tuned_model"], r["template_name"],
                          r["template_fingerprint"]) for r in rows]

    # --- evaluations -----------------------------------------------------------------------

    def record_evaluation(self, model: str, split: str, ex: float, *,
                          by_hardness: dict[str, Any], provider: str | None = None,
                          cost_per_question: float | None = None,
                          seconds_per_question: float | None = None,
                          questions: int | None = None) -> EvaluationRecord:
        """Remember an evaluation's EX, $/question, s/question and per-hardness breakdown."""
        row_id = self._write(
            "INSERT INTO evaluations (created_at, model, provider, split, ex, cost_per_question,"
            " seconds_per_question, by_hardness_json, questions) VALUES (?,?,?,?,?,?,?,?,?)",
            (self._clock(), model, provider, split, ex, cost_per_question, seconds_per_question,
             _json(by_hardness), questions))
        return self._evaluations("WHERE id = ?", (row_id,))[0]

    def evaluations(self, model: str | None = None) -> list[EvaluationRecord]:
        """Evaluations, newest first, optionally for one model."""
        if model is None:
            return self._evaluations("", ())
        return self._evaluations("WHERE model = ?", (model,))

    def _evaluations(self, where: str, params: tuple[Any, ...]) -> list[EvaluationRecord]:
        rows = self._rows(f"SELECT * FROM evaluations {where} ORDER BY id DESC", params)
        return [EvaluationRecord(r["id"], r["created_at"], r["model"], r["provider"], r["split"],
                                 r["ex"], r["cost_per_question"], r["seconds_per_question"],
                                 _load(r["by_hardness_json"]), r["questions"]) for r in rows]
