"""Real LoRA jobs on the tiny model over loopback, the official SDK against `sqltune server`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.chat_files import write_singer_jsonl
from tests.server.helpers import ServerProcess, all_events, data, wait_for, wait_for_event
from tui.server.engines.lora import artifacts
from tui.server.engines.lora.worker import FAIL_AT_STEP_ENV

pytest.importorskip("peft")


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def workers(pid: int) -> list[int]:
    """The server's training worker processes (spawned ``multiprocessing`` children)."""
    out = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            out.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return (write_singer_jsonl(tmp_path / "train.jsonl", 10),
            write_singer_jsonl(tmp_path / "valid.jsonl", 10))


def start(tmp_path: Path, tiny: Path, env: dict[str, str] | None = None) -> ServerProcess:
    return ServerProcess(tmp_path / "server", env=env, args=["--base-model", f"tiny={tiny}"])


@pytest.fixture
def server(tmp_path: Path, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    process = start(tmp_path, tiny_model_dir, env={FAIL_AT_STEP_ENV: "7"})
    yield process
    process.kill()


def upload(client: openai.OpenAI, path: Path) -> str:
    with path.open("rb") as stream:
        return client.files.create(file=stream, purpose="fine-tune").id


def test_a_lora_job_trains_checkpoints_answers_and_a_crash_fails_cleanly(
        server: ServerProcess, files: tuple[Path, Path]) -> None:
    client = server.client()
    assert "tiny" in [m.id for m in client.models.list().data]
    train, valid = upload(client, files[0]), upload(client, files[1])
    job = client.fine_tuning.jobs.create(
        model="tiny", training_file=train, validation_file=valid, seed=5,
        hyperparameters={"n_epochs": 2, "batch_size": 5, "learning_rate_multiplier": 10})
    # a second job whose worker raises at step 7 (the test hook): it fails with the error text
    doomed = client.fine_tuning.jobs.create(
        model="tiny", training_file=train, seed=5,
        hyperparameters={"n_epochs": 4, "batch_size": 2})
    done = wait_for(client, job.id, deadline_s=240)
    assert done.status == "succeeded", done.error
    steps = [data(e) for e in all_events(client, job.id) if e.type == "metrics"]
    assert [s["step"] for s in steps] == [1, 2, 3, 4]
    assert all(s["train_loss"] > 0 and s["valid_loss"] > 0 for s in steps)
    assert steps[-1]["train_loss"] < steps[0]["train_loss"]
    assert [s.get("full_valid_loss") is not None for s in steps] == [False, True, False, True]
    assert done.trained_tokens and done.trained_tokens > 2 * 10 * 20
    assert any(e.message.startswith("Training used at most") and "MB" in e.message
               for e in all_events(client, job.id))
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert sorted(c.step_number for c in checkpoints) == [2, 4]
    for checkpoint in checkpoints:  # PEFT adapters; the optimizer stays in resume states only
        blob = (server.data_dir / "blobs" / "checkpoints" / checkpoint.id).read_bytes()
        assert artifacts.read_meta(blob).step == checkpoint.step_number
        assert artifacts.read_trainer_state(blob) is None
        assert set(artifacts.adapter_files(blob)) == set(artifacts.ADAPTER_FILES)
    for model in [done.fine_tuned_model, *(c.fine_tuned_model_checkpoint for c in checkpoints)]:
        assert model is not None
        answer = client.chat.completions.create(model=model, max_tokens=8, messages=[
            {"role": "user", "content": "What is the name of singer 3?"}])
        assert answer.usage is not None and answer.usage.completion_tokens <= 8
    failed = wait_for(client, doomed.id, deadline_s=240)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "training_failed"
    assert "step 7" in failed.error.message
    assert "test failure injected at step 7" in failed.error.message
    assert [data(e)["step"] for e in all_events(client, doomed.id)
            if e.type == "metrics"] == list(range(1, 7))
    ended = time.monotonic()  # a worker is closed just after its job's final status is saved
    while workers(server.process.pid):
        assert time.monotonic() - ended < 10, "a worker outlived its job"
        time.sleep(0.05)


def test_cancel_stops_the_worker_mid_run_and_a_killed_server_resumes_each_step_once(
        tmp_path: Path, tiny_model_dir: Path, files: tuple[Path, Path]) -> None:
    server = start(tmp_path, tiny_model_dir)
    try:
        client = server.client()
        train = upload(client, files[0])
        long = client.fine_tuning.jobs.create(model="tiny", training_file=train,
                                              hyperparameters={"n_epochs": 50, "batch_size": 1})
        wait_for_event(client, long.id, "Step 4/500", deadline_s=120)
        # measured after 3 steps: about 500 x a tiny step from now
        estimate = client.fine_tuning.jobs.retrieve(long.id).estimated_finish
        assert estimate is not None and estimate >= time.time() - 1
        pids = workers(server.process.pid)
        assert len(pids) == 1
        cancelled_at = time.monotonic()
        assert client.fine_tuning.jobs.cancel(long.id).status == "cancelled"
        while alive(pids[0]):
            assert time.monotonic() - cancelled_at < 5, "the worker outlived the cancel"
            time.sleep(0.05)
        last = max(data(e)["step"] for e in all_events(client, long.id) if e.type == "metrics")
        time.sleep(0.5)
        assert max(data(e)["step"] for e in all_events(client, long.id)
                   if e.type == "metrics") == last

        job = client.fine_tuning.jobs.create(model="tiny", training_file=train, seed=2,
                                             hyperparameters={"n_epochs": 3, "batch_size": 1})
        wait_for_event(client, job.id, "Step 12/30", deadline_s=120)
        orphans = workers(server.process.pid)
        server.kill()  # SIGKILL: nothing saved after the last epoch-end checkpoint
    finally:
        server.kill()
    killed_at = time.monotonic()
    while any(alive(pid) for pid in orphans):  # the worker sees its pipe close and exits
        assert time.monotonic() - killed_at < 20, "the worker outlived its server"
        time.sleep(0.1)
    server = start(tmp_path, tiny_model_dir)
    try:
        client = server.client()
        done = wait_for(client, job.id, deadline_s=240)
        assert done.status == "succeeded", done.error
        events = all_events(client, job.id)
        assert [data(e)["step"] for e in events if e.type == "metrics"] == list(range(1, 31))
        resumed = [e.message for e in events if "resuming the job from step" in e.message]
        assert resumed and resumed[0].endswith(("step 10", "step 20"))
        checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
        assert sorted(c.step_number for c in checkpoints) == [10, 20, 30]
    finally:
        server.kill()
