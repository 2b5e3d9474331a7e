"""Follow a fine-tuning job: its events exactly once and in order, with snapshots of the job."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tui.core.finetune.jobs import JobEvent, JobInfo
from tui.core.finetune.status import TERMINAL_STATUSES
from tui.core.provider.retries import describe_error, is_transient, retry_after_seconds

if TYPE_CHECKING:  # the SDK costs ~0.5 s to import: not before the app's first frame
    import openai

log = logging.getLogger(__name__)


class FollowerError(Exception):
    """A permanent failure while following (unknown job, bad key); transient ones are retried."""


ConnectionStatus = Literal["connecting", "live", "reconnecting", "stopped"]


@dataclass(frozen=True)
class ConnectionState:
    """What the UI shows about the link: live / reconnecting (n) / last update."""

    status: ConnectionStatus = "connecting"
    """connecting (before the first answer), live, reconnecting, stopped."""
    attempt: int = 0
    """Consecutive failed requests (the n of reconnecting (n))."""
    last_update: float | None = None
    """Follower clock time of the last successful request."""
    last_error: str | None = None
    """Short description of the last transient error (never holds a key)."""
    job_status: str | None = None
    """Job status as last retrieved."""

    def label(self, now: float) -> str:
        """E.g. ``live · updated 3 s ago`` or ``reconnecting (2)``."""
        if self.status == "reconnecting":
            return f"reconnecting ({self.attempt})"
        if self.last_update is None:
            return self.status
        return f"{self.status} · updated {max(0, round(now - self.last_update))} s ago"


@dataclass(frozen=True)
class EventBatch:
    """New events (oldest first) from one poll, with the job and link state after it."""

    events: list[JobEvent]
    """Events never delivered before, oldest first."""
    job: JobInfo | None
    """The job as last retrieved: status, trained tokens, tuned model, result files."""
    state: ConnectionState
    """Link state after this poll."""

    @property
    def job_status(self) -> str | None:
        """The job's status as last retrieved."""
        return None if self.job is None else self.job.status


@dataclass(frozen=True)
class PollPolicy:
    """Polling intervals by job status, and the retry backoff."""

    running: float = 1.0
    """Seconds between polls while the job runs."""
    queued: float = 5.0
    """While validating_files or queued."""
    paused: float = 10.0
    """While paused."""
    other: float = 2.0
    """Unknown statuses."""
    status_every: float = 5.0
    """Re-read the job status at least this often (also after any non-metrics event)."""
    backoff_base: float = 0.5
    """First retry delay; doubles per consecutive failure."""
    backoff_max: float = 30.0
    """Upper bound of the retry delay (a server's retry-after may exceed it)."""
    page_size: int = 100
    """Events per list request."""

    def interval(self, status: str | None) -> float:
        """Seconds to wait before the next poll for a job in this status."""
        if status == "running":
            return self.running
        if status in ("validating_files", "queued", "pending"):
            return self.queued
        if status == "paused":
            return self.paused
        return self.other


class Page(Protocol):
    """One page of a newest-first cursor listing."""

    @property
    def data(self) -> Sequence[Any]: ...
    @property
    def has_more(self) -> bool | None: ...


class _Stopped(Exception):
    """stop() was called while waiting to retry."""


FetchPage = Callable[[str | None], Awaitable[Page]]


async def collect_new(fetch_page: FetchPage, last_seen: str | None) -> list[Any]:
    """Items newer than ``last_seen`` from a newest-first listing, returned oldest first.

    Pages back with ``after`` = the oldest id of the previous page until ``last_seen`` shows up
    or the listing ends (first attach: the whole history).
    """
    newer: list[Any] = []
    after: str | None = None
    while True:
        page = await fetch_page(after)
        items = list(page.data or [])
        for item in items:
            if last_seen is not None and item.id == last_seen:
                newer.reverse()
                return newer
            newer.append(item)
        if not items or page.has_more is False:
            newer.reverse()
            return newer
        after = items[-1].id


