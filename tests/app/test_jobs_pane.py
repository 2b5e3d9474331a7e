"""The Jobs pane in Pilot at 80x24, keyboard only: controls, attach, link state, providers."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import ContentSwitcher, DataTable, Log, OptionList

from tests.app.conftest import Attached, ServerFactory
from tests.app.helpers import keep_once, screen_text, wait_for_text, wait_until
from tests.server.conftest import PAIRS, chat_lines
from tests.server.helpers import wait_for
from tui.app import SqltuneApp, make_app
from tui.messages import JobEnded
from tui.server.context import CTX
from tui.server.inprocess import LocalServer
from tui.widgets.jobs.detail import JobDetail


def start_job(client: openai.OpenAI, *, epochs: int) -> str:
    """A job on the 24 singer/concert examples, created through the SDK (not the app)."""
    train = client.files.create(file=("train.jsonl", chat_lines(PAIRS)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model="sqltune-local-base", training_file=train.id,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": epochs}}})
    return job.id


def set_outage(server: LocalServer, chance_of_500: float) -> None:
    """Turn the server's injected 500s (its --faults plan) up or down while it runs."""
    assert server._app is not None
    server._app[CTX].faults.server_error = chance_of_500


def shown_status(app: SqltuneApp) -> str | None:
    """Status of the job the detail shows."""
    job = app.query_one(JobDetail).job
    return None if job is None else job.status


def server_status(client: openai.OpenAI, job_id: str) -> str:
    """The job's status on the server."""
    return client.fine_tuning.jobs.retrieve(job_id).status


async def open_jobs(pilot: object) -> None:
    """Show the Jobs pane once the provider answered."""
    await wait_for_text(pilot, "provider ")  # type: ignore[arg-type]
    await pilot.press("4")  # type: ignore[attr-defined]
    await wait_for_text(pilot, " job")  # type: ignore[arg-type]


async def attach_job(pilot: Pilot[Any], job_id: str) -> None:
    """Open the "Attach to a job" dialog (press a) and attach to ``job_id`` by its id."""
    await pilot.press("a")
    await wait_for_text(pilot, "Attach to a job")
    await pilot.press(*job_id, "enter")


async def open_running_job(pilot: Pilot[Any], job_id: str) -> None:
    """Show the Jobs pane, open ``job_id`` from the list and wait until it runs."""
    app = pilot.app
    assert isinstance(app, SqltuneApp)
    await open_jobs(pilot)
    await wait_for_text(pilot, job_id)
    await pilot.press("enter")
    await wait_until(pilot, lambda: shown_status(app) == "running", timeout=30,
                     what="the job to run")


