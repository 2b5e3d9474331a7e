"""A job reads each of its files once: validation parses them, training starts from that parse."""

from __future__ import annotations

import builtins
import io
import json
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.server.conftest import PAIRS, SCHEMA, chat_lines
from tests.server.helpers import wait_for
from tui.core.data.prompts import DEFAULT_TEMPLATE, render_messages
from tui.server.inprocess import start_local_server


def count_reads(monkeypatch: pytest.MonkeyPatch, folder: Path) -> list[str]:
    """Names of the files under ``folder`` opened for reading from now on (any thread)."""
    reads: list[str] = []
    real = io.open

    def counting(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | Path) and "r" in mode and "+" not in mode \
                and Path(file).parent == folder:
            reads.append(Path(file).name)
        return real(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", counting)  # Path.read_bytes and Path.open call io.open
    monkeypatch.setattr(builtins, "open", counting)
    return reads


def test_each_file_of_a_job_is_read_once(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # a byte order mark and a raw U+2028 inside a string: JSON lines end at \n only
    odd = json.dumps({"messages": render_messages(
        DEFAULT_TEMPLATE, SCHEMA, "How many singers\u2028are there?",
        "SELECT count(*) FROM singer")}, ensure_ascii=False).encode("utf-8")
    train_data = b"\xef\xbb\xbf" + chat_lines(PAIRS[:11]) + odd + b"\n"
    with start_local_server(tmp_path, speed="max") as server, openai.OpenAI(
            base_url=server.base_url, api_key=server.api_key, max_retries=0) as client:
        train = client.files.create(file=("t.jsonl", train_data), purpose="fine-tune").id
        valid = client.files.create(file=("v.jsonl", chat_lines(PAIRS[11:15])),
                                    purpose="fine-tune").id
        reads = count_reads(monkeypatch, tmp_path / "blobs" / "files")
        job = client.fine_tuning.jobs.create(model="sqltune-local-base", training_file=train,
                                             validation_file=valid,
                                             hyperparameters={"n_epochs": 1, "batch_size": 4})
        done = wait_for(client, job.id)
        assert done.status == "succeeded", done.error
        assert sorted(reads) == sorted([train, valid])
        assert done.trained_tokens and done.trained_tokens > 12 * 20
