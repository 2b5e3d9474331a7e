"""A paused lora job gives back the one training slot: its worker stops, a queued job starts, and
resuming queues it again to continue exactly from its snapshot (the SDK over loopback)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from openai.types.fine_tuning import job_create_params

from tests.chat_files import write_singer_jsonl
from tests.engine.test_lora_jobs import alive, upload, workers
from tests.server.helpers import ServerProcess, all_events, data, wait_for, wait_for_event

pytest.importorskip("peft")

HP: job_create_params.Hyperparameters = {"n_epochs": 4, "batch_size": 1,
                                         "learning_rate_multiplier": 5}
"""40 steps over 10 examples: at speed 2 (0.05 s a step) long enough to pause at step 3."""


def test_a_paused_job_frees_the_slot_and_resumes_exactly_from_its_snapshot(
        tmp_path: Path, tiny_model_dir: Path) -> None:
    server = ServerProcess(tmp_path / "server", speed="2",
                           args=["--base-model", f"tiny={tiny_model_dir}"])
    try:
        client = server.client(max_retries=0)
        train = upload(client, write_singer_jsonl(tmp_path / "train.jsonl", 10))
        first = client.fine_tuning.jobs.create(model="tiny", training_file=train, seed=11,
                                               hyperparameters=HP)
        wait_for_event(client, first.id, "Step 3/40", deadline_s=120)
        # the same job again: the reference run, waiting queued behind the first one's worker
        second = client.fine_tuning.jobs.create(model="tiny", training_file=train, seed=11,
                                                hyperparameters=HP)
        wait_for(client, second.id, ("queued",))
        held = workers(server.process.pid)
        assert len(held) == 1

        assert client.fine_tuning.jobs.pause(first.id).status == "paused"
        paused_at = int(wait_for_event(client, first.id, "Paused at step").message.split()[3]
                        .rstrip(":"))
        assert paused_at >= 3
        stopped = time.monotonic()
        while alive(held[0]):
            assert time.monotonic() - stopped < 10, "the paused job's worker kept running"
            time.sleep(0.05)
        assert wait_for(client, second.id, ("running", "succeeded"),
                        deadline_s=120).status in ("running", "succeeded")
        assert client.fine_tuning.jobs.retrieve(first.id).status == "paused"

        resumed = client.fine_tuning.jobs.resume(first.id)
        assert resumed.status in ("queued", "running")  # running once the second one is done
        wait_for_event(client, first.id, f"continues from its snapshot at step {paused_at}",
                       deadline_s=120)
        assert client.fine_tuning.jobs.retrieve(second.id).status == "succeeded"
        done = wait_for(client, first.id, deadline_s=120)
        assert done.status == "succeeded", done.error
        reference = wait_for(client, second.id)
        assert reference.trained_tokens == done.trained_tokens

        def metrics(job_id: str) -> list[dict[str, object]]:
            return [data(e) for e in all_events(client, job_id) if e.type == "metrics"]

        mine, theirs = metrics(first.id), metrics(second.id)
        assert [m["step"] for m in mine] == list(range(1, 41))  # each step reported once
        for got, want in zip(mine, theirs, strict=True):
            for key in ("train_loss", "train_mean_token_accuracy"):
                assert got[key] == pytest.approx(want[key], rel=1e-5), (got["step"], key)
        checkpoints = client.fine_tuning.jobs.checkpoints.list(first.id).data
        assert sorted(c.step_number for c in checkpoints) == [20, 30, 40]
        messages = [e.message for e in all_events(client, first.id)]
        assert messages.count("Fine-tuning job started") == 1
    finally:
        server.kill()


def test_a_released_job_stays_paused_without_a_worker_across_a_restart(
        tmp_path: Path, tiny_model_dir: Path) -> None:
    def start() -> ServerProcess:
        return ServerProcess(tmp_path / "server", speed="2",
                             args=["--base-model", f"tiny={tiny_model_dir}"])

    server = start()
    try:
        client = server.client(max_retries=0)
        train = upload(client, write_singer_jsonl(tmp_path / "train.jsonl", 10))
        job = client.fine_tuning.jobs.create(model="tiny", training_file=train, seed=4,
                                             hyperparameters=HP)
        wait_for_event(client, job.id, "Step 3/40", deadline_s=120)
        client.fine_tuning.jobs.pause(job.id)
        wait_for_event(client, job.id, "Paused at step")
    finally:
        server.kill()
    server = start()
    try:
        client = server.client(max_retries=0)
        marker = wait_for_event(client, job.id, "The server restarted")
        assert "stays paused" in marker.message, marker.message
        time.sleep(0.5)
        assert workers(server.process.pid) == []
        assert client.fine_tuning.jobs.resume(job.id).status == "queued"
        done = wait_for(client, job.id, deadline_s=120)
        assert done.status == "succeeded", done.error
        steps = [data(e)["step"] for e in all_events(client, job.id) if e.type == "metrics"]
        assert steps == list(range(1, 41))
    finally:
        server.kill()
