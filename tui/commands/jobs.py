"""``sqltune jobs create|list|get|events|checkpoints|cancel|pause|resume``: jobs from a script."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from tui.commands._headless import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Column,
    CommandError,
    call_service,
    fields,
    open_provider,
    output_width,
    print_object,
    print_page,
    run_command,
    table,
    timestamp,
)
from tui.commands.files import (
    file_service,
    find_real_base,
    local_file,
    remember,
    show_warnings,
    upload_validated,
    validate_local,
)

if TYPE_CHECKING:
    import openai

    from tui.core.finetune.estimate import RealBase
    from tui.core.finetune.files import FileService
    from tui.core.finetune.jobs import JobInfo, JobService
    from tui.core.provider.connection import Connection

T = TypeVar("T")

SUCCESS_STATUS = "succeeded"
JOB_COLUMNS = (Column("ID"), Column("STATUS"), Column("CREATED (UTC)", drop=1),
               Column("MODEL", flexible=True, minimum=16, drop=2),
               Column("FINE-TUNED MODEL", flexible=True, minimum=30))
METRIC_HEADERS = {"train_loss": "TRAIN LOSS", "valid_loss": "VALID LOSS",
                  "full_valid_loss": "FULL VALID LOSS", "train_mean_token_accuracy": "TRAIN ACC",
                  "valid_mean_token_accuracy": "VALID ACC",
                  "full_valid_mean_token_accuracy": "FULL VALID ACC"}
"""Checkpoint metrics in the order the table shows them (others follow, by name)."""


def job_service(provider: Connection) -> JobService:
    """The core job service on the provider's client."""
    from tui.core.finetune.jobs import JobService

    return JobService.on(provider)


async def call_jobs(args: argparse.Namespace, call: Callable[[JobService], Awaitable[T]]) -> T:
    """One call of the job service; a JobsError exits 1 with its message."""
    from tui.core.finetune.jobs import JobsError

    return await call_service(args, job_service, call, JobsError)


def file_argument(text: str) -> Path | str:
    """A local file to upload, or a provider file id (a missing path is an error, exit 2)."""
    path = Path(text).expanduser()
    if path.exists():
        return local_file(path)
    if "/" in text or "\\" in text or text.endswith((".jsonl", ".json")):
        raise CommandError(f"{text}: no such file (give a local JSONL file or a file id)",
                           EXIT_USAGE)
    return text


def describe_job(job: JobInfo) -> list[str]:
    """``status  running`` lines of one job."""
    hyper = "  ".join(f"{name}={value}" for name, value in job.hyperparameters.items())
    pairs = [("id", job.id), ("status", job.status), ("model", job.model),
             ("fine-tuned model", job.fine_tuned_model or "-"),
             ("training file", job.training_file),
             ("validation file", job.validation_file or "-"),
             ("hyperparameters", hyper or "-"),
             ("seed", "-" if job.seed is None else str(job.seed)),
             ("created", f"{timestamp(job.created_at)} UTC")]
    if job.estimated_finish and not job.terminal and job.status != "paused":
        pairs.append(("estimated finish", f"{timestamp(job.estimated_finish)} UTC"))
    if job.finished_at:
        pairs.append(("finished", f"{timestamp(job.finished_at)} UTC"))
    if job.trained_tokens is not None:
        pairs.append(("trained tokens", f"{job.trained_tokens:,}"))
    if job.result_files:
        pairs.append(("result files", " ".join(job.result_files)))
    if job.error or job.error_code:
        pairs.append(("error", f"{job.error_code}: {job.error}" if job.error_code
                      else str(job.error)))
    return fields(pairs)


def _print_job(args: argparse.Namespace, job: JobInfo) -> None:
    print_object(args, job.raw, describe_job(job))