async def test_pause_resume_cancel_each_ask_first(start_server: ServerFactory) -> None:
    server = start_server(speed="demo")
    seen: list[Message] = []
    with openai.OpenAI(base_url=server.base_url, api_key=server.api_key) as sdk:
        job_id = start_job(sdk, epochs=20)
        app = make_app(start_local=Attached(server.base_url, server.api_key))
        async with app.run_test(size=(80, 24), message_hook=keep_once(seen)) as pilot:
            await open_running_job(pilot, job_id)
            # pause: "n" backs out, "y" pauses
            await pilot.press("p")
            await wait_for_text(pilot, f"Pause {job_id} (running)?")
            await pilot.press("n")
            await pilot.pause(0.3)
            assert server_status(sdk, job_id) == "running"
            await pilot.press("p")
            await wait_for_text(pilot, f"Pause {job_id} (running)?")
            await pilot.press("y")
            await wait_until(pilot, lambda: shown_status(app) == "paused", what="paused")
            assert server_status(sdk, job_id) == "paused"
            await wait_for_text(pilot, "● paused")
            assert app.query_one("#pane-jobs").check_action("control", ("pause",)) is False
            # resume: events flow again soon (the follower is told, not left on its slow poll)
            log = app.query_one("#job-events", Log)
            await pilot.press("s")
            await wait_for_text(pilot, f"Resume {job_id} (paused)?")
            await pilot.press("y")
            await wait_until(pilot, lambda: server_status(sdk, job_id) == "running",
                             what="resumed on the server")
            lines = len(log.lines)
            resumed_at = time.monotonic()
            await wait_until(pilot, lambda: any("Step " in line for line in log.lines[lines:]),
                             timeout=5, what="events after resuming")
            assert time.monotonic() - resumed_at < 5
            assert shown_status(app) == "running"
            # cancel: confirmed, the job ends and the app says so at once
            await pilot.press("c")
            await wait_for_text(pilot, f"Cancel {job_id} (running)?")
            await pilot.press("y")
            await wait_until(pilot, lambda: any(isinstance(m, JobEnded) for m in seen),
                             timeout=5, what="the end of the cancelled job")
            ended = next(m for m in seen if isinstance(m, JobEnded))
            assert (ended.job_id, ended.status) == (job_id, "cancelled")
            assert server_status(sdk, job_id) == "cancelled"
            await wait_for_text(pilot, "● cancelled")
            note = ("Job ended", f"{job_id} cancelled")
            await wait_until(pilot, lambda: note in [(n.title, n.message)
                                                     for n in app._notifications],
                             what="the notification")
            assert app.query_one("#pane-jobs").check_action("control", ("cancel",)) is False


async def test_attach_by_id_shows_a_finished_job(attach: Attached, sdk: openai.OpenAI) -> None:
    job_id = start_job(sdk, epochs=1)
    job = wait_for(sdk, job_id)
    assert job.status == "succeeded"
    seen: list[Message] = []
    app = make_app(start_local=attach)
    async with app.run_test(size=(80, 24), message_hook=keep_once(seen)) as pilot:
        await open_jobs(pilot)
        await attach_job(pilot, job_id)
        screen = await wait_for_text(pilot, f"model {job.fine_tuned_model}")
        assert f"{job_id} ● succeeded" in screen
        log = app.query_one("#job-events", Log)
        await wait_until(pilot, lambda: log.lines and "successfully completed" in log.lines[-1],
                         what="the events")
        assert log.lines[0].endswith(f"Created fine-tuning job: {job_id}")
        await pilot.press("k")
        table = app.query_one("#job-checkpoints", DataTable)
        await wait_until(pilot, lambda: table.row_count >= 1, what="checkpoints")
        assert not any(isinstance(m, JobEnded) for m in seen)  # it had ended before: no bell
        # an unknown id is a clear error, not a crash
        await pilot.press("escape")
        await attach_job(pilot, "ftjob-nope")
        screen = await wait_for_text(pilot, "job ftjob-nope was not found on this provider")
        assert f"model {job.fine_tuned_model}" not in screen  # the previous job is gone
        assert app.query_one(JobDetail).job is None


async def test_link_state_live_then_reconnecting_then_live(start_server: ServerFactory) -> None:
    server = start_server(speed="demo", faults="500=0,seed=11")
    seen: list[Message] = []
    with openai.OpenAI(base_url=server.base_url, api_key=server.api_key) as sdk:
        job_id = start_job(sdk, epochs=20)
        app = make_app(start_local=Attached(server.base_url, server.api_key))
        async with app.run_test(size=(80, 24), message_hook=keep_once(seen)) as pilot:
            await open_running_job(pilot, job_id)
            await wait_for_text(pilot, "· live · updated")
            set_outage(server, 1.0)  # every request fails with a 500 now
            screen = await wait_for_text(pilot, "reconnecting (2)", timeout=15)
            assert f"{job_id} ● running · reconnecting (2)" in screen
            set_outage(server, 0.0)
            await wait_for_text(pilot, "· live · updated", timeout=15)
            states = [m.state for m in seen if isinstance(m, JobDetail.LinkChanged)]
            attempts = [s.attempt for s in states if s.status == "reconnecting"]
            assert attempts[:2] == [1, 2]
            assert server.faults_injected["500"] >= 2
            # nothing lost or repeated across the outage
            lines = app.query_one("#job-events", Log).lines
            steps = [int(line.split("Step ")[1].split("/")[0]) for line in lines
                     if "  Step " in line]
            assert steps == list(range(1, len(steps) + 1))
            await pilot.press("c", "y")
            await wait_for_text(pilot, "● cancelled")


