"""The Jobs pane uses the width it has (80 and 160 columns): event lines wrap instead of ending
at ``validation loss=``, checkpoints show their step, list columns grow and names elide in the
middle; ``w`` saves the results CSV in the exports folder; a paused job has no finish time."""

from __future__ import annotations

from typing import Any

import openai
from textual.pilot import Pilot
from textual.widgets import DataTable, Log

from tests.app.conftest import Attached, ServerFactory
from tests.app.helpers import screen_text, wait_for_text, wait_until
from tests.app.test_jobs_pane import open_jobs, shown_status
from tests.server.conftest import PAIRS, chat_lines
from tests.server.helpers import all_events, wait_for
from tui.app import SqltuneApp, make_app
from tui.core.paths import exports_dir
from tui.widgets.jobs.detail import JobDetail

SUFFIX = "fine-tune-really-long-suffix"
OPENAI_BASE = "gpt-4.1-mini-2025-04-14"
"""The longest base name the local server tunes (on its stand-in engine): 23 characters."""


def tuned_twice(sdk: openai.OpenAI) -> tuple[Any, Any]:
    """A finished job with a validation file and a long suffix, and a second job on the
    longest base name (the list's base-model column had 18 cells at any width)."""
    train = sdk.files.create(file=("train.jsonl", chat_lines(PAIRS)), purpose="fine-tune")
    valid = sdk.files.create(file=("valid.jsonl", chat_lines(PAIRS[:8])), purpose="fine-tune")
    hyper = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}}
    first = wait_for(sdk, sdk.fine_tuning.jobs.create(
        model="sqltune-local-base", training_file=train.id, validation_file=valid.id,
        suffix=SUFFIX, method=hyper).id)  # type: ignore[arg-type]
    assert first.status == "succeeded" and first.fine_tuned_model
    second = wait_for(sdk, sdk.fine_tuning.jobs.create(
        model=OPENAI_BASE, training_file=train.id, suffix="again",
        method=hyper).id)  # type: ignore[arg-type]
    assert second.status == "succeeded"
    return first, second


def list_cells(app: SqltuneApp) -> dict[str, list[str]]:
    """The job table's cells by job id (row key)."""
    table = app.query_one("#jobs-table", DataTable)
    return {str(key.value): [str(cell) for cell in table.get_row(key)] for key in table.rows}


async def open_job(pilot: Pilot[Any], app: SqltuneApp, job_id: str) -> None:
    table = app.query_one("#jobs-table", DataTable)
    await wait_until(pilot, lambda: job_id in [k.value for k in table.rows], what="the job")
    table.move_cursor(row=table.get_row_index(job_id))
    await pilot.press("enter")
    log = app.query_one("#job-events", Log)
    await wait_until(pilot, lambda: log.lines and "successfully completed" in log.lines[-1],
                     what="the events")


async def test_80_and_160_columns_and_the_results_csv(attach: Attached,
                                                      sdk: openai.OpenAI) -> None:
    first, second = tuned_twice(sdk)
    app = make_app(start_local=attach)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_jobs(pilot)
        await wait_until(pilot, lambda: second.id in list_cells(app), what="both jobs")
        # 80 columns: the long base name is cut in the middle, its date still visible
        base = list_cells(app)[second.id][1]
        assert "…" in base and base.endswith("2025-04-14") and base.startswith("gpt-4"), base
        assert list_cells(app)[second.id][0] == second.id  # ids stay whole

        await open_job(pilot, app, first.id)
        log = app.query_one("#job-events", Log)
        width = log.size.width
        assert [line for line in log.lines if len(line) > width] == []
        text = " ".join(" ".join(log.lines).split())
        steps = [e.message for e in all_events(sdk, first.id) if e.type == "metrics"]
        assert steps and all("validation loss=" in m for m in steps)
        for message in (steps[-1], f"New fine-tuned model created: {first.fine_tuned_model}"):
            assert message in text  # whole, wrapped: never cut at `validation loss=`

        await pilot.press("k")
        table = app.query_one("#job-checkpoints", DataTable)
        await wait_until(pilot, lambda: table.row_count == 3, what="checkpoints")
        screen = screen_text(app)
        for step in (24, 48, 72):  # three checkpoints, three visibly different names
            assert f":ckpt-step-{step}" in screen, screen

        # w saves the CSV as served, in the exports folder; the notification names the file
        await wait_until(pilot, lambda: app.query_one(JobDetail).results is not None,
                         what="the results CSV")
        await pilot.press("w")
        saved = exports_dir() / f"{first.id}-results.csv"
        await wait_until(pilot, lambda: any(n.message == f"Saved {saved}"
                                            for n in app._notifications), what="the note")
        served = sdk.files.content(first.result_files[0]).content
        assert saved.read_bytes() == served

        # 160 columns: the same lines re-wrap wider, and the list's columns grow
        await pilot.resize_terminal(160, 48)
        await pilot.press("e")
        await wait_until(pilot, lambda: log.size.width > 100, what="the wider log")
        assert any(line.endswith(steps[-1]) for line in log.lines)  # one line, full stamp
        await pilot.press("escape")
        await wait_until(pilot, lambda: second.id in list_cells(app), what="the list")
        assert list_cells(app)[second.id][1] == OPENAI_BASE


async def test_a_paused_job_shows_no_finish_time(start_server: ServerFactory) -> None:
    server = start_server(speed="demo")
    with openai.OpenAI(base_url=server.base_url, api_key=server.api_key) as sdk:
        train = sdk.files.create(file=("train.jsonl", chat_lines(PAIRS)), purpose="fine-tune")
        job = sdk.fine_tuning.jobs.create(model="sqltune-local-base", training_file=train.id,
                                          method={"type": "supervised", "supervised": {
                                              "hyperparameters": {"n_epochs": 10}}})
        wait_for(sdk, job.id, statuses=("running",))
        sdk.fine_tuning.jobs.pause(job.id)
        app = make_app(start_local=Attached(server.base_url, server.api_key))
        async with app.run_test(size=(80, 24)) as pilot:
            await open_jobs(pilot)
            await wait_for_text(pilot, job.id)
            await pilot.press("enter")
            await wait_until(pilot, lambda: shown_status(app) == "paused", what="paused")
            screen = await wait_for_text(pilot, "paused: no finish time")
            assert "est. finish" not in screen
        sdk.fine_tuning.jobs.cancel(job.id)
