"""The jobs pane: jobs with status and age, a create form, and one job's live detail."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.events import Resize
from textual.message import Message
from textual.widgets import ContentSwitcher, DataTable, Label

from tui.core.elide import elide_middle
from tui.core.finetune.status import ACTIVE_STATUSES
from tui.messages import FileUploaded, JobCreated, JobEnded
from tui.widgets.jobs.detail import JobDetail, status_text
from tui.widgets.pane import Pane

if TYPE_CHECKING:
    from tui.core.finetune.form import FormDefaults
    from tui.core.finetune.jobs import JobInfo, ResultsTable
    from tui.core.session import Session
    from tui.widgets.failures import WorkFailed


def age_text(seconds: float) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``."""
    seconds = max(0, int(seconds))
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


STATUS_WIDTH = 14
"""Cells of the status column (``● succeeded``)."""
AGE_WIDTH = 5
"""Cells of the age column."""


def list_widths(width: int, ids: list[str], models: list[str]) -> tuple[int, int]:
    """(job id, model) column widths for a pane ``width`` cells wide: ids whole when they fit,
    the model column takes the rest up to its longest name."""
    # 2 cells of padding per column, 2 for the scrollbar
    room = max(24, width - STATUS_WIDTH - AGE_WIDTH - 4 * 2 - 2)
    id_width = max([12, *map(len, ids)])
    model_width = min(max([10, *map(len, models)]), max(room - id_width, 0))
    if model_width < 16:  # a narrow pane: both give way (a job id keeps its distinct end)
        id_width = max(14, room - 16)
        model_width = max(8, room - id_width)
    return id_width, model_width