@dataclass
class _Stats:
    requests: int = 0
    failures: int = 0
    delivered: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class EventFollower:
    """Polls one job's events and delivers each exactly once, oldest first, with the job itself.

    The cursor (newest delivered id), the polling interval and the retries live here, not in
    the views: each batch carries the job as last retrieved, so nobody reads it again.
    Use ``async for batch in follower.follow()``.
    """

    def __init__(self, client: openai.AsyncOpenAI, job_id: str, *,
                 cursor: str | None = None,
                 policy: PollPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None,
                 on_state: Callable[[ConnectionState], object] | None = None) -> None:
        self.job_id = job_id
        """The job being followed."""
        self.policy = policy or PollPolicy()
        """Intervals and backoff."""
        self._client = client.with_options(max_retries=0)  # retries are ours, with state
        self._cursor = cursor
        self._seen: set[str] = set()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._on_state = on_state
        self._state = ConnectionState()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._job: JobInfo | None = None
        self._last_status_check: float | None = None
        self.stats = _Stats()
        """Request, failure and delivery counters (benches read them)."""

    @property
    def cursor(self) -> str | None:
        """Id of the newest event delivered so far (resume a follower from it)."""
        return self._cursor

    @property
    def state(self) -> ConnectionState:
        """Current link state."""
        return self._state

    @property
    def job(self) -> JobInfo | None:
        """The job as last retrieved (None before the first read)."""
        return self._job

    @property
    def job_status(self) -> str | None:
        """Job status as last retrieved."""
        return None if self._job is None else self._job.status

    def stop(self) -> None:
        """Ask follow() to finish after the current request."""
        self._stop.set()
        self._wake.set()

    def poke(self) -> None:
        """Poll (and re-read the status) now, e.g. right after the user paused or resumed."""
        self._last_status_check = None
        self._wake.set()

    def _set_state(self, **changes: Any) -> None:
        new = replace(self._state, **changes)
        if new != self._state:
            self._state = new
            if self._on_state is not None:
                self._on_state(new)

    async def _pause(self, seconds: float) -> None:
        if seconds <= 0 or self._stop.is_set():
            return
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        stopper = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Cancelled and left to finish, never awaited: a cancellation of this task that lands
            # while it awaits a helper is delivered as the helper's CancelledError, and
            # suppressing that ate Ctrl-C (`sqltune watch` then ran to the job's end).
            sleeper.cancel()
            stopper.cancel()
        if not self._stop.is_set():
            self._wake.clear()

    def _backoff(self, attempt: int, error: BaseException) -> float:
        import openai  # lazily: the SDK is slow to import
        headers = getattr(getattr(error, "response", None), "headers", None)
        asked = retry_after_seconds(headers) if isinstance(error, openai.APIStatusError) else None
        if asked is not None:
            return asked + self._rng.uniform(0, 0.1 * asked + 0.05)
        ceiling = min(self.policy.backoff_max, self.policy.backoff_base * 2 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    async def _request(self, kind: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """One API call, retried with backoff on transient errors until it works or stop()."""
        import openai  # lazily: the SDK is slow to import
        while True:
            self.stats.requests += 1
            self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
            try:
                result = await call()
            except openai.APIError as error:
                said = describe_error(error, subject=f"job {self.job_id}")
                if not is_transient(error):
                    self._set_state(status="stopped")
                    raise FollowerError(said) from None
                self.stats.failures += 1
                attempt = self._state.attempt + 1
                self._set_state(status="reconnecting", attempt=attempt, last_error=said)
                delay = self._backoff(attempt, error)
                log.debug("job %s: %s failed (%s); retry %d in %.2fs", self.job_id, kind,
                          self._state.last_error, attempt, delay)
                await self._pause(delay)
                if self._stop.is_set():
                    raise _Stopped from None
                continue
            self._set_state(status="live", attempt=0, last_update=self._clock())
            return result

    async def _fetch_page(self, after: str | None) -> Page:
        kwargs: dict[str, Any] = {"limit": self.policy.page_size}
        if after is not None:
            kwargs["after"] = after

        async def call() -> Page:
            page: Page = await self._client.fine_tuning.jobs.list_events(self.job_id, **kwargs)
            return page

        result: Page = await self._request("events", call)
        return result

    async def poll_events(self) -> list[JobEvent]:
        """Fetch and return (oldest first) every event newer than the cursor; advance the cursor."""
        raw = await collect_new(self._fetch_page, self._cursor)
        fresh: list[JobEvent] = []
        for item in raw:
            event = JobEvent.from_sdk(item)
            if event.id in self._seen:
                continue
            self._seen.add(event.id)
            fresh.append(event)
        if raw:
            self._cursor = str(raw[-1].id)
        self.stats.delivered += len(fresh)
        return fresh

    async def refresh_job(self) -> JobInfo:
        """Retrieve the job and keep it as the latest snapshot."""
        raw = await self._request(
            "job", lambda: self._client.fine_tuning.jobs.retrieve(self.job_id))
        self._last_status_check = self._clock()
        self._job = JobInfo.from_sdk(raw)
        self._set_state(job_status=self._job.status)
        return self._job

    def _status_due(self, events: list[JobEvent]) -> bool:
        if self._job is None or self._last_status_check is None:
            return True
        if any(event.type != "metrics" for event in events):
            return True
        return self._clock() - self._last_status_check >= self.policy.status_every

    async def follow(self) -> AsyncIterator[EventBatch]:
        """Yield batches of new events, and the job whenever it changed, until the job ends (its
        last events drained) or stop()."""
        try:
            while not self._stop.is_set():
                events = await self.poll_events()
                changed = False
                if self._status_due(events):
                    before = self._job
                    changed = await self.refresh_job() != before
                status = self.job_status
                if status in TERMINAL_STATUSES:
                    # Events written just before the status flipped: drain until a poll is empty.
                    for _ in range(3):
                        more = await self.poll_events()
                        if not more:
                            break
                        events.extend(more)
                    yield EventBatch(events, self._job, self._state)
                    break
                if events or changed:
                    yield EventBatch(events, self._job, self._state)
                await self._pause(self.policy.interval(status))
        except _Stopped:
            pass
        finally:
            self._set_state(status="stopped")