PROFILES = """default = "lab"

[profiles.lab]
kind = "compatible"
base_url = "{url}"
api_key_env = "SQLTUNE_LAB_KEY"

[profiles.stale]
kind = "compatible"
base_url = "{url}"
api_key_env = "SQLTUNE_STALE_KEY"

[profiles.cloud]
kind = "openai"
api_key_env = "SQLTUNE_CLOUD_KEY"
"""


async def test_provider_switcher_lists_profiles_with_keys_masked(
        server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.core.provider.config import config_path

    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PROFILES.format(url=server.base_url), encoding="utf-8")
    stale = "sk-stale-0123456789abcdefSTALE"
    monkeypatch.setenv("SQLTUNE_LAB_KEY", server.api_key)
    monkeypatch.setenv("SQLTUNE_STALE_KEY", stale)
    with openai.OpenAI(base_url=server.base_url, api_key=server.api_key) as sdk:
        job_id = start_job(sdk, epochs=20)
    app = make_app()  # config.toml's default profile: no local server involved
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_for_text(pilot, "provider lab")
        await pilot.press("4")
        await wait_for_text(pilot, job_id)
        await pilot.press("enter")
        await wait_for_text(pilot, f"{job_id} ● ")
        detail = app.query_one(JobDetail)
        assert app.session.connection is not None
        lab_client = app.session.connection.client
        await pilot.press("f2")
        screen = await wait_for_text(pilot, "Switch provider")
        await wait_for_text(pilot, "stale")
        screen = screen_text(app)
        for name in ("lab", "stale", "cloud", "local"):
            assert name in screen
        assert "$SQLTUNE_LAB_KEY sk-…" + server.api_key[-4:] in screen
        assert "$SQLTUNE_CLOUD_KEY (not set)" in screen
        assert server.api_key not in screen and stale not in screen
        # pick "stale" with the keyboard: its key is refused, the error is on screen, masked
        options = app.screen.query_one(OptionList)
        for _ in range(4):
            highlighted = options.highlighted
            if highlighted is not None and options.get_option_at_index(highlighted).id == "stale":
                break
            await pilot.press("down")
        await pilot.press("enter")
        await wait_for_text(pilot, "provider stale")
        # the job shown belonged to "lab": the pane stops following it and lists stale's jobs
        switcher = app.query_one("#jobs-switcher", ContentSwitcher)
        await wait_until(pilot, lambda: switcher.current == "jobs-list-view",
                         what="the job list")
        await wait_until(pilot, lambda: not [w for w in app.workers
                                             if w.group == "job-follow" and w.is_running],
                         what="the follower to stop")
        assert detail._follower is None
        await wait_until(pilot, lab_client.is_closed, what="lab's client to be closed")
        screen = await wait_for_text(pilot, "(HTTP 401)")
        assert stale not in screen and server.api_key not in screen
        assert "listing jobs failed" in screen  # the Jobs pane is still the one shown
        assert job_id not in screen  # lab's job is not listed as if it were stale's
        # back to "lab": the pane lists jobs again
        await pilot.press("f2")
        await wait_for_text(pilot, "Switch provider")
        await pilot.press("down")  # from the current (stale) profile to "lab", just above
        await pilot.press("home", "down", "enter")
        await wait_for_text(pilot, "provider lab")
        await wait_for_text(pilot, "1 job ")
