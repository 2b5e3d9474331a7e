"""One job in detail: status, live events oldest-first, loss chart, checkpoints, results."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.events import Resize
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from tui.core.elide import elide_middle
from tui.messages import JobEnded
from tui.widgets.failures import ShowsWorkFailures
from tui.widgets.jobs.chart import LossChart
from tui.widgets.jobs.events import EventLog

if TYPE_CHECKING:
    from tui.core.finetune.follower import ConnectionState, EventFollower
    from tui.core.finetune.jobs import (
        CheckpointInfo,
        JobEvent,
        JobInfo,
        ResultsTable,
        StepProgress,
    )
    from tui.core.session import Session
    from tui.widgets.failures import WorkFailed

STATUS_STYLES = {
    "validating_files": "yellow", "queued": "yellow", "running": "bold cyan",
    "paused": "magenta", "succeeded": "bold green", "failed": "bold red", "cancelled": "dim",
}
"""Colour of each job status."""


def status_text(status: str) -> Text:
    """A job status in its colour."""
    return Text(f"● {status}", style=STATUS_STYLES.get(status, ""))


def utc_clock(moment: dt.datetime | None) -> str:
    """``12:34 UTC`` (or ``—``)."""
    return "—" if moment is None else moment.strftime("%H:%M UTC")


class JobDetail(Vertical, ShowsWorkFailures, can_focus=True):
    """A job followed live through the core EventFollower (cursor and polling live there)."""

    FAILURE_TITLE = "Job"

    @dataclass
    class Loaded(Message):
        """The job was read from the provider."""

        job: JobInfo
        """The job as read."""

    @dataclass
    class EventsArrived(Message):
        """New events, oldest first, exactly once."""

        job_id: str
        """The job they belong to."""
        events: list[JobEvent]
        """Oldest first."""
        job_status: str | None
        """Job status after this poll."""

    @dataclass
    class LinkChanged(Message):
        """The follower's link state changed (live, reconnecting (n), stopped)."""

        state: ConnectionState
        """The link now."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, JobDetail.LinkChanged)

    @dataclass
    class Extras(Message):
        """Checkpoints and the results CSV, read when the job ends (or is opened ended)."""

        checkpoints: list[CheckpointInfo]
        """By step."""
        results: ResultsTable | None
        """The results CSV (None while the job has no result file)."""

    job: reactive[JobInfo | None] = reactive(None, always_update=True)
    """The job shown."""

    def __init__(self, session: Session, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        """Where the provider client comes from."""
        self.link: ConnectionState | None = None
        """The follower's last link state."""
        self.progress: StepProgress | None = None
        """Step progress read from metrics events."""
        self.results: ResultsTable | None = None
        """The results CSV once the job ended, else None."""
        self._checkpoints: list[CheckpointInfo] = []
        self._follower: EventFollower | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="job-header")
        with TabbedContent(id="job-tabs"):
            with TabPane("Events", id="job-tab-events"):
                yield EventLog(id="job-events")
            with TabPane("Loss", id="job-tab-loss"):
                yield LossChart(id="job-chart")
            with TabPane("Checkpoints", id="job-tab-checkpoints"):
                table: DataTable[Any] = DataTable(id="job-checkpoints", cursor_type="row")
                yield table
                yield Static("", id="job-results")

    def on_mount(self) -> None:
        self._fill_checkpoints()
        self.set_interval(1.0, self._tick, name="job-link-clock")

    def on_resize(self, event: Resize) -> None:
        self._fill_checkpoints()

    def _fill_checkpoints(self) -> None:
        """The checkpoint table, its model column as wide as the pane allows; names cut in the
        middle so each keeps its ``:ckpt-step-N`` (three of them looked identical)."""
        table = self.query_one("#job-checkpoints", DataTable)
        # 3 fixed columns, 2 cells of padding per column, 2 for the scrollbar
        width = max(12, (self.size.width or 80) - (6 + 10 + 10) - 4 * 2 - 2)
        models = [checkpoint.model for checkpoint in self._checkpoints]
        width = min(width, max([5, *map(len, models)]))
        table.clear(columns=True)
        table.add_column("step", key="step", width=6)
        table.add_column("train loss", key="train", width=10)
        table.add_column("valid loss", key="valid", width=10)
        table.add_column("model", key="model", width=width)
        for checkpoint in self._checkpoints:
            metrics = checkpoint.metrics
            table.add_row(str(checkpoint.step), _loss(metrics.get("train_loss")),
                          _loss(metrics.get("valid_loss")), elide_middle(checkpoint.model, width),
                          key=checkpoint.id)

    def show_tab(self, name: str) -> None:
        """Show the events, loss or checkpoints tab, and focus what it shows."""
        self.query_one("#job-tabs", TabbedContent).active = f"job-tab-{name}"
        self.focus_tab()

    def focus_tab(self) -> None:
        """Focus the active tab's scrollable content (the detail itself for the chart)."""
        active = self.query_one("#job-tabs", TabbedContent).active
        target = {"job-tab-events": "#job-events", "job-tab-checkpoints": "#job-checkpoints"}
        if active in target:
            self.query_one(target[active]).focus()
        else:
            self.focus()

    def open(self, job_id: str) -> None:
        """Show a job and follow it until it ends."""
        self._checkpoints, self.results = [], None
        self.job, self.link, self.progress = None, None, None
        self.query_one(EventLog).clear_events()
        self.query_one(LossChart).clear_points()
        self._fill_checkpoints()
        self.query_one("#job-results", Static).update("")
        self.query_one("#job-header", Static).update(f"opening {job_id}…")
        self.follow(job_id)

    # ── following ───────────────────────────────────────────────────────────────────────

    @work(exclusive=True, group="job-follow", exit_on_error=False)
    async def follow(self, job_id: str) -> None:
        """Show the job and its events as the follower delivers them, until it ends or another
        job is opened (the follower reads the job: nothing here reads it again)."""
        from tui.core.finetune.follower import EventFollower

        client = await self.session.client()
        follower = EventFollower(client, job_id,
                                 on_state=lambda s: self.post_message(self.LinkChanged(s)))
        self._follower = follower
        first: JobInfo | None = None  # as first read: had it ended before it was opened?
        job: JobInfo | None = None
        try:
            async for batch in follower.follow():
                if batch.job is not None and batch.job != job:
                    first, job = first or batch.job, batch.job
                    self.post_message(self.Loaded(job))
                self.post_message(self.EventsArrived(job_id, batch.events, batch.job_status))
        finally:
            if self._follower is follower:
                self._follower = None
        if first is None or job is None or not job.terminal:
            return
        if not first.terminal:  # it ended while followed, not before it was opened
            self.post_message(JobEnded(job.id, job.status, job.fine_tuned_model))
        service = await self.session.jobs()
        try:
            checkpoints = await service.checkpoints(job_id)
            results = await service.results(job)
        except Exception as error:
            error.add_note(f"the job itself {job.status}")
            raise
        self.post_message(self.Extras(checkpoints, results))

    def stop(self) -> None:
        """Stop following (the provider changed: this job belongs to the old one)."""
        self.workers.cancel_group(self, "job-follow")
        self._follower = None

    def poke(self, job_id: str) -> None:
        """The user changed this job (pause, resume, cancel): poll now, not at the slow pace."""
        follower = self._follower
        if follower is not None and follower.job_id == job_id:
            follower.poke()

    def on_job_detail_loaded(self, message: Loaded) -> None:
        self.job = message.job

    def on_job_detail_events_arrived(self, message: EventsArrived) -> None:
        from tui.core.finetune.jobs import progress_from_events

        if self.job is not None and message.job_id != self.job.id:
            return
        log = self.query_one(EventLog)
        log.add_events(message.events)
        metrics = [e.data for e in message.events if e.type == "metrics" and e.data]
        if metrics:
            self.query_one(LossChart).add_metrics(metrics)
            self.progress = progress_from_events(log.events)
        self._show_header()

    def on_job_detail_link_changed(self, message: LinkChanged) -> None:
        self.link = message.state
        self._show_header()

    def on_job_detail_extras(self, message: Extras) -> None:
        self._checkpoints = list(message.checkpoints)
        self._fill_checkpoints()
        results = self.results = message.results
        if results is not None:
            self.query_one(LossChart).add_metrics(results.rows)
            self.query_one("#job-results", Static).update(
                f"results CSV: {len(results.rows)} steps · columns {', '.join(results.columns)}"
                " · w saves it")

    def show_failure(self, failure: WorkFailed) -> None:
        self.query_one("#job-header", Static).update(Text(failure.error, style="bold red"))
        super().show_failure(failure)

    def watch_job(self) -> None:
        self._show_header()

    def _tick(self) -> None:
        if self.link is not None and self.link.status != "stopped":
            self._show_header()

    def _show_header(self) -> None:
        from tui.core.finetune.jobs import estimate_finish

        job = self.job
        if job is None:
            return
        first = Text(no_wrap=True, overflow="ellipsis")
        first.append(job.id, style="bold")
        first.append(" ")
        first.append_text(status_text(job.status))
        if self.link is not None:
            first.append(f" · {self.link.label(time.monotonic())}", style="dim")
        second = Text(no_wrap=True, overflow="ellipsis")
        if self.progress is not None:
            second.append(f"step {self.progress.step}/{self.progress.total_steps} · ")
        tokens = job.trained_tokens
        second.append(f"trained tokens {tokens:,}" if tokens else "trained tokens —")
        if job.status == "paused":
            second.append(" · paused: no finish time until it resumes")
        else:
            finish = estimate_finish(job, self.progress)
            second.append(f" · {'finished' if job.terminal else 'est. finish'} "
                          f"{utc_clock(finish)}")
        second.append(f" · {job.model}", style="dim")
        third = Text(no_wrap=True, overflow="ellipsis")
        if job.fine_tuned_model:
            third.append("model ", style="dim")
            third.append(job.fine_tuned_model, style="bold green")
        elif job.error:
            third.append(job.error, style="red")
        else:
            hyper = " ".join(f"{k}={v}" for k, v in job.hyperparameters.items())
            third.append(f"{hyper or 'hyperparameters auto'} · {job.training_file}", style="dim")
        text = Group(first, second, third)
        self.query_one("#job-header", Static).update(text)


def _loss(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
