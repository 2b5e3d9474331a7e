"""Persistence: a restart in the middle of a job resumes it; a kill never leaves half a file."""

from __future__ import annotations

import csv
import io
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import openai

from tests.server.conftest import PAIRS, chat_lines
from tests.server.helpers import ServerProcess, all_events, data, wait_for, wait_for_event
from tui.server.inprocess import start_local_server


def _resume_point(client: openai.OpenAI, job_id: str) -> tuple[int, list[int]]:
    """The step the job resumed from, and the metric steps logged after resuming."""
    events = all_events(client, job_id)
    marks = [i for i, e in enumerate(events) if e.message.startswith("The server restarted")]
    assert len(marks) == 1, [e.message for e in events if e.type == "message"]
    step = int(events[marks[0]].message.rsplit(" ", 1)[1])
    after = [int(data(e)["step"]) for e in events[marks[0]:] if e.type == "metrics"]
    return step, after


def test_kill_in_the_middle_of_a_job_resumes_from_the_last_checkpoint(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path, speed="4")
    with first.client(max_retries=0) as client:
        train = client.files.create(file=("t.jsonl", chat_lines(PAIRS)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model="sqltune-local-base", training_file=train.id,
                                             hyperparameters={"n_epochs": 3})
        wait_for_event(client, job.id, "Checkpoint created at step 24")
    first.kill()
    second = ServerProcess(tmp_path, speed="max")
    try:
        with second.client(max_retries=0) as client:
            done = wait_for(client, job.id)
            assert done.status == "succeeded", done.error
            step, after = _resume_point(client, job.id)
            assert 24 <= step < 72
            assert after == list(range(after[0], 73)) and after[0] > step - 1
            steps = [int(data(e)["step"]) for e in all_events(client, job.id)
                     if e.type == "metrics"]
            assert steps == list(range(1, 73)), "every step is reported exactly once"
            rows = csv.DictReader(io.StringIO(client.files.content(done.result_files[0]).text))
            assert [int(row["step"]) for row in rows] == list(range(1, 73))
            checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
            assert [c.step_number for c in checkpoints] == [72, 48, 24]
            assert done.trained_tokens and done.fine_tuned_model
    finally:
        second.terminate()


def test_clean_stop_snapshots_and_the_next_start_resumes_exactly(tmp_path: Path) -> None:
    with start_local_server(tmp_path, speed="4") as server, openai.OpenAI(
            base_url=server.base_url, api_key=server.api_key, max_retries=0) as client:
        train = client.files.create(file=("t.jsonl", chat_lines(PAIRS)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model="sqltune-local-base", training_file=train.id,
                                             hyperparameters={"n_epochs": 2})
        wait_for_event(client, job.id, "Step 5/")
        server.stop()
        before = client.fine_tuning.jobs  # the client outlives the server; nothing is sent
    assert before is not None
    with start_local_server(tmp_path, speed="max") as server, openai.OpenAI(
            base_url=server.base_url, api_key=server.api_key, max_retries=0) as client:
        done = wait_for(client, job.id)
        assert done.status == "succeeded"
        step, after = _resume_point(client, job.id)
        events = all_events(client, job.id)
        last_before = max(int(data(e)["step"]) for e in events[:[
            e.message for e in events].index(f"The server restarted; resuming the job from step "
                                             f"{step}")] if e.type == "metrics")
        assert step == last_before >= 5  # nothing lost, nothing repeated
        assert after == list(range(step + 1, 49))


def test_a_paused_job_stays_paused_across_a_restart_and_resumes_once(tmp_path: Path) -> None:
    with start_local_server(tmp_path, speed="4") as server, openai.OpenAI(
            base_url=server.base_url, api_key=server.api_key, max_retries=0) as client:
        train = client.files.create(file=("t.jsonl", chat_lines(PAIRS)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model="sqltune-local-base", training_file=train.id,
                                             hyperparameters={"n_epochs": 1})
        wait_for_event(client, job.id, "Step 3/")
        client.fine_tuning.jobs.pause(job.id)
        wait_for_event(client, job.id, "Fine-tuning job paused")
    with start_local_server(tmp_path, speed="max") as server, openai.OpenAI(
            base_url=server.base_url, api_key=server.api_key, max_retries=0) as client:
        marker = wait_for_event(client, job.id, "The server restarted")
        assert "stays paused" in marker.message, marker.message
        assert client.fine_tuning.jobs.retrieve(job.id).status == "paused"
        client.fine_tuning.jobs.resume(job.id)
        done = wait_for(client, job.id)
        assert done.status == "succeeded", done.error
        steps = [int(data(e)["step"]) for e in all_events(client, job.id) if e.type == "metrics"]
        assert steps == list(range(1, 25))


def test_unreadable_snapshot_fails_the_job_clearly(tmp_path: Path) -> None:
    with start_local_server(tmp_path, speed="4") as server, openai.OpenAI(
            base_url=server.base_url, api_key=server.api_key, max_retries=0) as client:
        train = client.files.create(file=("t.jsonl", chat_lines(PAIRS)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model="sqltune-local-base", training_file=train.id)
        wait_for_event(client, job.id, "Step 3/")
    (tmp_path / "blobs" / "state" / job.id).write_bytes(b"not a snapshot")
    with start_local_server(tmp_path, speed="max") as server, openai.OpenAI(
            base_url=server.base_url, api_key=server.api_key, max_retries=0) as client:
        failed = wait_for(client, job.id)
        assert failed.status == "failed" and failed.error is not None
        assert failed.error.code == "server_restarted"
        assert "could not be resumed" in failed.error.message


def _start_slow_upload(base_url: str, key: str, declared: int, sent: int) -> socket.socket:
    url = urlparse(base_url)
    boundary = "sqltuneboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n"
            f"fine-tune\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + declared + len(tail)
    sock = socket.create_connection((url.hostname, url.port))
    sock.sendall((f"POST /v1/files HTTP/1.1\r\nHost: {url.hostname}\r\n"
                  f"Authorization: Bearer {key}\r\nContent-Length: {length}\r\n"
                  f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
                 + head + b"x" * sent)
    return sock


def test_kill_mid_upload_leaves_no_half_written_file(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    sock = _start_slow_upload(server.base_url, server.api_key, declared=4_000_000,
                              sent=1_000_000)
    temp = tmp_path / "tmp"
    end = time.monotonic() + 30
    while not any(p.stat().st_size > 0 for p in temp.iterdir()):
        assert time.monotonic() < end, "the upload never reached the server's temp folder"
        time.sleep(0.01)
    server.kill()
    sock.close()
    files = tmp_path / "blobs" / "files"
    assert list(files.iterdir()) == []  # the partial bytes only ever lived in tmp/
    again = ServerProcess(tmp_path)
    try:
        assert list(temp.iterdir()) == []  # leftovers cleared on start
        with again.client(max_retries=0) as client:
            assert client.files.list().data == []
            kept = client.files.create(file=("ok.jsonl", b"{}\n"), purpose="fine-tune")
            assert [p.name for p in files.iterdir()] == [kept.id]
    finally:
        again.terminate()