async def _estimate(args: argparse.Namespace, files: FileService, training: Path | str,
                    report: Any, kind: str, base: RealBase | None, out: TextIO) -> None:
    """Print the estimate (trained tokens, whose price, a real base's duration); a file id is
    downloaded to count it."""
    from tui.core.data.jsonl import validate_bytes
    from tui.core.finetune.estimate import duration_lines, estimate_job
    from tui.core.finetune.files import FilesError

    if report is None:
        counting: dict[str, Any] = {} if base is None else {
            "token_check": base.counter.count, "context": base.counter.context_limit}
        try:
            data = await files.content(str(training))
            report = await asyncio.to_thread(validate_bytes, data, args.model, **counting)
        except FilesError as error:
            print(f"no estimate: {error}", file=sys.stderr)
            return
    if not report.ok:
        print(f"no estimate: {training} has {len(report.errors)} errors; the provider will "
              "probably refuse it", file=sys.stderr)
        return
    estimate = estimate_job(report, args.model, args.epochs, kind)
    print(f"estimate: {estimate.line()}", file=out, flush=True)
    for line in duration_lines(estimate, base):
        print(f"estimate: {line}", file=out, flush=True)
    if estimate.note:
        print(f"estimate: {estimate.note}", file=sys.stderr)


async def follow_job(client: openai.AsyncOpenAI, job_id: str, out: TextIO, *,
                     local: bool = False) -> JobInfo | None:
    """Print a job's events until it ends (as ``sqltune watch`` does); the job as it ended.

    On the local server (loopback, no rate limit) a queued or paused job is polled faster."""
    from tui.commands.watch import print_events, reconnect_notice
    from tui.core.finetune.follower import EventFollower, FollowerError, PollPolicy

    policy = PollPolicy(queued=1.0, paused=2.0) if local else None
    follower = EventFollower(client, job_id, on_state=reconnect_notice("sqltune jobs", sys.stderr),
                             policy=policy)
    try:
        return await print_events(follower, out)
    except FollowerError as error:
        raise CommandError(str(error)) from None


