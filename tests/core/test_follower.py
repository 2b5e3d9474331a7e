"""EventFollower: the pure cursor walk, and following real jobs on the local server."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx2
import openai
import pytest

from tui.core.follower import (
    ConnectionState,
    JobEvent,
    PollPolicy,
    collect_new,
    is_transient,
    retry_after_seconds,
)


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
