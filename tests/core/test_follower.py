"""EventFollower: the pure cursor walk, and following real jobs on the local server."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2
import openai
import pytest

from tests.chat_files import write_singer_jsonl
from tui.core.finetune.follower import (
    ConnectionState,
    EventFollower,
    FollowerError,
    PollPolicy,
    collect_new,
)
from tui.core.finetune.jobs import JobEvent, JobInfo
from tui.core.provider.providers import install_secret_redaction, register_secret
from tui.core.provider.retries import is_transient, retry_after_seconds
from tui.server.inprocess import LocalServer, start_local_server


@dataclass
class EventLog:
    """A newest-first listing with OpenAI's cursor semantics (``after`` = older than that id)."""

    ids: list[str] = field(default_factory=list)
    page_size: int = 3
    requests: int = 0

    def add(self, count: int) -> None:
        start = len(self.ids)
        self.ids.extend(f"ev-{n:04d}" for n in range(start, start + count))

    async def fetch(self, after: str | None) -> Any:
        self.requests += 1
        newest_first = list(reversed(self.ids))
        start = newest_first.index(after) + 1 if after is not None else 0
        chunk = newest_first[start:start + self.page_size]
        items = [SimpleNamespace(id=i) for i in chunk]
        return SimpleNamespace(data=items, has_more=start + self.page_size < len(newest_first))


async def _ids(log: EventLog, last: str | None) -> list[str]:
    return [item.id for item in await collect_new(log.fetch, last)]


async def test_first_attach_backfills_the_whole_history_oldest_first() -> None:
    log = EventLog()
    log.add(10)
    assert await _ids(log, None) == log.ids
    assert log.requests == 4


async def test_only_newer_events_and_across_several_pages() -> None:
    log = EventLog()
    log.add(5)
    seen = await _ids(log, None)
    log.add(8)  # more than two pages arrived between polls
    fresh = await _ids(log, seen[-1])
    assert fresh == log.ids[5:]
    assert seen + fresh == log.ids


async def test_nothing_new_is_one_request() -> None:
    log = EventLog()
    log.add(7)
    log.requests = 0
    assert await _ids(log, log.ids[-1]) == []
    assert log.requests == 1


async def test_empty_job() -> None:
    assert await _ids(EventLog(), None) == []


async def test_exactly_once_over_many_interleaved_polls() -> None:
    log = EventLog(page_size=4)
    delivered: list[str] = []
    last: str | None = None
    for burst in [0, 1, 3, 4, 5, 9, 0, 2, 17, 1]:
        log.add(burst)
        fresh = await _ids(log, last)
        delivered.extend(fresh)
        last = delivered[-1] if delivered else None
    assert delivered == log.ids


def test_retry_after_headers() -> None:
    assert retry_after_seconds(httpx2.Headers({"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds(httpx2.Headers({"retry-after": "3"})) == 3.0
    date = "Wed, 25 Nov 2026 12:00:10 GMT"
    import email.utils
    now = email.utils.mktime_tz(email.utils.parsedate_tz("Wed, 25 Nov 2026 12:00:00 GMT"))
    assert retry_after_seconds(httpx2.Headers({"retry-after": date}), now=now) == 10.0
    assert retry_after_seconds(httpx2.Headers({})) is None


def _status_error(code: int) -> openai.APIStatusError:
    request = httpx2.Request("GET", "http://127.0.0.1/v1/x")
    response = httpx2.Response(code, request=request)
    return openai.APIStatusError("x", response=response, body=None)


@pytest.mark.parametrize(("code", "transient"), [(429, True), (500, True), (503, True),
                                                 (408, True), (404, False), (401, False),
                                                 (400, False)])
def test_transient_errors(code: int, transient: bool) -> None:
    assert is_transient(_status_error(code)) is transient
    request = httpx2.Request("GET", "http://127.0.0.1/v1/x")
    assert is_transient(openai.APIConnectionError(request=request))


def test_intervals_adapt_to_status() -> None:
    policy = PollPolicy()
    assert policy.interval("running") < policy.interval("queued") < policy.interval("paused")
    assert policy.interval("validating_files") == policy.interval("queued")


def test_event_line_and_state_label() -> None:
    event = JobEvent(id="e", created_at=1795608001, level="info",
                     message="Step 12/300: training loss=0.84")
    assert event.line() == "2026-11-25T12:00:01Z  info  Step 12/300: training loss=0.84"
    assert ConnectionState("reconnecting", attempt=3).label(0) == "reconnecting (3)"
    assert ConnectionState("live", last_update=10.0).label(12.4) == "live · updated 2 s ago"


# --- against the local server over loopback --------------------------------------------------

FAULTS = "drop=0.1,429=0.05,500=0.05,seed=4"


@pytest.fixture(scope="module")
def faulty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with start_local_server(tmp_path_factory.mktemp("server"), speed="max",
                            faults=FAULTS) as server:
        yield server


def _client(server: LocalServer, retries: int = 20) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key,
                              max_retries=retries)


async def _start_job(client: openai.AsyncOpenAI, tmp_path: Path, examples: int,
                     epochs: int) -> str:
    path = write_singer_jsonl(tmp_path / "train.jsonl", examples)
    upload = await client.files.create(file=path, purpose="fine-tune")
    job = await client.fine_tuning.jobs.create(
        model="gpt-4.1-mini-2025-04-14", training_file=upload.id,
        method={"type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": epochs, "batch_size": 1}}})
    return job.id


