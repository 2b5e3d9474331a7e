"""Fine-tuning jobs on any OpenAI-style provider: list, create, control, checkpoints, results."""

from __future__ import annotations

import builtins
import csv
import datetime as dt
import io
import math
import os
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from tui.core.finetune.files import ListPage, given, sdk_json
from tui.core.finetune.status import TERMINAL_STATUSES
from tui.core.provider.config import ProviderKind
from tui.core.provider.providers import Capabilities, default_capabilities, fine_tuning_note
from tui.core.provider.retries import describe_error

if TYPE_CHECKING:  # the SDK costs ~0.5 s to import: not before the app's first frame
    import openai

    from tui.core.provider.connection import Connection

T = TypeVar("T")


class JobsError(Exception):
    """A job operation failed; the message is fit for the user and never holds a key."""


@dataclass(frozen=True)
class JobEvent:
    """One fine-tuning job event, as the provider reported it."""

    id: str
    """Provider's event id (the cursor)."""
    created_at: int
    """Unix seconds."""
    level: str
    """info, warn or error."""
    message: str
    """Human-readable text, e.g. ``Step 12/300: training loss=0.84``."""
    type: str | None = None
    """``message`` or ``metrics`` (None when the provider does not say)."""
    data: dict[str, Any] | None = None
    """Structured payload (metrics events: step, train_loss, ...)."""

    @classmethod
    def from_sdk(cls, event: Any) -> JobEvent:
        """Convert an ``openai.types.fine_tuning.FineTuningJobEvent`` (or look-alike)."""
        data = getattr(event, "data", None)
        return cls(id=str(event.id), created_at=int(event.created_at or 0),
                   level=str(getattr(event, "level", "info") or "info"),
                   message=str(getattr(event, "message", "") or ""),
                   type=getattr(event, "type", None),
                   data=dict(data) if isinstance(data, dict) else None)

    @property
    def timestamp(self) -> str:
        """``2026-11-25T12:00:01Z``."""
        moment = dt.datetime.fromtimestamp(self.created_at, tz=dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def line(self) -> str:
        """``2026-11-25T12:00:01Z  info  Step 12/300: training loss=0.84``."""
        return f"{self.timestamp}  {self.level}  {self.message}"


@dataclass(frozen=True)
class JobInfo:
    """A fine-tuning job as the provider reports it."""

    id: str
    """Provider job id."""
    model: str
    """Base model."""
    status: str
    """validating_files, queued, running, paused, succeeded, failed, cancelled."""
    created_at: int
    """Unix seconds."""
    training_file: str
    """Training file id."""
    validation_file: str | None = None
    """Validation file id."""
    fine_tuned_model: str | None = None
    """Set once the job succeeded."""
    finished_at: int | None = None
    """Unix seconds."""
    trained_tokens: int | None = None
    """Billable tokens trained so far (set at the end by OpenAI)."""
    estimated_finish: int | None = None
    """Provider's estimate, Unix seconds."""
    error: str | None = None
    """Failure message."""
    error_code: str | None = None
    """Failure code, e.g. ``invalid_training_file``."""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    """n_epochs, batch_size, learning_rate_multiplier (resolved values once known)."""
    seed: int | None = None
    """Training seed."""
    result_files: tuple[str, ...] = ()
    """Result file ids (the metrics CSV)."""
    metadata: dict[str, str] = field(default_factory=dict)
    """User metadata."""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The job object as the provider sent it (what ``--json`` prints)."""

    @classmethod
    def from_sdk(cls, job: Any) -> JobInfo:
        """From an ``openai.types.fine_tuning.FineTuningJob``."""
        hyper: dict[str, Any] = {}
        method = getattr(job, "method", None)
        supervised = getattr(method, "supervised", None) if method is not None else None
        for source in (getattr(job, "hyperparameters", None),
                       getattr(supervised, "hyperparameters", None)):
            if source is not None:
                for name in ("n_epochs", "batch_size", "learning_rate_multiplier"):
                    value = getattr(source, name, None)
                    if value is not None:
                        hyper[name] = value
        error = getattr(job, "error", None)
        return cls(
            id=job.id, model=job.model, status=str(job.status), created_at=int(job.created_at),
            training_file=job.training_file, validation_file=job.validation_file,
            fine_tuned_model=job.fine_tuned_model, finished_at=job.finished_at,
            trained_tokens=job.trained_tokens, estimated_finish=job.estimated_finish,
            error=getattr(error, "message", None) or None,
            error_code=getattr(error, "code", None) or None,
            hyperparameters=hyper, seed=getattr(job, "seed", None),
            result_files=tuple(job.result_files or ()), metadata=dict(job.metadata or {}),
            raw=sdk_json(job))

    @property
    def terminal(self) -> bool:
        """succeeded, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    def age(self, now: dt.datetime | None = None) -> dt.timedelta:
        """Time since creation."""
        now = now or dt.datetime.now(dt.UTC)
        return now - dt.datetime.fromtimestamp(self.created_at, tz=dt.UTC)


@dataclass(frozen=True)
class JobSpec:
    """What the create form collects."""

    model: str
    """Base model."""
    training_file: str
    """Training file id."""
    validation_file: str | None = None
    """Validation file id."""
    suffix: str | None = None
    """Up to 64 characters added to the tuned model's name."""
    n_epochs: int | Literal["auto"] = "auto"
    """Epochs."""
    batch_size: int | Literal["auto"] = "auto"
    """Batch size."""
    learning_rate_multiplier: float | Literal["auto"] = "auto"
    """Learning-rate multiplier."""
    seed: int | None = None
    """Seed for reproducibility."""
    metadata: dict[str, str] = field(default_factory=dict)
    """Job metadata (e.g. the sqltune template hash)."""

    def create_kwargs(self) -> dict[str, Any]:
        """Arguments for ``client.fine_tuning.jobs.create`` (supervised method)."""
        hyper = {"n_epochs": self.n_epochs, "batch_size": self.batch_size,
                 "learning_rate_multiplier": self.learning_rate_multiplier}
        kwargs: dict[str, Any] = {
            "model": self.model, "training_file": self.training_file,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
        }
        if self.validation_file:
            kwargs["validation_file"] = self.validation_file
        if self.suffix:
            kwargs["suffix"] = self.suffix
        if self.seed is not None:
            kwargs["seed"] = self.seed
        if self.metadata:
            kwargs["metadata"] = dict(self.metadata)
        return kwargs


@dataclass(frozen=True)
class CheckpointInfo:
    """A saved checkpoint of a job."""

    id: str
    """Checkpoint id."""
    step: int
    """Training step."""
    model: str
    """Checkpoint model name, usable for inference (``ft:...:ckpt-step-N``)."""
    created_at: int
    """Unix seconds."""
    metrics: dict[str, float]
    """train_loss, valid_loss, full_valid_loss, ..."""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The checkpoint object as the provider sent it."""

    @classmethod
    def from_sdk(cls, item: Any) -> CheckpointInfo:
        """From an ``openai.types.fine_tuning.jobs.FineTuningJobCheckpoint``."""
        metrics = item.metrics.model_dump(exclude_none=True) if item.metrics else {}
        return cls(id=item.id, step=int(item.step_number), model=item.fine_tuned_model_checkpoint,
                   created_at=int(item.created_at),
                   metrics={k: float(v) for k, v in metrics.items()
                            if isinstance(v, int | float)}, raw=sdk_json(item))


@dataclass(frozen=True)
class ResultsTable:
    """The parsed results CSV: one row per step."""

    columns: tuple[str, ...]
    """Header names."""
    rows: tuple[dict[str, float | None], ...]
    """Rows with numbers (None for empty cells)."""
    text: str = ""
    """The CSV as the provider served it (what save_results writes)."""

    def series(self, column: str) -> builtins.list[tuple[float, float]]:
        """(step, value) pairs of a column, skipping empty cells."""
        out = []
        for row in self.rows:
            step, value = row.get("step"), row.get(column)
            if step is not None and value is not None:
                out.append((step, value))
        return out


def parse_results_csv(text: str) -> ResultsTable:
    """Parse a step-metrics CSV; non-numeric or empty cells become None."""
    reader = csv.DictReader(io.StringIO(text))
    columns = tuple(name.strip() for name in reader.fieldnames or ())
    rows = []
    for raw in reader:
        row: dict[str, float | None] = {}
        for key, value in raw.items():
            if key is None:
                continue
            try:
                number = float(value) if value not in (None, "") else None
            except ValueError:
                number = None
            row[key.strip()] = number if number is None or math.isfinite(number) else None
        rows.append(row)
    return ResultsTable(columns, tuple(rows), text)


def save_results(results: ResultsTable, job_id: str, folder: Path) -> Path:
    """Write the results CSV as served to ``folder/<job id>-results.csv`` (the folder is made;
    a file already there is replaced: a job's results never change); return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{job_id}-results.csv"
    partial = path.with_name(path.name + ".part")
    partial.write_text(results.text, encoding="utf-8", newline="")
    os.replace(partial, path)
    return path


@dataclass(frozen=True)
class StepProgress:
    """Training progress read from metrics events."""

    step: int
    """Latest step."""
    total_steps: int
    """Steps in the whole job."""
    first_step_at: int
    """Unix seconds of the first metrics event."""
    latest_at: int
    """Unix seconds of the latest metrics event."""
    first_step: int = 1
    """Step number of the first metrics event seen."""


def progress_from_events(events: Iterable[JobEvent]) -> StepProgress | None:
    """Step progress from metrics events (``data.step`` and ``data.total_steps``)."""
    first: JobEvent | None = None
    last: JobEvent | None = None
    for event in events:
        data = event.data or {}
        if isinstance(data.get("step"), int | float) and data.get("total_steps"):
            first = first or event
            last = event
    if first is None or last is None:
        return None
    first_data, last_data = first.data or {}, last.data or {}
    return StepProgress(step=int(last_data["step"]), total_steps=int(last_data["total_steps"]),
                        first_step_at=first.created_at, latest_at=last.created_at,
                        first_step=int(first_data["step"]))


def estimate_finish(job: JobInfo, progress: StepProgress | None = None) -> dt.datetime | None:
    """The provider's estimate, else a linear extrapolation of step progress; None if unknown."""
    if job.terminal:
        return None if job.finished_at is None else dt.datetime.fromtimestamp(
            job.finished_at, tz=dt.UTC)
    if job.status == "paused":  # it finishes when someone resumes it: no time can be given
        return None
    if job.estimated_finish:
        return dt.datetime.fromtimestamp(job.estimated_finish, tz=dt.UTC)
    if progress is None or progress.step <= progress.first_step:
        return None
    per_step = (progress.latest_at - progress.first_step_at) / (progress.step - progress.first_step)
    remaining = max(0, progress.total_steps - progress.step) * per_step
    return dt.datetime.fromtimestamp(progress.latest_at + remaining, tz=dt.UTC)


class JobService:
    """Jobs on one provider through the openai SDK; returns dataclasses, raises JobsError."""

    def __init__(self, client: openai.AsyncOpenAI, *, kind: ProviderKind = "local",
                 capabilities: Capabilities | None = None) -> None:
        self._client = client
        self.kind: ProviderKind = kind
        """Provider kind (for notes such as OpenAI's end of new jobs)."""
        self.capabilities = capabilities or default_capabilities(kind)
        """What the provider supports."""

    @classmethod
    def on(cls, connection: Connection) -> JobService:
        """The job service of a connected provider (its client, kind and capabilities)."""
        return cls(connection.client, kind=connection.resolved.kind,
                   capabilities=connection.resolved.capabilities)

    async def _call(self, what: str, awaitable: Awaitable[T]) -> T:
        import openai  # lazily: the SDK is slow to import
        try:
            return await awaitable
        except openai.OpenAIError as error:
            raise JobsError(f"{what} failed: {describe_error(error)}") from None

    async def list(self, limit: int = 100) -> builtins.list[JobInfo]:
        """Up to ``limit`` jobs, newest first (all pages as needed)."""
        async def fetch() -> builtins.list[JobInfo]:
            found: builtins.list[JobInfo] = []
            async for job in self._client.fine_tuning.jobs.list(limit=min(limit, 100)):
                found.append(JobInfo.from_sdk(job))
                if len(found) >= limit:
                    break
            return found
        return await self._call("listing jobs", fetch())

    async def page(self, *, limit: int | None = None,
                   after: str | None = None) -> ListPage[JobInfo]:
        """One page of jobs as the provider lists it, newest first."""
        page = await self._call("listing jobs", self._client.fine_tuning.jobs.list(
            **given(limit=limit, after=after)))
        return ListPage([JobInfo.from_sdk(job) for job in page.data], bool(page.has_more),
                        sdk_json(page))

    async def events_page(self, job_id: str, *, limit: int | None = None,
                          after: str | None = None) -> ListPage[JobEvent]:
        """One page of a job's events as the provider lists them, newest first."""
        page = await self._call(f"listing events of job {job_id}",
                                self._client.fine_tuning.jobs.list_events(
                                    job_id, **given(limit=limit, after=after)))
        return ListPage([JobEvent.from_sdk(event) for event in page.data],
                        bool(page.has_more), sdk_json(page))

    async def checkpoints_page(self, job_id: str, *, limit: int | None = None,
                               after: str | None = None) -> ListPage[CheckpointInfo]:
        """One page of a job's checkpoints as the provider lists them, newest first."""
        self._require("checkpoints", "listing checkpoints")
        page = await self._call(f"listing checkpoints of job {job_id}",
                                self._client.fine_tuning.jobs.checkpoints.list(
                                    job_id, **given(limit=limit, after=after)))
        return ListPage([CheckpointInfo.from_sdk(item) for item in page.data],
                        bool(page.has_more), sdk_json(page))

    def creation_note(self, today: dt.date | None = None) -> str | None:
        """A note to show on the create form (OpenAI's end of new fine-tuning jobs)."""
        return fine_tuning_note(self.kind, today)

    async def create(self, spec: JobSpec) -> JobInfo:
        """Start a supervised fine-tuning job."""
        job = await self._call(f"creating a job on {spec.model}",
                               self._client.fine_tuning.jobs.create(**spec.create_kwargs()))
        return JobInfo.from_sdk(job)

    async def retrieve(self, job_id: str) -> JobInfo:
        """One job."""
        job = await self._call(f"reading job {job_id}",
                               self._client.fine_tuning.jobs.retrieve(job_id))
        return JobInfo.from_sdk(job)

    async def cancel(self, job_id: str) -> JobInfo:
        """Cancel a job."""
        job = await self._call(f"cancelling job {job_id}",
                               self._client.fine_tuning.jobs.cancel(job_id))
        return JobInfo.from_sdk(job)

    async def pause(self, job_id: str) -> JobInfo:
        """Pause a running job (providers with pause_resume only)."""
        self._require("pause_resume", "pausing jobs")
        job = await self._call(f"pausing job {job_id}",
                               self._client.fine_tuning.jobs.pause(job_id))
        return JobInfo.from_sdk(job)

    async def resume(self, job_id: str) -> JobInfo:
        """Resume a paused job (providers with pause_resume only)."""
        self._require("pause_resume", "resuming jobs")
        job = await self._call(f"resuming job {job_id}",
                               self._client.fine_tuning.jobs.resume(job_id))
        return JobInfo.from_sdk(job)

    async def checkpoints(self, job_id: str) -> builtins.list[CheckpointInfo]:
        """A job's checkpoints, by step (providers with checkpoints only; else empty)."""
        if not self.capabilities.checkpoints:
            return []

        async def fetch() -> builtins.list[CheckpointInfo]:
            found = [CheckpointInfo.from_sdk(item) async for item in
                     self._client.fine_tuning.jobs.checkpoints.list(job_id)]
            return sorted(found, key=lambda c: c.step)
        return await self._call(f"listing checkpoints of job {job_id}", fetch())

    async def results(self, job: JobInfo | str) -> ResultsTable | None:
        """The job's results CSV, parsed; None while the job has no result file."""
        if isinstance(job, str):
            job = await self.retrieve(job)
        if not job.result_files:
            return None
        response = await self._call(f"downloading results of job {job.id}",
                                    self._client.files.content(job.result_files[0]))
        data = cast(bytes, response.content)
        return parse_results_csv(data.decode("utf-8", errors="replace"))

    def _require(self, capability: str, doing: str) -> None:
        if not getattr(self.capabilities, capability):
            raise JobsError(f"this provider ({self.kind}) does not support {doing}; set "
                            f"capabilities.{capability} = true in its profile if it does")
