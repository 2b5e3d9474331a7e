"""Shared by the evaluation tests: a model fine-tuned on the demo data by the local server."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import openai

from tui.core.data.jsonl import validate_jsonl
from tui.core.data.prepare import PrepareOptions, prepare
from tui.core.paths import demo_dir
from tui.server.inprocess import LocalServer

BASE = "gpt-4.1-mini-2025-04-14"
"""The base model the demo model is tuned from (an alias of the local server's base)."""


def demo_training_file(folder: Path) -> Path:
    """The demo train split as chat JSONL, through the same prepare + writer as the CLI."""
    result = prepare(demo_dir(), PrepareOptions(model=BASE, parallel=False))
    path = folder / "demo-train.jsonl"
    written = result.write(path)
    assert written.examples == len(result.examples) > 100
    assert validate_jsonl(path, BASE).ok  # what the app checks before an upload
    return path


def tune_demo_model(server: LocalServer, folder: Path, timeout: float = 120.0) -> str:
    """Upload the demo training file, run a job to the end, return the fine-tuned model."""
    client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=8)
    try:
        upload = client.files.create(file=demo_training_file(folder), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=BASE, training_file=upload.id)
        deadline = time.monotonic() + timeout
        while job.status not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, f"job {job.id} still {job.status}"
            time.sleep(0.05)
            job = client.fine_tuning.jobs.retrieve(job.id)
        assert job.status == "succeeded", job.error
        assert job.fine_tuned_model
        return job.fine_tuned_model
    finally:
        client.close()


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` (relative path -> digest)."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}