async def _server_event_ids(client: openai.AsyncOpenAI, job_id: str) -> list[str]:
    newest_first = [event.id async for event in
                    client.fine_tuning.jobs.list_events(job_id, limit=100)]
    return list(reversed(newest_first))


QUICK = PollPolicy(running=0.2, queued=0.2, paused=0.2, other=0.2, status_every=0.5,
                   backoff_base=0.02, backoff_max=0.5)


async def test_thousand_events_exactly_once_in_order_through_faults(
        faulty_server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    install_secret_redaction()
    register_secret(faulty_server.api_key)
    client = _client(faulty_server)
    states: list[ConnectionState] = []
    loggers = [logging.getLogger(name) for name in ("openai", "httpx2", "tui")]
    with caplog.at_level(logging.DEBUG):
        for logger in loggers:
            logger.setLevel(logging.DEBUG)
        job_id = await _start_job(client, tmp_path, examples=165, epochs=6)
        follower = EventFollower(client, job_id, policy=QUICK, on_state=states.append)
        delivered: list[JobEvent] = []
        batches = 0
        async for batch in follower.follow():
            delivered.extend(batch.events)
            batches += 1
        expected = await _server_event_ids(client, job_id)
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
    await client.close()

    ids = [event.id for event in delivered]
    assert len(expected) >= 1000
    assert ids == expected  # every event, exactly once, oldest first, no gaps
    assert follower.job_status == "succeeded"
    assert delivered[-1].message == "The job has successfully completed"
    assert batches >= 2  # followed live, not only one backfill at the end
    assert follower.stats.failures > 0  # the faults did hit the follower ...
    assert any(state.status == "reconnecting" for state in states)
    assert follower.state.status == "stopped" and follower.state.attempt == 0  # ... and it healed
    assert len(caplog.records) > 100  # the SDK's debug logging was on
    assert faulty_server.api_key not in caplog.text
    assert all(faulty_server.api_key not in (s.last_error or "") for s in states)


async def test_a_new_follower_resumes_from_the_cursor(faulty_server: LocalServer,
                                                      tmp_path: Path) -> None:
    client = _client(faulty_server)
    job_id = await _start_job(client, tmp_path, examples=30, epochs=3)
    first = EventFollower(client, job_id, policy=QUICK)
    seen: list[str] = []
    async for batch in first.follow():
        seen.extend(event.id for event in batch.events)
        if len(seen) >= 20:
            first.stop()
    second = EventFollower(client, job_id, cursor=first.cursor, policy=QUICK)
    async for batch in second.follow():
        seen.extend(event.id for event in batch.events)
    assert seen == await _server_event_ids(client, job_id)
    await client.close()


LIFECYCLE = ["validating_files", "queued", "running", "paused", "succeeded"]


async def test_snapshots_follow_the_job_through_its_statuses(tmp_path: Path) -> None:
    # Demo pace (60 steps of 100 ms): running long enough to be paused and resumed meanwhile.
    with start_local_server(tmp_path / "server", speed="demo") as paced:
        client = _client(paced)
        job_id = await _start_job(client, tmp_path, examples=30, epochs=2)
        follower = EventFollower(client, job_id, policy=QUICK)
        snapshots: list[JobInfo] = []
        paused = resumed = False
        async for batch in follower.follow():
            assert batch.job is not None and batch.job is follower.job
            assert batch.job_status == batch.job.status == follower.state.job_status
            if not snapshots or batch.job != snapshots[-1]:
                snapshots.append(batch.job)
            if batch.job.status == "running" and not paused:
                await client.fine_tuning.jobs.pause(job_id)
                paused = True
                follower.poke()  # read the job now, not at the running pace
            elif batch.job.status == "paused" and not resumed:
                await client.fine_tuning.jobs.resume(job_id)
                resumed = True
                follower.poke()
        on_server = await client.fine_tuning.jobs.retrieve(job_id)
        await client.close()
    statuses = [job.status for job in snapshots]
    # every change is a new snapshot, in the order the job went through them
    assert "running" in statuses and "paused" in statuses
    assert statuses.index("paused") < len(statuses) - 1 - statuses[::-1].index("running")
    firsts = [status for n, status in enumerate(statuses) if status not in statuses[:n]]
    assert firsts == sorted(firsts, key=LIFECYCLE.index)
    # the last one is the ended job as the provider has it: nobody needs to read it again
    final = snapshots[-1]
    assert final == JobInfo.from_sdk(on_server)
    assert final.status == "succeeded" and final.fine_tuned_model and final.result_files
    assert final.trained_tokens and final.finished_at
    assert follower.stats.by_kind["job"] >= len(snapshots)


async def test_unknown_job_is_a_permanent_error(faulty_server: LocalServer) -> None:
    client = _client(faulty_server)
    follower = EventFollower(client, "ftjob-does-not-exist", policy=QUICK)
    with pytest.raises(FollowerError, match="not found") as info:
        async for _ in follower.follow():
            pass
    assert faulty_server.api_key not in str(info.value)
    await client.close()


async def test_injected_clock_and_sleep_drive_the_intervals(tmp_path: Path) -> None:
    # Paced at demo speed (12 steps of 100 ms), so the job is still running when the follower
    # first waits: at max speed it could end inside the first page and no poll would happen.
    with start_local_server(tmp_path / "server", speed="demo", faults=FAULTS) as paced:
        client = _client(paced)
        job_id = await _start_job(client, tmp_path, examples=12, epochs=1)
        await _follow_with_fake_clock(client, job_id)


async def _follow_with_fake_clock(client: openai.AsyncOpenAI, job_id: str) -> None:
    now = [1000.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
        await asyncio.sleep(0.05)  # real time for the max-speed job to move on

    follower = EventFollower(client, job_id, clock=lambda: now[0], sleep=fake_sleep,
                             rng=random.Random(1))
    async for _ in follower.follow():
        pass
    policy = follower.policy
    allowed = {policy.running, policy.queued, policy.other}
    polls = [s for s in slept if s in allowed]
    assert polls and follower.job_status == "succeeded"
    assert follower.state.last_update is not None and follower.state.last_update >= 1000.0
    await client.close()


async def test_a_cancellation_during_the_pause_always_propagates(tmp_path: Path) -> None:
    # Ctrl-C on `sqltune watch` cancels the follow; it must never be swallowed (the watch then
    # ran to the job's end and exited 0). Cancel at each point of the pause's clean-up: the
    # sleep ends, then the cancellation lands k event-loop iterations later.
    with start_local_server(tmp_path / "server", speed="demo") as paced:
        client = _client(paced)
        job_id = await _start_job(client, tmp_path, examples=165, epochs=3)
        outcomes = [await _cancel_after_the_sleep(client, job_id, hops) for hops in range(8)]
        await client.fine_tuning.jobs.cancel(job_id)
        await client.close()
    assert outcomes == ["cancelled"] * 8


async def _cancel_after_the_sleep(client: openai.AsyncOpenAI, job_id: str, hops: int) -> str:
    """Follow ``job_id``; cancel the follow ``hops`` loop turns after its first sleep ends."""
    loop = asyncio.get_running_loop()
    consumer: list[asyncio.Task[None]] = []

    def cancel_after(remaining: int) -> None:
        if remaining:
            loop.call_soon(cancel_after, remaining - 1)
        else:
            consumer[0].cancel()

    async def sleep(seconds: float) -> None:
        if not consumer[0].cancelling():
            cancel_after(hops)  # the sleep is over; the cancellation comes soon after
            return
        await asyncio.sleep(0.05)

    follower = EventFollower(client, job_id, sleep=sleep)

    async def follow() -> None:
        async for _ in follower.follow():
            pass

    consumer.append(asyncio.ensure_future(follow()))
    done, _ = await asyncio.wait(consumer, timeout=5)
    if not done:  # swallowed: the follow went on polling
        follower.stop()
        await asyncio.wait(consumer)
    if consumer[0].cancelled():
        return "cancelled"
    return f"went on after a cancellation {hops} loop turns after the sleep"