async def _create(args: argparse.Namespace) -> int:
    from tui.core.finetune.jobs import JobsError, JobSpec
    from tui.core.finetune.lineage import record_job, record_upload, spec_with_template

    training = file_argument(args.training_file)
    validation = file_argument(args.validation_file) if args.validation_file else None
    reports = {given: await validate_local(given, args.model)
               for given in (training, validation) if isinstance(given, Path)}
    info = sys.stderr if args.json else sys.stdout  # stdout holds only the JSON object
    async with open_provider(args) as provider:
        files, jobs = file_service(provider), job_service(provider)
        name = provider.resolved.name
        note = jobs.creation_note()
        if note:
            print(note, file=sys.stderr)
        base = await find_real_base(provider, args.model)
        for given in reports:
            if base is not None:  # count again with the base's own tokenizer and context
                reports[given] = await validate_local(given, args.model, base.counter)
            show_warnings(given, reports[given])
        report = reports.get(training) if isinstance(training, Path) else None
        await _estimate(args, files, training, report, provider.resolved.kind, base, info)
        ids: dict[str, str | None] = {"training": None, "validation": None}
        for role, source in (("training", training), ("validation", validation)):
            if isinstance(source, Path):
                uploaded = await upload_validated(files, source)
                print(f"uploaded {source.name} as {uploaded.id} ({role} file)", file=info,
                      flush=True)
                ids[role] = uploaded.id
                await remember(f"the upload of {source.name}", partial(
                    record_upload, name, uploaded.id, source))
            else:
                ids[role] = source
        spec = JobSpec(model=args.model, training_file=str(ids["training"]),
                       validation_file=ids["validation"], suffix=args.suffix,
                       n_epochs=args.epochs, batch_size=args.batch_size,
                       learning_rate_multiplier=args.learning_rate_multiplier, seed=args.seed)
        # The job names its template (fingerprint in its metadata) when sqltune wrote the file.
        local_path = training if isinstance(training, Path) else None
        spec = await asyncio.to_thread(spec_with_template, spec, name, local_path)
        try:
            job = await jobs.create(spec)
            await remember(f"job {job.id}", partial(record_job, name, job, local_path))
            if not args.wait:
                _print_job(args, job)
                return EXIT_OK
            print(f"created {job.id} ({job.status}); following it until it ends", file=info,
                  flush=True)
            try:
                ended = await follow_job(provider.client, job.id, info,
                                         local=provider.resolved.kind == "local")
            except asyncio.CancelledError:  # Ctrl-C: the job itself goes on
                print(f"stopped following; job {job.id} keeps running "
                      f"(sqltune jobs get {job.id})", file=sys.stderr, flush=True)
                raise
            job = ended or await jobs.retrieve(job.id)
            await remember(f"job {job.id}", partial(record_job, name, job, local_path))
        except JobsError as error:
            raise CommandError(str(error)) from None
    _print_job(args, job)
    if job.status != SUCCESS_STATUS:
        print(f"sqltune jobs create: job {job.id} {job.status}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


async def _list(args: argparse.Namespace) -> int:
    page = await call_jobs(args, lambda jobs: jobs.page(limit=args.limit, after=args.after))
    rows = [[job.id, job.status, timestamp(job.created_at), job.model,
             job.fine_tuned_model or "-"] for job in page.items]
    lines = table(JOB_COLUMNS, rows, output_width()) if rows else ["no jobs"]
    return print_page(args, page, lines, "more jobs")


async def _get(args: argparse.Namespace) -> int:
    _print_job(args, await call_jobs(args, lambda jobs: jobs.retrieve(args.job_id)))
    return EXIT_OK


async def _events(args: argparse.Namespace) -> int:
    page = await call_jobs(args, lambda jobs: jobs.events_page(args.job_id, limit=args.limit,
                                                               after=args.after))
    return print_page(args, page, [event.line() for event in reversed(page.items)],
                      "older events")


async def _checkpoints(args: argparse.Namespace) -> int:
    page = await call_jobs(args, lambda jobs: jobs.checkpoints_page(args.job_id, limit=args.limit,
                                                                    after=args.after))
    if not page.items:
        return print_page(args, page, ["no checkpoints"], "more checkpoints")
    found = {name for item in page.items for name in item.metrics} - {"step"}
    names = [n for n in METRIC_HEADERS if n in found] + sorted(found - set(METRIC_HEADERS))
    columns = (Column("STEP", right=True),
               *(Column(METRIC_HEADERS.get(name) or name.upper().replace("_", " "), right=True,
                        drop=None if n < 2 else 10 - n) for n, name in enumerate(names)),
               Column("CREATED (UTC)", drop=1), Column("ID", drop=2),
               Column("MODEL", flexible=True, minimum=34))
    rows = [[str(item.step),
             *(f"{item.metrics[name]:.4f}" if name in item.metrics else "-" for name in names),
             timestamp(item.created_at), item.id, item.model]
            for item in sorted(page.items, key=lambda item: item.step)]
    return print_page(args, page, table(columns, rows, output_width()), "more checkpoints")


async def _control(args: argparse.Namespace) -> int:
    def control(jobs: JobService) -> Awaitable[JobInfo]:
        call = {"cancel": jobs.cancel, "pause": jobs.pause,
                "resume": jobs.resume}[args.jobs_command]
        return call(args.job_id)

    job = await call_jobs(args, control)
    print_object(args, job.raw, [f"{job.id} {job.status}"])
    return EXIT_OK


ACTIONS = {"create": _create, "list": _list, "get": _get, "events": _events,
           "checkpoints": _checkpoints, "cancel": _control, "pause": _control,
           "resume": _control}


def run(args: argparse.Namespace) -> int:
    """Entry point from tui.cli (the action is ``args.jobs_command``)."""
    action = ACTIONS[args.jobs_command]
    return run_command(f"sqltune jobs {args.jobs_command}", args, lambda: action(args))
