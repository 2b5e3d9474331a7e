"""The server's state: one SQLite database in WAL mode beside the blob folder."""

from __future__ import annotations

import json
import secrets
import sqlite3
import string
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.server.errors import bad_request

_ALPHABET = string.ascii_letters + string.digits
_quote = json.encoder.encode_basestring_ascii

SCHEMA = """
CREATE TABLE IF NOT EXISTS files(
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, created_at INTEGER NOT NULL,
    bytes INTEGER NOT NULL, filename TEXT NOT NULL, purpose TEXT NOT NULL,
    expires_at INTEGER);
CREATE TABLE IF NOT EXISTS uploads(
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, filename TEXT NOT NULL, purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL, mime_type TEXT NOT NULL, status TEXT NOT NULL, file_id TEXT);
CREATE TABLE IF NOT EXISTS upload_parts(
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, upload_id TEXT NOT NULL,
    created_at INTEGER NOT NULL, bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs(
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, status TEXT NOT NULL,
    doc TEXT NOT NULL, private TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events(
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, job_id TEXT NOT NULL,
    created_at INTEGER NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL, type TEXT NOT NULL,
    data TEXT);
CREATE INDEX IF NOT EXISTS events_by_job ON events(job_id, seq);
CREATE TABLE IF NOT EXISTS checkpoints(
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, job_id TEXT NOT NULL,
    created_at INTEGER NOT NULL, step INTEGER NOT NULL, model TEXT UNIQUE NOT NULL,
    metrics TEXT NOT NULL, engine TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models(
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, created INTEGER NOT NULL,
    owned_by TEXT NOT NULL, job_id TEXT NOT NULL, engine TEXT NOT NULL, blob TEXT NOT NULL);
"""


def new_id(prefix: str, length: int = 24) -> str:
    """A random OpenAI-looking id such as ``ftjob-abc...``."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def now() -> int:
    """Unix seconds, as OpenAI's ``created_at`` fields."""
    return int(time.time())


@dataclass
class Page:
    """One cursor page of API objects."""

    data: list[dict[str, Any]]
    """The objects, in the order the endpoint lists them."""
    has_more: bool
    """Whether a page after this one exists."""

    def body(self, *, with_ids: bool = False) -> dict[str, Any]:
        """OpenAI's list envelope; ``first_id``/``last_id`` where the endpoint has them."""
        out: dict[str, Any] = {"object": "list", "data": self.data, "has_more": self.has_more}
        if with_ids:
            out["first_id"] = self.data[0]["id"] if self.data else None
            out["last_id"] = self.data[-1]["id"] if self.data else None
        return out


@dataclass
class JobRecord:
    """A stored fine-tuning job: the public object and the server's private bookkeeping."""

    doc: dict[str, Any]
    """The ``fine_tuning.job`` object as the API returns it."""
    private: dict[str, Any]
    """Engine name, resolved counts, resume snapshot step and the like."""

    @property
    def id(self) -> str:
        """The job id."""
        return str(self.doc["id"])

    @property
    def status(self) -> str:
        """The job status."""
        return str(self.doc["status"])


