"""The job runner: validates files, queues, drives an engine step by step, checkpoints, finishes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from tui.core.finetune.status import ACTIVE_STATUSES
from tui.server.blobs import BlobStore
from tui.server.engines import (
    ChatExample,
    EngineError,
    HyperparameterError,
    Hyperparameters,
    TrainingEngine,
    TrainingRun,
    get_engine,
)
from tui.server.errors import bad_request, not_found
from tui.server.pace import Pace
from tui.server.store import JobRecord, Store, new_id, now
from tui.server.training import (
    JobFailed,
    checkpoint_metrics,
    metrics_data,
    parse_examples,
    results_csv,
    step_message,
    validate_file,
)

log = logging.getLogger(__name__)

KEEP_CHECKPOINTS = 3
"""Checkpoints kept per job (OpenAI keeps the last few)."""
PROGRESS_EVERY_S = 3.0
"""At most one base-model download/conversion progress event per this many seconds."""
ESTIMATE_EVERY_S = 10.0
"""How often ``estimated_finish`` is refreshed from the measured step times."""


class JobRunner:
    """Owns one asyncio task per unfinished job and the transitions the API asks for."""

    def __init__(self, store: Store, blobs: BlobStore, pace: Pace, *,
                 max_running: int = 4,
                 engines: dict[str, TrainingEngine] | None = None) -> None:
        self.store = store
        """The server database."""
        self.blobs = blobs
        """The blob folder."""
        self.pace = pace
        """How fast jobs run."""
        self.stopping = False
        """Set when the server shuts down: drivers snapshot and return."""
        self.engines: dict[str, TrainingEngine] = (
            engines if engines is not None else {"ngram": get_engine("ngram")})
        """The server's engines by name (the same dict as ``ServerContext.engines``)."""
        self.runs: dict[str, TrainingRun] = {}
        """The live run of each job being trained (cancel aborts it)."""
        self._slots = asyncio.Semaphore(max_running)
        self._engine_slots: dict[str, asyncio.Semaphore] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}

    def start(self) -> None:
        """Pick up every unfinished job left by an earlier run of the server."""
        for job in self.store.jobs_in(ACTIVE_STATUSES):
            self._spawn(job.id, recovered=True)

    async def stop(self, timeout: float = 10.0) -> None:
        """Let drivers snapshot and return, then cancel whatever is still running."""
        self.stopping = True
        for event in self._wake.values():
            event.set()
        tasks = [task for task in self._tasks.values() if not task.done()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for job_id in list(self.runs):  # a step still running past the timeout
                self.abort_run(job_id)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def submit(self, job: JobRecord) -> None:
        """Start driving a newly created job."""
        self._spawn(job.id, recovered=False)

    def _spawn(self, job_id: str, *, recovered: bool) -> None:
        self._wake[job_id] = asyncio.Event()
        task = asyncio.get_running_loop().create_task(
            JobDriver(self, job_id, recovered=recovered).run(), name=f"job {job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda done: self._forget(job_id, done))

    def _forget(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(job_id) is task:  # not a driver spawned since (a resumed job)
            self._tasks.pop(job_id, None)
            self._wake.pop(job_id, None)

    def engine(self, name: str) -> TrainingEngine:
        """The engine called ``name``; JobFailed when this server has none by that name."""
        found = self.engines.get(name)
        if found is None:
            from tui.server.engines.lora import engine_unavailable, train_extra_missing

            text = engine_unavailable(name, train_extra_missing() if name == "lora" else None)
            raise JobFailed("engine_unavailable", f"{text[0].upper()}{text[1:]}.")
        return found

    def engine_slots(self, job: JobRecord) -> asyncio.Semaphore:
        """The engine's own cap on jobs trained at once (``max_concurrent_jobs``; the lora engine
        trains one at a time: each worker holds a whole model in memory). A paused job keeps its
        slot unless its engine releases paused jobs (``releases_paused``)."""
        name = str(job.private.get("engine", ""))
        slots = self._engine_slots.get(name)
        if slots is None:
            engine = self.engines.get(name)
            cap = engine.max_concurrent_jobs if engine is not None else None
            slots = asyncio.Semaphore(cap if isinstance(cap, int) and cap > 0 else 1 << 30)
            self._engine_slots[name] = slots
        return slots

    def releases_paused(self, job: JobRecord) -> bool:
        """Whether pausing ``job`` snapshots it and stops its run, freeing the engine's slot for
        a queued job (the lora engine: a paused worker would hold a whole model); resuming then
        queues it again. Other engines' paused runs wait in memory."""
        engine = self.engines.get(str(job.private.get("engine", "")))
        return engine is not None and engine.release_paused_jobs

    def abort_run(self, job_id: str) -> None:
        """Stop the job's live run at once if its engine can (the lora worker is killed)."""
        run = self.runs.get(job_id)
        if run is not None:  # off the event loop: the lora worker's abort reaps the killed process
            threading.Thread(target=run.abort, name=f"abort {job_id}", daemon=True).start()

    def wake_event(self, job_id: str) -> asyncio.Event:
        """The event a paused driver waits on."""
        return self._wake.setdefault(job_id, asyncio.Event())

    # transitions the API asks for ------------------------------------------------------
    def job(self, job_id: str) -> JobRecord:
        """The job or a 404."""
        job = self.store.get_job(job_id)
        if job is None:
            raise not_found("fine-tuning job", job_id, param="fine_tuning_job_id")
        return job

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel an unfinished job (400 when it already ended)."""
        job = self.job(job_id)
        if job.status not in ACTIVE_STATUSES:
            raise bad_request(f"Job {job_id} has already {job.status}; it cannot be cancelled.",
                              param="fine_tuning_job_id")
        job.doc.update(status="cancelled", finished_at=now(), estimated_finish=None)
        self.store.save_job(job)
        self.store.add_event(job_id, "Fine-tuning job cancelled")
        self.abort_run(job_id)
        self.wake_event(job_id).set()
        return job

    def pause(self, job_id: str) -> JobRecord:
        """Pause a running job (400 in any other state)."""
        job = self.job(job_id)
        if job.status != "running":
            raise bad_request(f"Job {job_id} is {job.status}; only a running job can be paused.",
                              param="fine_tuning_job_id")
        job.doc.update(status="paused", estimated_finish=None)
        self.store.save_job(job)
        self.store.add_event(job_id, "Fine-tuning job paused")
        return job

    def resume(self, job_id: str) -> JobRecord:
        """Resume a paused job (400 in any other state)."""
        job = self.job(job_id)
        if job.status != "paused":
            raise bad_request(f"Job {job_id} is {job.status}; only a paused job can be resumed.",
                              param="fine_tuning_job_id")
        # A released job waits for its engine's slot again; its driver sets it running.
        released = self.releases_paused(job)
        job.doc["status"] = "queued" if released else "running"
        self.store.save_job(job)
        self.store.add_event(job_id, "Fine-tuning job resumed")
        self.wake_event(job_id).set()
        task = self._tasks.get(job_id)
        if task is None or task.done():  # released: its driver has returned
            self._spawn(job_id, recovered=not released)
        return job


class JobDriver:
    """Drives one job through its statuses; every store write happens without an await inside."""

    def __init__(self, runner: JobRunner, job_id: str, *, recovered: bool) -> None:
        self.runner = runner
        self.store = runner.store
        self.blobs = runner.blobs
        self.job_id = job_id
        self.recovered = recovered
        self.validated: dict[str, list[ChatExample]] = {}
        """Examples of the files this driver validated, by file id (so a job reads each once)."""

    def load(self) -> JobRecord:
        job = self.store.get_job(self.job_id)
        if job is None:
            raise JobFailed("server_error", f"job {self.job_id} vanished from the store")
        return job

    def event(self, message: str, **kwargs: Any) -> None:
        self.store.add_event(self.job_id, message, **kwargs)

    async def run(self) -> None:
        try:
            while True:
                if self.load().status == "validating_files":
                    await self.validate()
                if self.load().status == "queued":
                    await asyncio.sleep(self.runner.pace.phase_delay())
                job = self.load()
                if job.status not in ("queued", "running", "paused"):
                    return
                if job.status == "paused" and self.runner.releases_paused(job):
                    if self.recovered:  # released before the restart: no worker until resumed
                        self.event("The server restarted; the job stays paused at step "
                                   f"{int(job.private.get('resume_step', 0))} until it is resumed")
                    return
                async with self.runner.engine_slots(job), self.runner._slots:
                    await self.train()
                if self.load().status != "queued":  # queued: resumed while it was released
                    return
                self.recovered = False
        except JobFailed as failure:
            self.fail(failure)
        except asyncio.CancelledError:
            raise
        except EngineError as error:
            if self.runner.stopping:  # a run aborted at shutdown resumes from its snapshot
                return
            self.fail(JobFailed("training_failed", f"Training failed: {error}"))
        except Exception as error:  # a bug must fail the job, not leave it running forever
            log.exception("job %s crashed", self.job_id)
            self.fail(JobFailed("server_error", f"The job failed due to an internal error: "
                                f"{type(error).__name__}: {error}"))

    def fail(self, failure: JobFailed) -> None:
        job = self.load()
        if job.status not in ACTIVE_STATUSES:
            return
        job.doc.update(status="failed", error=failure.error(), finished_at=now(),
                       estimated_finish=None)
        self.store.save_job(job)
        self.event(failure.message, level="error")

    def file_path(self, file_id: str, param: str) -> Path:
        path = self.blobs.path("files", file_id)
        if self.store.get_file(file_id) is None or not path.is_file():
            raise JobFailed(f"invalid_{param}", f"File {file_id} no longer exists.", param)
        return path

    async def validate(self) -> None:
        job = self.load()
        model = job.doc["model"]
        await asyncio.sleep(self.runner.pace.phase_delay())
        train_id, valid_id = job.doc["training_file"], job.doc.get("validation_file")
        engine = self.runner.engine(job.private["engine"])
        base_model = self.base_model(job)
        await self.prepare_base(engine, base_model)  # a real base counts tokens its own way
        try:
            counter = await asyncio.to_thread(engine.token_counter, base_model)
        except EngineError as error:
            raise JobFailed("model_not_available", str(error), "model") from None
        train = await asyncio.to_thread(validate_file, self.file_path(train_id, "training_file"),
                                        train_id, model, param="training_file", counter=counter)
        valid_tokens = 0
        if valid_id:
            valid = await asyncio.to_thread(
                validate_file, self.file_path(valid_id, "validation_file"), valid_id, model,
                param="validation_file", counter=counter)
            valid_tokens = valid.tokens
            self.validated[valid_id] = valid.examples
        self.validated[train_id] = train.examples
        try:
            hp = engine.resolve_hyperparameters(len(train.examples),
                                                job.private["requested_hyperparameters"])
        except HyperparameterError as error:
            raise JobFailed("invalid_hyperparameters", str(error), error.param) from None
        job = self.load()
        if job.status != "validating_files":
            return
        resolved = hp.to_dict()
        job.doc["hyperparameters"] = resolved
        job.doc["method"] = {"type": "supervised",
                             "supervised": {"hyperparameters": dict(resolved)}}
        job.doc["status"] = "queued"
        job.private.update(n_examples=len(train.examples), tokens_per_epoch=train.tokens,
                           valid_tokens=valid_tokens)
        self.store.save_job(job)
        self.event("Files validated, moving job to queued state")

    def examples(self, file_id: str, param: str) -> list[ChatExample]:
        """The file's examples: as validated by this driver, else read again (after a restart)."""
        found = self.validated.get(file_id)
        if found is not None:
            return found
        data = self.file_path(file_id, param).read_bytes()
        return [example for _number, example in parse_examples(data)]

    @staticmethod
    def base_model(job: JobRecord) -> str:
        """The base model a job trains (a real base's registry name, else the job's model)."""
        return str(job.private.get("base_model") or job.doc["model"])

    async def prepare_base(self, engine: TrainingEngine, base_model: str) -> None:
        """Materialize the base model (download or dequantize once), progress as job events."""
        latest: list[str] = []

        def progress(text: str) -> None:  # called from the worker thread
            latest.append(text)

        task = asyncio.ensure_future(asyncio.to_thread(engine.prepare, base_model, progress))
        said, said_at = "", 0.0
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.5)
            text = latest[-1] if latest else ""
            if text and text != said and (done or time.monotonic() - said_at >= PROGRESS_EVERY_S):
                self.event(text)
                said, said_at = text, time.monotonic()
            if done:
                break
        try:
            task.result()
        except EngineError as error:
            raise JobFailed("base_model_unavailable", f"Base model {base_model!r} is not "
                            f"available: {error}") from None

    async def start_run(self, job: JobRecord) -> TrainingRun:
        engine = self.runner.engine(job.private["engine"])
        base_model = self.base_model(job)
        await self.prepare_base(engine, base_model)
        if self.load().status not in ("running", "paused"):  # cancelled meanwhile
            raise JobFailed("cancelled", "cancelled while the base model was prepared")
        train = await asyncio.to_thread(self.examples, job.doc["training_file"], "training_file")
        valid_id = job.doc.get("validation_file")
        valid = (await asyncio.to_thread(self.examples, valid_id, "validation_file")
                 if valid_id else None)
        self.validated.clear()  # the run keeps what it needs
        hp = Hyperparameters(**job.doc["hyperparameters"])
        resume_step = int(job.private.get("resume_step", 0))
        state: bytes | None = None
        if resume_step:
            try:
                state = await asyncio.to_thread(self.blobs.read, "state", self.job_id)
            except OSError as error:
                raise JobFailed("server_restarted", "The server restarted and the job's last "
                                f"snapshot (step {resume_step}) could not be read: "
                                f"{error.strerror or error}") from None
        try:
            return await asyncio.to_thread(engine.start, train, valid, hp, int(job.doc["seed"]),
                                           state, base_model=base_model)
        except Exception as error:  # any unreadable snapshot must fail the job clearly
            if state is None:
                if not isinstance(error, EngineError):
                    raise
                raise JobFailed("training_failed", f"Training could not start: {error}") from None
            raise JobFailed("server_restarted", "The server restarted and the job could not be "
                            f"resumed from its snapshot at step {resume_step}: "
                            f"{type(error).__name__}: {error}") from None

    async def train(self) -> None:
        job = self.load()
        if job.status not in ("queued", "running", "paused"):  # cancelled while it waited
            return
        if job.status == "queued":
            job.doc["status"] = "running"
            self.store.save_job(job)
            if "resume_step" in job.private:  # paused, released, resumed: on from its snapshot
                self.event("Fine-tuning job continues from its snapshot at step "
                           f"{int(job.private['resume_step'])}")
            else:
                self.event("Fine-tuning job started")
        elif self.recovered:
            step = int(job.private.get("resume_step", 0))
            if job.status == "paused":
                self.event(f"The server restarted; the job stays paused at step {step} until "
                           "it is resumed")
            else:
                self.event(f"The server restarted; resuming the job from step {step}"
                           if step else "The server restarted; restarting the job from step 0")
        run = await self.start_run(job)
        self.runner.runs[self.job_id] = run
        try:
            if self.load().status not in ("running", "paused"):  # cancelled while starting
                return
            await self.drive(run)
        finally:
            self.runner.runs.pop(self.job_id, None)
            await asyncio.to_thread(run.close)

    def first_step_estimate(self, run: TrainingRun, delay: float) -> float | None:
        """Seconds per step before any was measured: the engine's estimate from the throughput
        on record (None when there is none: no guess), at least the server's pace."""
        job = self.load()
        engine = self.runner.engine(job.private["engine"])
        if not run.total_steps:
            return delay
        epochs = int(job.doc["hyperparameters"]["n_epochs"])
        tokens = epochs * int(job.private.get("tokens_per_epoch", 0))
        seconds = engine.step_seconds(self.base_model(job), tokens / run.total_steps)
        return None if seconds is None else max(delay, seconds)

    async def drive(self, run: TrainingRun) -> None:
        """Step the run to its end (or until cancel, pause, shutdown), reporting each step once."""
        job = self.load()
        snapshot_every = self.runner.engine(job.private["engine"]).snapshot_every_s
        # Steps between the last snapshot and a crash were reported before it; the replay
        # recomputes them from the snapshot but reports (and checkpoints) each step only once.
        reported = self.store.last_metrics_step(self.job_id)
        delay = self.runner.pace.step_delay(run.total_steps)
        first = self.first_step_estimate(run, delay)
        if first is not None:
            self.set_estimate(run, first)
        step_times: deque[float] = deque(maxlen=20)
        last_snapshot = last_estimate = time.monotonic()
        while run.steps_done < run.total_steps:
            job = self.keep_running()
            if job.status not in ("running", "paused"):
                return
            if self.runner.stopping:
                await self.snapshot(run)
                return
            if job.status == "paused":
                if self.runner.releases_paused(job):
                    await self.release(run)
                    return
                await self.snapshot(run)
                wake = self.runner.wake_event(self.job_id)
                if self.load().status == "paused" and not self.runner.stopping:
                    wake.clear()
                    await wake.wait()
                continue
            started = time.monotonic()
            try:
                metrics = await asyncio.to_thread(run.step)
            except EngineError as error:
                if self.load().status not in ("running", "paused") or self.runner.stopping:
                    return  # cancelled, or the server stopping: the run was aborted mid-step
                raise JobFailed("training_failed", f"Training failed at step "
                                f"{run.steps_done + 1}: {error}") from None
            if self.load().status not in ("running", "paused"):
                return
            data = metrics_data(metrics)
            if metrics.step > reported:
                self.event(step_message(data), type="metrics", data=data)
            if metrics.epoch_end:
                await self.checkpoint(run, data)
                last_snapshot = time.monotonic()
            elif time.monotonic() - last_snapshot > snapshot_every:
                await self.snapshot(run)
                last_snapshot = time.monotonic()
            await asyncio.sleep(max(0.0, delay - (time.monotonic() - started)))
            step_times.append(time.monotonic() - started)
            if metrics.step % 25 == 0 or len(step_times) == 3 \
                    or time.monotonic() - last_estimate > ESTIMATE_EVERY_S:
                self.set_estimate(run, max(delay, sum(step_times) / len(step_times)))
                last_estimate = time.monotonic()
        await self.finish(run)

    def set_estimate(self, run: TrainingRun, delay: float) -> None:
        job = self.load()
        if job.status == "running":
            remaining = (run.total_steps - run.steps_done) * max(delay, 0.001)
            job.doc["estimated_finish"] = now() + int(remaining) + 1
            self.store.save_job(job)

    async def snapshot(self, run: TrainingRun, state: bytes | None = None) -> None:
        """Save the run's state so a restarted server resumes from here."""
        if state is None:
            state = await asyncio.to_thread(run.state)
        await asyncio.to_thread(self.blobs.write, "state", self.job_id, state)
        job = self.load()
        job.private["resume_step"] = run.steps_done
        self.store.save_job(job)

    def keep_running(self) -> JobRecord:
        """The job; one paused and resumed before this driver released its run (so ``queued``)
        goes on running here, as it still holds the run and its slot."""
        job = self.load()
        if job.status == "queued":
            job.doc["status"] = "running"
            self.store.save_job(job)
        return job

    async def release(self, run: TrainingRun) -> None:
        """Snapshot a paused run so that it can stop (its worker and slot freed); resuming
        queues the job again and continues from this step."""
        self.event(f"Paused at step {run.steps_done}: the job's state is saved and its training "
                   "worker stopped, freeing the slot for a queued job")
        await self.snapshot(run)

    def model_blob(self, state: bytes) -> bytes:
        """A checkpoint's or model's blob from a run state (a lora one drops the optimizer)."""
        return self.runner.engine(self.load().private["engine"]).model_blob(state)

    async def checkpoint(self, run: TrainingRun, data: dict[str, Any]) -> None:
        state = await asyncio.to_thread(run.state)
        job = self.load()
        step = int(data["step"])
        name = f"{job.private['model_name']}:ckpt-step-{step}"
        if self.store.checkpoint_by_model(name) is not None:  # written before a restart
            await self.snapshot(run, state)
            return
        checkpoint_id = new_id("ftckpt_")
        await asyncio.to_thread(self.blobs.write, "checkpoints", checkpoint_id,
                                await asyncio.to_thread(self.model_blob, state))
        await self.snapshot(run, state)
        self.store.add_checkpoint(checkpoint_id, self.job_id, step, name,
                                  checkpoint_metrics(data), job.private["engine"])
        self.event(f"Checkpoint created at step {step}")
        for old in self.store.checkpoint_ids(self.job_id)[KEEP_CHECKPOINTS:]:
            self.store.delete_checkpoint(old)
            self.blobs.delete("checkpoints", old)

    async def finish(self, run: TrainingRun) -> None:
        job = self.keep_running()
        if job.status == "paused" and self.runner.releases_paused(job) \
                and not self.runner.stopping:  # paused during the last step
            await self.release(run)
            return
        while self.load().status == "paused" and not self.runner.stopping:
            wake = self.runner.wake_event(self.job_id)  # paused during the last step
            wake.clear()
            if self.load().status == "paused":
                await wake.wait()
        if self.load().status != "running":
            return
        state = await asyncio.to_thread(run.state)
        await asyncio.to_thread(self.blobs.write, "models", self.job_id,
                                await asyncio.to_thread(self.model_blob, state))
        results_id = new_id("file-", 22)
        csv_bytes = results_csv(self.store.metrics(self.job_id))
        await asyncio.to_thread(self.blobs.write, "files", results_id, csv_bytes)
        job = self.load()
        if job.status != "running":  # cancelled while the blobs were written
            self.blobs.delete("models", self.job_id)
            self.blobs.delete("files", results_id)
            return
        name = job.private["model_name"]
        self.store.add_file(results_id, size=len(csv_bytes), filename="step_metrics.csv",
                            purpose="fine-tune-results")
        self.store.add_model(name, owned_by=job.doc["organization_id"], job_id=self.job_id,
                             engine=job.private["engine"], blob=self.job_id)
        peak = run.peak_memory_mb
        if peak is not None:
            self.event(f"Training used at most {peak:.0f} MB of memory (worker peak RSS)")
        self.event(f"New fine-tuned model created: {name}")
        self.event("Evaluating model against our usage policies")
        self.event("Usage policy evaluations completed, model is now enabled for sampling")
        epochs = int(job.doc["hyperparameters"]["n_epochs"])
        job.doc.update(status="succeeded", fine_tuned_model=name, finished_at=now(),
                       estimated_finish=None, result_files=[results_id],
                       trained_tokens=epochs * int(job.private.get("tokens_per_epoch", 0)))
        job.private.pop("resume_step", None)
        self.store.save_job(job)
        self.blobs.delete("state", self.job_id)
        self.event("The job has successfully completed")

