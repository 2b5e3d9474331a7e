"""The whole flow in Pilot, keyboard only at 80x24, over loopback HTTP to the local server."""

from __future__ import annotations

from typing import Any, TypeVar

import openai
from textual.message import Message
from textual.widgets import DataTable, Input, Log

from tests.app.conftest import Attached
from tests.app.helpers import keep_once, wait_for_text, wait_until
from tests.server.helpers import all_events
from tui.app import make_app
from tui.messages import DatasetExported, FileUploaded, JobCreated, JobEnded
from tui.widgets.file_list import FileList
from tui.widgets.jobs.chart import LossChart
from tui.widgets.jobs.detail import JobDetail
from tui.widgets.token_meter import TokenMeter

M = TypeVar("M", bound=Message)


async def test_export_upload_create_follow_to_a_tuned_model(attach: Attached,
                                                            sdk: openai.OpenAI) -> None:
    seen: list[Message] = []
    app = make_app(start_local=attach)
    bells: list[None] = []
    async with app.run_test(size=(80, 24), message_hook=keep_once(seen)) as pilot:
        ring = app.bell

        def counted_bell() -> None:
            bells.append(None)
            ring()

        app.bell = counted_bell  # type: ignore[method-assign]
        await wait_for_text(pilot, "provider local")

        # ── Budget: export the kept examples as chat JSONL ───────────────────────────────
        await pilot.press("2")
        meter = app.pane("budget")
        assert isinstance(meter, TokenMeter)
        await wait_until(pilot, lambda: meter.budget is not None, what="the budget")
        budget = meter.budget
        assert budget is not None
        await pilot.press("x")
        await wait_for_text(pilot, f"Export {budget.kept:,} examples as chat JSONL")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: _first(seen, DatasetExported), what="the export")
        exported = _first(seen, DatasetExported)
        assert exported.examples == budget.kept
        lines = exported.train.read_text(encoding="utf-8").splitlines()
        assert len(lines) == budget.kept

        # ── Files: upload it (the prompt offers the export), with progress; it is listed ──
        await pilot.press("3")
        await wait_for_text(pilot, f"last export: {exported.train.name}")
        await pilot.press("u")
        screen = await wait_for_text(pilot, "Upload a fine-tuning JSONL")
        assert exported.train.name in screen  # the export is the default path
        assert app.screen.query_one(Input).value == str(exported.train)
        await pilot.press("enter")
        await wait_until(pilot, lambda: _first(seen, FileUploaded), what="the upload")
        uploaded = _first(seen, FileUploaded)
        size = exported.train.stat().st_size
        progress = [m for m in seen if isinstance(m, FileList.UploadProgressed)]
        assert progress and progress[-1].sent == progress[-1].total == size
        assert [m.sent for m in progress] == sorted(m.sent for m in progress)
        table = app.query_one("#files-table", DataTable)
        await wait_until(pilot, lambda: uploaded.file_id in table.rows, what="the listed file")
        screen = await wait_for_text(pilot, "1 file")
        name = exported.train.name  # cut in the middle at 80 columns: both ends show
        assert name[:7] in screen and name[-8:] in screen and "fine-tune" in screen
        remote = sdk.files.retrieve(uploaded.file_id)
        assert (remote.filename, remote.bytes) == (exported.train.name, size)

        # ── Jobs: the create form shows the estimate before anything is created ──────────
        await pilot.press("4")
        await pilot.press("n")
        await wait_for_text(pilot, "New fine-tuning job")
        screen = await wait_for_text(pilot, "trained tokens (")
        assert f"≈ {budget.trained_tokens:,} trained tokens" in screen
        assert f"{budget.epochs} epochs × {budget.tokens_per_epoch:,}" in screen
        flat = " ".join(screen.replace("│", " ").split())  # the dialog wraps the estimate
        assert "free on the local server" in flat  # OpenAI's price is only a reference here
        assert sdk.fine_tuning.jobs.list().data == []  # nothing created before confirming
        # the provider's own base model, chosen by typing into the open list
        await pilot.press("enter", *"sqltune-local", "enter")
        await wait_for_text(pilot, "sqltune-local-base")
        # tab to suffix and epochs; the estimate follows the epochs typed
        await pilot.press("tab", "tab", "tab", *"sql", "tab", "ctrl+a", "ctrl+k", "2")
        screen = await wait_for_text(pilot, f"2 epochs × {budget.tokens_per_epoch:,}")
        assert f"≈ {2 * budget.tokens_per_epoch:,} trained tokens" in screen
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: _first(seen, JobCreated), what="the job")
        job_id = _first(seen, JobCreated).job_id
        job = sdk.fine_tuning.jobs.retrieve(job_id)
        assert (job.model, job.training_file) == ("sqltune-local-base", uploaded.file_id)
        assert job.hyperparameters.n_epochs == 2

        # ── The detail follows it live: events oldest-first, the chart, then the end ─────
        detail = app.query_one(JobDetail)
        await wait_until(pilot, lambda: _first(seen, JobEnded), what="the job's end", timeout=60)
        ended = _first(seen, JobEnded)
        assert ended.job_id == job_id and ended.status == "succeeded"
        batches = [m for m in seen if isinstance(m, JobDetail.EventsArrived)]
        # live: several polls while it ran, not one dump at the end
        assert len(batches) >= 3
        assert any(b.job_status == "running" and any(e.type == "metrics" for e in b.events)
                   for b in batches)
        delivered = [event.id for batch in batches for event in batch.events]
        on_server = all_events(sdk, job_id)
        assert delivered == [e.id for e in on_server]  # each exactly once, oldest first
        log = app.query_one("#job-events", Log)
        assert log.lines[0].endswith(f"Created fine-tuning job: {job_id}")
        assert log.lines[-1].endswith("The job has successfully completed")
        steps = [int(line.split("Step ")[1].split("/")[0]) for line in log.lines
                 if "  Step " in line]
        metrics: Any = next(e.data for e in on_server if e.type == "metrics")
        total = int(metrics["total_steps"])
        assert steps == list(range(1, total + 1))
        chart = app.query_one(LossChart)
        assert len(chart.points["train_loss"]) == len(steps)

        job = sdk.fine_tuning.jobs.retrieve(job_id)
        model = job.fine_tuned_model
        assert model and ended.fine_tuned_model == model and ":sql:" in model
        await wait_until(pilot, lambda: detail.job is not None and detail.job.terminal,
                         what="the final job")
        assert detail.job is not None and detail.job.fine_tuned_model == model
        screen = await wait_for_text(pilot, f"model {model}")
        assert "● succeeded" in screen and f"trained tokens {job.trained_tokens:,}" in screen
        note = ("Job ended", f"{job_id} succeeded: {model}")
        await wait_until(pilot, lambda: note in [(n.title, n.message) for n in app._notifications],
                         what="the notification")
        assert bells == [None]

        # the loss chart is drawn (braille points and the title), at 80x24
        await pilot.press("l")
        screen = await wait_for_text(pilot, "loss by step")
        assert any("\u2800" < ch <= "\u28ff" for ch in screen) and "train" in screen
        # checkpoints and the results CSV
        await pilot.press("k")
        screen = await wait_for_text(pilot, "results CSV")
        checkpoints = sdk.fine_tuning.jobs.checkpoints.list(job_id).data
        table = app.query_one("#job-checkpoints", DataTable)
        assert table.row_count == len(checkpoints) >= 1
        assert f"results CSV: {len(steps)} steps" in screen
        assert str(checkpoints[0].step_number) in screen

        # the tuned model is on the provider, and the next create form offers it
        assert model in [m.id for m in sdk.models.list().data]
        await pilot.press("escape")
        await wait_for_text(pilot, "● succeeded")
        await pilot.press("n")
        await wait_for_text(pilot, "New fine-tuning job")
        await pilot.press("enter", *"ft:", "enter")
        await wait_for_text(pilot, model[:40])
        await pilot.press("escape")


def _first(seen: list[Message], kind: type[M]) -> M:
    """The first message of this kind the app handled (None before it came)."""
    found = next((m for m in seen if isinstance(m, kind)), None)
    return found  # type: ignore[return-value]
