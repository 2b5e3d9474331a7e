"""The local history store: a real SQLite file under data_dir()."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from tui.core.data.prompts import DEFAULT_TEMPLATE, PromptTemplate
from tui.core.history import SCHEMA_VERSION, History, HistoryError
from tui.core.paths import data_dir

MODEL = "ft:gpt-4.1-mini-2025-04-14:acme:spider:AbC123"


@pytest.fixture
def history() -> History:
    store = History()
    yield store
    store.close()


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text('{"messages": []}\n', encoding="utf-8")
    return path


def test_lives_under_data_dir_with_wal_and_a_schema_version(history: History) -> None:
    assert history.path.parent == data_dir()
    with sqlite3.connect(history.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_newer_schema_is_refused(history: History) -> None:
    with sqlite3.connect(history.path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(HistoryError, match="newer sqltune"):
        History(history.path)


def test_dataset_upload_job_model_chain(history: History, jsonl: Path) -> None:
    template = replace(DEFAULT_TEMPLATE, sample_values=0).to_dict()
    digest = hashlib.sha256(jsonl.read_bytes()).hexdigest()
    dataset = history.record_dataset("/data/spider", "train", template,
                                     budget={"epochs": 3, "trained_tokens": 1200},
                                     jsonl_path=jsonl)
    assert dataset.jsonl_sha256 == digest
    upload = history.record_upload("local", "file-1", jsonl)
    assert (upload.sha256, upload.bytes) == (digest, jsonl.stat().st_size)
    assert history.find_upload("local", digest) == upload
    assert history.find_upload("openai", digest) is None

    history.record_job("local", "ftjob-1", "gpt-4.1-mini-2025-04-14", "file-1",
                       validation_file="file-2", template=template, dataset_path="/data/spider",
                       budget={"epochs": 3})
    history.record_job_status("local", "ftjob-1", "succeeded", MODEL)
    history.record_model("local", "ftjob-1", f"{MODEL}:ckpt-step-40", kind="checkpoint")

    job = history.job("local", "ftjob-1")
    assert job is not None and job.fine_tuned_model == MODEL and job.status == "succeeded"
    def template_for_model(model: str) -> dict[str, object] | None:
        record = history.job_for_model(model)
        return None if record is None else record.template

    assert template_for_model(MODEL) == template
    assert PromptTemplate.from_dict(template_for_model(MODEL) or {}).sample_values == 0
    assert template_for_model(f"{MODEL}:ckpt-step-40") == template
    # a checkpoint name never recorded still leads back to its job
    assert template_for_model(f"{MODEL}:ckpt-step-80") == template
    assert template_for_model("gpt-4o") is None
    assert history.dataset_for_jsonl(digest) == dataset


def test_re_recording_a_job_keeps_what_was_known(history: History) -> None:
    history.record_job("p", "j", "m", "f", template={"a": 1}, dataset_path="/d")
    again = history.record_job("p", "j", "m", "f")  # attached later without local context
    assert again.template == {"a": 1} and again.dataset_path == "/d"
    assert len(history.jobs()) == 1


def test_evaluations(history: History) -> None:
    history.record_evaluation(MODEL, "dev", 0.61, by_hardness={"easy": 0.8, "hard": 0.4},
                              cost_per_question=0.0002, seconds_per_question=0.4, questions=48)
    history.record_evaluation("gpt-4o", "dev", 0.55, by_hardness={})
    assert [e.model for e in history.evaluations()] == ["gpt-4o", MODEL]
    (mine,) = history.evaluations(MODEL)
    assert mine.by_hardness == {"easy": 0.8, "hard": 0.4} and mine.questions == 48


def test_survives_reopening(history: History, jsonl: Path) -> None:
    history.record_upload("local", "file-9", jsonl)
    history.close()
    with History() as reopened:
        assert [u.file_id for u in reopened.uploads()] == ["file-9"]


def test_a_version_1_file_gains_the_template_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # the datasets and jobs tables as schema 1 made them
        db.executescript("""
            CREATE TABLE datasets (id INTEGER PRIMARY KEY, created_at REAL NOT NULL,
                path TEXT NOT NULL, split TEXT NOT NULL, template_json TEXT NOT NULL,
                budget_json TEXT, jsonl_path TEXT, jsonl_sha256 TEXT);
            CREATE TABLE jobs (id INTEGER PRIMARY KEY, created_at REAL NOT NULL,
                provider TEXT NOT NULL, job_id TEXT NOT NULL, base_model TEXT NOT NULL,
                training_file TEXT NOT NULL, validation_file TEXT, template_json TEXT,
                dataset_path TEXT, budget_json TEXT, status TEXT, fine_tuned_model TEXT,
                UNIQUE (provider, job_id));
            INSERT INTO jobs (created_at, provider, job_id, base_model, training_file)
                VALUES (1, 'local', 'ftjob-old', 'base', 'file-1');
            PRAGMA user_version = 1;""")
    with History(path) as history:
        old = history.job("local", "ftjob-old")
        assert old is not None and old.template_fingerprint is None
        history.record_job("local", "ftjob-old", "base", "file-1", template_name="rich",
                           template_fingerprint="abc123")
        again = history.job("local", "ftjob-old")
        assert again is not None and (again.template_name, again.template_fingerprint) == (
            "rich", "abc123")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_failing_statement_is_a_history_error(tmp_path: Path) -> None:
    history = History(tmp_path / "h.sqlite3")
    history.close()  # any sqlite3 error (locked, full, closed) surfaces as the store's own type
    with pytest.raises(HistoryError, match=r"h\.sqlite3"):
        history.jobs()
    with pytest.raises(HistoryError):
        history.record_model("p", "j", "m")