class Store:
    """Thread-safe access to the server database (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        """The SQLite file."""
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
            return row

    def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            return self._db.execute(sql, params).rowcount

    def _page(self, table: str, where: str, params: Sequence[Any], after: str | None,
              limit: int, *, desc: bool = True) -> tuple[list[sqlite3.Row], bool]:
        clauses, args = [where], list(params)
        if after:
            anchor = self._one(f"SELECT seq FROM {table} WHERE id = ?", (after,))
            if anchor is None:
                raise bad_request(f"No object with id '{after}' to page after.", param="after")
            clauses.append("seq < ?" if desc else "seq > ?")
            args.append(anchor["seq"])
        order = "DESC" if desc else "ASC"
        rows = self._all(f"SELECT * FROM {table} WHERE {' AND '.join(clauses)} "
                         f"ORDER BY seq {order} LIMIT ?", [*args, limit + 1])
        return rows[:limit], len(rows) > limit

    # files -----------------------------------------------------------------------------
    @staticmethod
    def file_object(row: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
        """The ``file`` object of a stored row."""
        return {"id": row["id"], "object": "file", "bytes": row["bytes"],
                "created_at": row["created_at"], "expires_at": row["expires_at"],
                "filename": row["filename"], "purpose": row["purpose"],
                "status": "processed", "status_details": None}

    def add_file(self, file_id: str, *, size: int, filename: str, purpose: str,
                 expires_at: int | None = None) -> dict[str, Any]:
        """Record a file whose blob is already in place; return its object."""
        created = now()
        self._run("INSERT INTO files(id, created_at, bytes, filename, purpose, expires_at) "
                  "VALUES (?, ?, ?, ?, ?, ?)", (file_id, created, size, filename, purpose,
                                                 expires_at))
        return self.file_object({"id": file_id, "bytes": size, "created_at": created,
                                 "expires_at": expires_at, "filename": filename,
                                 "purpose": purpose})

    def get_file(self, file_id: str) -> dict[str, Any] | None:
        """The file object, or None."""
        row = self._one("SELECT * FROM files WHERE id = ?", (file_id,))
        return self.file_object(row) if row else None

    def list_files(self, *, purpose: str | None, after: str | None, limit: int,
                   desc: bool) -> Page:
        """Files, newest first unless ``desc`` is False."""
        where, params = ("purpose = ?", [purpose]) if purpose else ("1", [])
        rows, more = self._page("files", where, params, after, limit, desc=desc)
        return Page([self.file_object(row) for row in rows], more)

    def delete_file(self, file_id: str) -> bool:
        """Forget a file; True when it existed."""
        return self._run("DELETE FROM files WHERE id = ?", (file_id,)) > 0

    # uploads ---------------------------------------------------------------------------
    def add_upload(self, upload: dict[str, Any], mime_type: str) -> None:
        """Record a pending upload."""
        self._run("INSERT INTO uploads(id, created_at, expires_at, filename, purpose, bytes, "
                  "mime_type, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  (upload["id"], upload["created_at"], upload["expires_at"], upload["filename"],
                   upload["purpose"], upload["bytes"], mime_type, upload["status"]))

    def get_upload(self, upload_id: str) -> dict[str, Any] | None:
        """The stored upload row as a dict, or None."""
        row = self._one("SELECT * FROM uploads WHERE id = ?", (upload_id,))
        return dict(row) if row else None

    def set_upload_status(self, upload_id: str, status: str, file_id: str | None = None) -> None:
        """Move an upload to ``status`` (and link its file once completed)."""
        self._run("UPDATE uploads SET status = ?, file_id = ? WHERE id = ?",
                  (status, file_id, upload_id))

    def add_part(self, part_id: str, upload_id: str, size: int) -> int:
        """Record a part whose blob is in place; return its created_at."""
        created = now()
        self._run("INSERT INTO upload_parts(id, upload_id, created_at, bytes) VALUES (?,?,?,?)",
                  (part_id, upload_id, created, size))
        return created

    def parts(self, upload_id: str) -> dict[str, int]:
        """Part id -> size for an upload."""
        rows = self._all("SELECT id, bytes FROM upload_parts WHERE upload_id = ?", (upload_id,))
        return {row["id"]: row["bytes"] for row in rows}

    def delete_parts(self, upload_id: str) -> list[str]:
        """Forget an upload's parts; return their ids (for blob cleanup)."""
        ids = list(self.parts(upload_id))
        self._run("DELETE FROM upload_parts WHERE upload_id = ?", (upload_id,))
        return ids

    # jobs ------------------------------------------------------------------------------
    def add_job(self, doc: dict[str, Any], private: dict[str, Any]) -> JobRecord:
        """Record a new job."""
        self._run("INSERT INTO jobs(id, status, doc, private) VALUES (?, ?, ?, ?)",
                  (doc["id"], doc["status"], json.dumps(doc), json.dumps(private)))
        return JobRecord(doc, private)

    def get_job(self, job_id: str) -> JobRecord | None:
        """The job, or None."""
        row = self._one("SELECT doc, private FROM jobs WHERE id = ?", (job_id,))
        return JobRecord(json.loads(row["doc"]), json.loads(row["private"])) if row else None

    def save_job(self, job: JobRecord) -> None:
        """Write back a job's object and bookkeeping."""
        self._run("UPDATE jobs SET status = ?, doc = ?, private = ? WHERE id = ?",
                  (job.doc["status"], json.dumps(job.doc), json.dumps(job.private), job.id))

    def list_jobs(self, *, after: str | None, limit: int,
                  metadata: dict[str, str] | None, null_metadata: bool = False) -> Page:
        """Jobs newest first, optionally only those whose metadata has every given pair."""
        if not metadata and not null_metadata:
            rows, more = self._page("jobs", "1", [], after, limit)
            return Page([json.loads(row["doc"]) for row in rows], more)
        rows, _ = self._page("jobs", "1", [], after, 1_000_000)
        docs = [json.loads(row["doc"]) for row in rows]
        if null_metadata:
            docs = [doc for doc in docs if not doc.get("metadata")]
        else:
            wanted = metadata or {}
            docs = [doc for doc in docs
                    if all((doc.get("metadata") or {}).get(k) == v for k, v in wanted.items())]
        return Page(docs[:limit], len(docs) > limit)

    def jobs_in(self, statuses: Iterable[str]) -> list[JobRecord]:
        """Jobs whose status is one of ``statuses``, oldest first."""
        wanted = list(statuses)
        marks = ",".join("?" * len(wanted))
        rows = self._all(f"SELECT doc, private FROM jobs WHERE status IN ({marks}) ORDER BY seq",
                         wanted)
        return [JobRecord(json.loads(row["doc"]), json.loads(row["private"])) for row in rows]

    # events ----------------------------------------------------------------------------
    @staticmethod
    def event_object(row: sqlite3.Row) -> dict[str, Any]:
        """The ``fine_tuning.job.event`` object of a stored row."""
        return {"id": row["id"], "object": "fine_tuning.job.event",
                "created_at": row["created_at"], "level": row["level"],
                "message": row["message"], "type": row["type"],
                "data": json.loads(row["data"]) if row["data"] else None}

    def add_event(self, job_id: str, message: str, *, level: str = "info",
                  type: str = "message", data: dict[str, Any] | None = None) -> str:
        """Append an event to a job's log; return its id."""
        event_id = new_id("ftevent-")
        self._run("INSERT INTO events(id, job_id, created_at, level, message, type, data) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (event_id, job_id, now(), level, message, type,
                   json.dumps(data) if data is not None else None))
        return event_id

    def list_events(self, job_id: str, *, after: str | None, limit: int) -> Page:
        """A job's events, newest first."""
        rows, more = self._page("events", "job_id = ?", [job_id], after, limit)
        return Page([self.event_object(row) for row in rows], more)

    def list_events_json(self, job_id: str, *, after: str | None, limit: int) -> str:
        """``list_events(...).body()`` already serialised, each stored ``data`` JSON spliced in
        as it is (every follower's poll lands here: no per-event decode and re-encode)."""
        rows, more = self._page("events", "job_id = ?", [job_id], after, limit)
        items = ",".join(
            f'{{"id":{_quote(row["id"])},"object":"fine_tuning.job.event",'
            f'"created_at":{int(row["created_at"])},"level":{_quote(row["level"])},'
            f'"message":{_quote(row["message"])},"type":{_quote(row["type"])},'
            f'"data":{row["data"] or "null"}}}' for row in rows)
        return f'{{"object":"list","data":[{items}],"has_more":{"true" if more else "false"}}}'

    def metrics(self, job_id: str) -> list[dict[str, Any]]:
        """The data of a job's metrics events, oldest first."""
        rows = self._all("SELECT data FROM events WHERE job_id = ? AND type = 'metrics' "
                         "ORDER BY seq", (job_id,))
        return [json.loads(row["data"]) for row in rows]

    def last_metrics_step(self, job_id: str) -> int:
        """The highest step a job has reported a metrics event for (0 before the first)."""
        row = self._one("SELECT max(CAST(json_extract(data, '$.step') AS INTEGER)) AS step "
                        "FROM events WHERE job_id = ? AND type = 'metrics'", (job_id,))
        return int(row["step"]) if row is not None and row["step"] is not None else 0

    # checkpoints -----------------------------------------------------------------------
    @staticmethod
    def checkpoint_object(row: sqlite3.Row) -> dict[str, Any]:
        """The ``fine_tuning.job.checkpoint`` object of a stored row."""
        return {"id": row["id"], "object": "fine_tuning.job.checkpoint",
                "created_at": row["created_at"], "fine_tuned_model_checkpoint": row["model"],
                "fine_tuning_job_id": row["job_id"], "metrics": json.loads(row["metrics"]),
                "step_number": row["step"]}

    def add_checkpoint(self, checkpoint_id: str, job_id: str, step: int, model: str,
                       metrics: dict[str, Any], engine: str) -> None:
        """Record a checkpoint whose state blob is in place."""
        self._run("INSERT INTO checkpoints(id, job_id, created_at, step, model, metrics, engine) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (checkpoint_id, job_id, now(), step, model, json.dumps(metrics), engine))

    def list_checkpoints(self, job_id: str, *, after: str | None, limit: int) -> Page:
        """A job's checkpoints, newest first."""
        rows, more = self._page("checkpoints", "job_id = ?", [job_id], after, limit)
        return Page([self.checkpoint_object(row) for row in rows], more)

    def checkpoint_ids(self, job_id: str) -> list[str]:
        """A job's checkpoint ids, newest first."""
        rows = self._all("SELECT id FROM checkpoints WHERE job_id = ? ORDER BY seq DESC",
                         (job_id,))
        return [row["id"] for row in rows]

    def delete_checkpoint(self, checkpoint_id: str) -> None:
        """Forget a checkpoint."""
        self._run("DELETE FROM checkpoints WHERE id = ?", (checkpoint_id,))

    def checkpoint_by_model(self, model: str) -> tuple[str, str] | None:
        """(checkpoint id, engine) of the checkpoint model called ``model``."""
        row = self._one("SELECT id, engine FROM checkpoints WHERE model = ?", (model,))
        return (row["id"], row["engine"]) if row else None

    # models ----------------------------------------------------------------------------
    def add_model(self, model_id: str, *, owned_by: str, job_id: str, engine: str,
                  blob: str) -> None:
        """Record a fine-tuned model whose state blob is in place."""
        self._run("INSERT OR REPLACE INTO models(id, created, owned_by, job_id, engine, blob) "
                  "VALUES (?, ?, ?, ?, ?, ?)", (model_id, now(), owned_by, job_id, engine, blob))

    def get_model(self, model_id: str) -> dict[str, Any] | None:
        """The stored fine-tuned model row, or None."""
        row = self._one("SELECT * FROM models WHERE id = ?", (model_id,))
        return dict(row) if row else None

    def list_models(self) -> list[dict[str, Any]]:
        """Fine-tuned model rows, oldest first."""
        return [dict(row) for row in self._all("SELECT * FROM models ORDER BY seq")]

    def delete_model(self, model_id: str) -> bool:
        """Forget a fine-tuned model; True when it existed."""
        return self._run("DELETE FROM models WHERE id = ?", (model_id,)) > 0
