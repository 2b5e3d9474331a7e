"""JobService against the local server over loopback, plus the results/estimate helpers."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from tests.chat_files import write_singer_jsonl
from tests.local_servers import module_server
from tui.core.finetune.files import FileService
from tui.core.finetune.follower import EventFollower, PollPolicy
from tui.core.finetune.jobs import (
    JobEvent,
    JobInfo,
    JobsError,
    JobService,
    JobSpec,
    estimate_finish,
    parse_results_csv,
    progress_from_events,
    save_results,
)
from tui.core.provider.providers import make_async_client, resolve_provider
from tui.server.inprocess import LocalServer

MODEL = "gpt-4.1-mini-2025-04-14"
QUICK = PollPolicy(running=0.1, queued=0.1, paused=0.1, other=0.1, status_every=0.2)


fast_server = module_server("fast")
slow_server = module_server("slow", speed="4")


async def _client(server: LocalServer) -> openai.AsyncOpenAI:
    return make_async_client(resolve_provider("local", start_local=lambda: server))


@pytest.fixture
async def fast(fast_server: LocalServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = await _client(fast_server)
    yield client
    await client.close()


async def _upload(client: openai.AsyncOpenAI, tmp_path: Path, examples: int = 20,
                  validate: bool = True) -> str:
    path = write_singer_jsonl(tmp_path / f"train-{examples}.jsonl", examples)
    return (await FileService(client).upload(path, validate=validate)).id


async def _finish(client: openai.AsyncOpenAI, job_id: str) -> list[JobEvent]:
    events: list[JobEvent] = []
    async for batch in EventFollower(client, job_id, policy=QUICK).follow():
        events.extend(batch.events)
    return events


async def test_create_follow_results_checkpoints(fast: openai.AsyncOpenAI,
                                                 tmp_path: Path) -> None:
    service = JobService(fast, kind="local")
    training = await _upload(fast, tmp_path)
    created = await service.create(JobSpec(model=MODEL, training_file=training, n_epochs=2,
                                           batch_size=1, suffix="spider", seed=7,
                                           metadata={"template": "abc"}))
    assert created.status == "validating_files" and created.seed == 7
    assert created.metadata == {"template": "abc"}
    events = await _finish(fast, created.id)
    job = await service.retrieve(created.id)
    assert job.status == "succeeded" and job.terminal and job.fine_tuned_model
    assert job.hyperparameters["n_epochs"] == 2 and job.trained_tokens
    assert created.id in [j.id for j in await service.list()]

    results = await service.results(job)
    assert results is not None and "train_loss" in results.columns
    losses = results.series("train_loss")
    assert len(losses) == 40 and losses[0][0] == 1.0

    checkpoints = await service.checkpoints(job.id)
    assert [c.step for c in checkpoints] == [20, 40]
    assert checkpoints[-1].model == f"{job.fine_tuned_model}:ckpt-step-40"
    assert "train_loss" in checkpoints[-1].metrics

    progress = progress_from_events(events)
    assert progress is not None and (progress.step, progress.total_steps) == (40, 40)
    assert estimate_finish(job, progress) == dt.datetime.fromtimestamp(job.finished_at or 0,
                                                                       tz=dt.UTC)


async def test_a_failing_job_reports_its_error(fast: openai.AsyncOpenAI, tmp_path: Path) -> None:
    service = JobService(fast, kind="local")
    training = await _upload(fast, tmp_path, examples=3, validate=False)
    job = await service.create(JobSpec(model=MODEL, training_file=training))
    await _finish(fast, job.id)
    failed = await service.retrieve(job.id)
    assert failed.status == "failed" and failed.error_code == "invalid_n_examples"
    assert failed.error and "at least 10" in failed.error


async def test_pause_resume_cancel(slow_server: LocalServer, tmp_path: Path) -> None:
    client = await _client(slow_server)
    service = JobService(client, kind="local")
    training = await _upload(client, tmp_path, examples=30)
    job = await service.create(JobSpec(model=MODEL, training_file=training, n_epochs=3))
    for _ in range(200):
        if (await service.retrieve(job.id)).status == "running":
            break
        await asyncio.sleep(0.05)
    assert (await service.pause(job.id)).status == "paused"
    assert (await service.resume(job.id)).status == "running"
    assert (await service.cancel(job.id)).status == "cancelled"
    events = await _finish(client, job.id)
    messages = [event.message for event in events]
    assert "Fine-tuning job paused" in messages and "Fine-tuning job resumed" in messages
    assert messages[-1] == "Fine-tuning job cancelled"
    await client.close()


async def test_capabilities_guard_and_clear_errors(fast: openai.AsyncOpenAI,
                                                   fast_server: LocalServer) -> None:
    compatible = JobService(fast, kind="compatible")
    with pytest.raises(JobsError, match="does not support pausing"):
        await compatible.pause("ftjob-x")
    assert await compatible.checkpoints("ftjob-x") == []
    with pytest.raises(JobsError, match="reading job ftjob-nope failed: HTTP 404") as info:
        await JobService(fast).retrieve("ftjob-nope")
    assert fast_server.api_key not in str(info.value)


def test_creation_note_only_for_openai() -> None:
    client = openai.AsyncOpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")
    assert "2027-01-06" in (JobService(client, kind="openai").creation_note(
        dt.date(2027, 2, 1)) or "")
    assert JobService(client, kind="azure").creation_note(dt.date(2027, 2, 1)) is None


def test_parse_results_csv_tolerates_blanks() -> None:
    table = parse_results_csv("step,train_loss,valid_loss\n1,2.5,\n2,1.5,1.9\n3,nan,x\n")
    assert table.columns == ("step", "train_loss", "valid_loss")
    assert table.series("valid_loss") == [(2.0, 1.9)]
    assert table.series("train_loss") == [(1.0, 2.5), (2.0, 1.5)]


def test_estimate_from_step_progress() -> None:
    running = JobInfo(id="j", model=MODEL, status="running", created_at=0, training_file="f")
    events = [JobEvent(id=str(n), created_at=1000 + 2 * n, level="info", message="",
                       type="metrics", data={"step": n, "total_steps": 100})
              for n in range(1, 11)]
    progress = progress_from_events(events)
    assert progress is not None
    assert estimate_finish(running, progress) == dt.datetime.fromtimestamp(1020 + 180, tz=dt.UTC)
    assert estimate_finish(running, None) is None
    stated = JobInfo(id="j", model=MODEL, status="running", created_at=0, training_file="f",
                     estimated_finish=5000)
    assert estimate_finish(stated, progress) == dt.datetime.fromtimestamp(5000, tz=dt.UTC)
    paused = JobInfo(id="j", model=MODEL, status="paused", created_at=0, training_file="f",
                     estimated_finish=5000)
    assert estimate_finish(paused, progress) is None  # it ends when someone resumes it


def test_results_saved_as_served(tmp_path: Path) -> None:
    text = "step,train_loss\r\n1,2.5\r\n"
    path = save_results(parse_results_csv(text), "ftjob-abc", tmp_path / "exports")
    assert path == tmp_path / "exports" / "ftjob-abc-results.csv"
    assert path.read_bytes() == text.encode()