class JobsPane(Pane):
    """Fine-tuning jobs on the provider; enter opens one, live."""

    PANE_ID = "jobs"
    PANE_TITLE = "Jobs"
    BINDINGS: ClassVar[list[Any]] = [
        Binding("n", "new_job", "New job", id="jobs.new",
                tooltip="Create a fine-tuning job (shows tokens and cost first)"),
        Binding("enter", "open_job", "Open", id="jobs.open",
                tooltip="Follow the highlighted job: events, loss, checkpoints"),
        Binding("a", "attach", "Attach", id="jobs.attach",
                tooltip="Follow any job on the provider by its id"),
        Binding("r", "refresh", "Refresh", id="jobs.refresh", tooltip="Reload the job list"),
        Binding("escape", "back", "List", id="jobs.back", tooltip="Back to the job list"),
        Binding("c", "control('cancel')", "Cancel job", id="jobs.cancel",
                tooltip="Cancel the job (asks first)"),
        Binding("p", "control('pause')", "Pause", id="jobs.pause",
                tooltip="Pause the running job (asks first)"),
        Binding("s", "control('resume')", "Resume", id="jobs.resume",
                tooltip="Resume the paused job (asks first)"),
        Binding("e", "detail_tab('events')", "Events", id="jobs.events", show=False,
                tooltip="Show the job's events"),
        Binding("l", "detail_tab('loss')", "Loss", id="jobs.loss", show=False,
                tooltip="Show the loss chart"),
        Binding("k", "detail_tab('checkpoints')", "Checkpoints", id="jobs.checkpoints",
                show=False, tooltip="Show checkpoints and the results CSV"),
        Binding("w", "save_results", "Save CSV", id="jobs.save_results",
                tooltip="Save the job's results CSV in the exports folder (the path is shown)"),
    ]

    @dataclass
    class Listed(Message):
        """The provider's jobs were listed."""

        jobs: list[JobInfo]
        """Newest first."""

    @dataclass
    class ResultsSaved(Message):
        """The results CSV was written."""

        path: Path
        """Where."""

    @dataclass
    class Controlled(Message):
        """A job was cancelled, paused or resumed."""

        job: JobInfo
        """The job after the call."""
        action: str
        """cancel, pause or resume."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.jobs: list[JobInfo] = []
        """Jobs as last listed."""
        self.listed_at = time.time()
        """When the list was read (ages are relative to it)."""

    def compose(self) -> ComposeResult:
        with ContentSwitcher(initial="jobs-list-view", id="jobs-switcher"):
            with Vertical(id="jobs-list-view"):
                with Horizontal(classes="filters"):
                    yield Label("connecting…", id="jobs-state")
                table: DataTable[Any] = DataTable(id="jobs-table", cursor_type="row")
                yield table
            yield JobDetail(self.session, id="jobs-detail")

    def on_mount(self) -> None:
        self._fill_list()
        self.set_interval(5.0, self._refresh_if_active, name="jobs-list-refresh")

    def on_resize(self, event: Resize) -> None:
        self._fill_list()

    def _fill_list(self) -> None:
        """The job table with its columns as wide as the pane allows (ids and models cut in
        the middle only when they do not fit; at 160 columns a model name was cut at 18)."""
        table = self.query_one("#jobs-table", DataTable)
        key = self._highlighted_id()
        ids, models = [job.id for job in self.jobs], [job.model for job in self.jobs]
        id_width, model_width = list_widths(self.size.width or 80, ids, models)
        table.clear(columns=True)
        table.add_column("job", key="job", width=id_width)
        table.add_column("base model", key="model", width=model_width)
        table.add_column("status", key="status", width=STATUS_WIDTH)
        table.add_column("age", key="age", width=AGE_WIDTH)
        for job in self.jobs:
            table.add_row(elide_middle(job.id, id_width), elide_middle(job.model, model_width),
                          status_text(job.status),
                          age_text(self.listed_at - job.created_at), key=job.id)
        if key is not None and key in table.rows:
            table.move_cursor(row=table.get_row_index(key), animate=False)

    def focus_default(self) -> None:
        if self._in_detail():
            self.query_one(JobDetail).focus_tab()
        else:
            self.query_one("#jobs-table").focus()

    def provider_changed(self) -> None:
        if self._in_detail():
            # The job shown belongs to the old provider: stop following it, show the new list.
            detail = self.query_one(JobDetail)
            had_focus = detail.has_focus_within
            detail.stop()
            self.query_one(ContentSwitcher).current = "jobs-list-view"
            if had_focus:  # else focus falls to another tab's widget, and that tab shows
                self.query_one("#jobs-table").focus()
        # Rows of the old provider must not pass for the new one's while the list reloads.
        self.jobs = []
        self.query_one("#jobs-table", DataTable).clear()
        self.refresh_bindings()
        self.action_refresh()

    def session_changed(self, fact: Message) -> None:
        if isinstance(fact, JobEnded | JobCreated):
            self.action_refresh()
        elif isinstance(fact, FileUploaded):
            self.query_one("#jobs-state", Label).update(
                f"uploaded {fact.filename} · n: new job")

    def _in_detail(self) -> bool:
        return self.query_one(ContentSwitcher).current == "jobs-detail"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        in_detail = self._in_detail() if self.is_mounted else False
        if action in ("detail_tab", "back"):
            return in_detail
        if action == "save_results":
            return in_detail and self.query_one(JobDetail).results is not None
        if action == "control":
            job = self._selected_job()
            if job is None:
                return False
            wanted = {"cancel": ACTIVE_STATUSES, "pause": {"running"}, "resume": {"paused"}}
            return job.status in wanted.get(str(parameters[0]), set())
        return True

    # ── list ────────────────────────────────────────────────────────────────────────────

    def action_refresh(self) -> None:
        """Reload the job list."""
        self.list_jobs()

    def _refresh_if_active(self) -> None:
        if any(job.status in ACTIVE_STATUSES for job in self.jobs) and not self._in_detail():
            self.list_jobs()

    @work(exclusive=True, group="jobs-list", exit_on_error=False)
    async def list_jobs(self) -> None:
        """List jobs (an async worker on the openai SDK)."""
        jobs = await (await self.session.jobs()).list()
        self.post_message(self.Listed(jobs))

    def on_jobs_pane_listed(self, message: Listed) -> None:
        self.jobs, self.listed_at = message.jobs, time.time()
        self._fill_list()
        n = len(message.jobs)
        self.query_one("#jobs-state", Label).update(
            f"{n} job{'s' if n != 1 else ''} · n new · enter open · a attach")
        self.refresh_bindings()

    def show_failure(self, failure: WorkFailed) -> None:
        error = failure.error
        if failure.operation == "save_results":
            error = f"cannot save the results CSV: {error}"
        self.query_one("#jobs-state", Label).update(Text(error, style="bold red"))
        self.notify(error, title=self.failure_title(), severity="error", markup=False)

    def _highlighted_id(self) -> str | None:
        table = self.query_one("#jobs-table", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value

    def _selected_job(self) -> JobInfo | None:
        if self._in_detail():
            return self.query_one(JobDetail).job
        key = self._highlighted_id()
        return next((job for job in self.jobs if job.id == key), None)

    @on(DataTable.RowHighlighted, "#jobs-table")
    def _highlighted(self) -> None:
        self.refresh_bindings()

    @on(DataTable.RowSelected, "#jobs-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        # The table's own enter binding wins over the pane's: enter on a row opens that job.
        event.stop()
        self.action_open_job(event.row_key.value)

    # ── detail ──────────────────────────────────────────────────────────────────────────

    def action_open_job(self, job_id: str | None = None) -> None:
        """Follow a job: events, loss chart, checkpoints."""
        job_id = job_id or self._highlighted_id()
        if job_id is None:
            return
        self.query_one(ContentSwitcher).current = "jobs-detail"
        self.query_one(JobDetail).open(job_id)
        self.focus_default()
        self.refresh_bindings()

    def action_back(self) -> None:
        """Back to the list."""
        self.query_one(ContentSwitcher).current = "jobs-list-view"
        self.focus_default()
        self.refresh_bindings()
        self.action_refresh()

    def action_detail_tab(self, name: str) -> None:
        """Show one tab of the job detail."""
        self.query_one(JobDetail).show_tab(name)

    def action_attach(self) -> None:
        """Ask for a job id and follow it."""
        from tui.screens.prompt import PromptScreen

        def chosen(job_id: str | None) -> None:
            if job_id:
                self.action_open_job(job_id)

        self.app.push_screen(PromptScreen("Attach to a job", placeholder="ftjob-…",
                                          hint="Any job on this provider, by id."), chosen)

    def on_job_detail_loaded(self, message: JobDetail.Loaded) -> None:
        self.refresh_bindings()

    def on_job_detail_extras(self, message: JobDetail.Extras) -> None:
        self.refresh_bindings()  # w saves the results CSV once there is one

    def action_save_results(self) -> None:
        """Save the shown job's results CSV in the exports folder."""
        detail = self.query_one(JobDetail)
        if detail.job is not None and detail.results is not None:
            self.save_results(detail.results, detail.job.id)

    @work(thread=True, group="jobs-save", exit_on_error=False)
    def save_results(self, results: ResultsTable, job_id: str) -> None:
        """Write the CSV as the provider served it (never into the current directory)."""
        from tui.core.finetune.jobs import save_results
        from tui.core.paths import exports_dir

        path = save_results(results, job_id, exports_dir())
        self.post_message(self.ResultsSaved(path))

    def on_jobs_pane_results_saved(self, message: ResultsSaved) -> None:
        self.notify(f"Saved {message.path}", title="Results CSV")

    def on_job_ended(self, message: JobEnded) -> None:
        # Not stopped: the app rings the bell and tells the other panes.
        provider = self.session.connection.name if self.session.connection else "?"
        self.record_status(provider, message)

    @work(thread=True, group="jobs-history", exit_on_error=False)
    def record_status(self, provider: str, message: JobEnded) -> None:
        """Remember how the job ended and the tuned model's name (lineage: model -> job)."""
        from tui.core.finetune.lineage import record_job_status

        record_job_status(provider, message.job_id, message.status, message.fine_tuned_model)

    # ── create ──────────────────────────────────────────────────────────────────────────

    def action_new_job(self) -> None:
        """Open the create form (files and models are read first)."""
        self.open_create_form()

    @work(exclusive=True, group="jobs-create", exit_on_error=False)
    async def open_create_form(self, defaults: FormDefaults | None = None) -> None:
        """Read the files and models the form offers, then show it; create on confirm.

        ``defaults`` (a core.job_form.FormDefaults, from Budget's "train this") preselect the
        files, model and epochs; else the newest training file and its validation pair."""
        import asyncio

        from tui.core.finetune.files import FileService
        from tui.core.finetune.lineage import record_job, spec_with_template
        from tui.core.history import HistoryError
        from tui.screens.create_job import CreateJobScreen, load_form_data

        client = await self.session.client()
        connection = self.session.connection
        provider = connection.name if connection else "?"
        kind = connection.kind if connection else "openai"
        data = await load_form_data(client, kind, provider, defaults)
        service = await self.session.jobs()
        local = {f.id: f.local_path for f in data.files if f.local_path}
        screen = CreateJobScreen.from_data(data, note=service.creation_note(),
                                           fetch=FileService(client).content,
                                           provider_kind=kind)
        spec = await self.app.push_screen_wait(screen)
        if spec is None:
            return
        # The job carries its template's fingerprint; history links file, job and model.
        local_path = local.get(spec.training_file)
        spec = await asyncio.to_thread(spec_with_template, spec, provider, local_path)
        job = await service.create(spec)
        try:
            await asyncio.to_thread(record_job, provider, job, local_path)
        except HistoryError as error:  # the job exists; only its lineage is not kept here
            self.notify(f"history not updated: {error}", title="History", severity="warning")
        self.post_message(JobCreated(job.id))
        self.action_open_job(job.id)

    # ── control ─────────────────────────────────────────────────────────────────────────

    def action_control(self, action: str) -> None:
        """Cancel, pause or resume the selected job, after a confirmation."""
        from tui.screens.confirm import ConfirmScreen

        job = self._selected_job()
        if job is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.control(job.id, action)

        self.app.push_screen(ConfirmScreen(f"{action.capitalize()} {job.id} ({job.status})?",
                                           yes=action.capitalize()), answered)

    @work(exclusive=True, group="jobs-control", exit_on_error=False)
    async def control(self, job_id: str, action: str) -> None:
        """Call cancel, pause or resume on the provider."""
        service = await self.session.jobs()
        job = await getattr(service, action)(job_id)
        self.post_message(self.Controlled(job, action))

    def on_jobs_pane_controlled(self, message: Controlled) -> None:
        self.notify(f"{message.job.id}: {message.job.status}", title=f"Job {message.action}")
        detail = self.query_one(JobDetail)
        if detail.job is not None and detail.job.id == message.job.id:
            detail.job = message.job
            detail.poke(message.job.id)
        self.action_refresh()
