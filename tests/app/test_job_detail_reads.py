"""The job detail shows the follower's snapshots of the job: it never reads the job itself."""

from __future__ import annotations

import openai
from textual.message import Message
from textual.widgets import DataTable

from tests.app.conftest import Attached, ServerFactory
from tests.app.helpers import keep_once, wait_for_text, wait_until
from tests.app.test_jobs_pane import attach_job, open_jobs, start_job
from tests.server.helpers import wait_for
from tui.app import make_app
from tui.core.finetune.follower import EventFollower
from tui.messages import JobEnded
from tui.server.inprocess import LocalServer
from tui.widgets.jobs.detail import JobDetail


def job_reads(server: LocalServer, job_id: str) -> int:
    """GET /v1/fine_tuning/jobs/JOB_ID requests the server received so far."""
    return server.requests["GET", f"/v1/fine_tuning/jobs/{job_id}"]


async def test_a_finished_job_is_read_once(server: LocalServer, attach: Attached,
                                           sdk: openai.OpenAI) -> None:
    job_id = start_job(sdk, epochs=1)
    job = wait_for(sdk, job_id)
    before = job_reads(server, job_id)
    seen: list[Message] = []
    app = make_app(start_local=attach)
    async with app.run_test(size=(80, 24), message_hook=keep_once(seen)) as pilot:
        await open_jobs(pilot)
        await attach_job(pilot, job_id)
        await wait_for_text(pilot, f"model {job.fine_tuned_model}")
        await pilot.press("k")
        table = app.query_one("#job-checkpoints", DataTable)
        await wait_until(pilot, lambda: table.row_count >= 1, what="checkpoints")
        await wait_until(pilot, lambda: app.query_one(JobDetail).results is not None,
                         what="the results CSV")
        await app.workers.wait_for_complete()
    # The follower's one read (the job had ended: no second poll); before, the detail read it
    # again first and last, with retries of its own.
    assert job_reads(server, job_id) - before == 1
    loaded = [m.job for m in seen if isinstance(m, JobDetail.Loaded)]
    assert [j.status for j in loaded] == ["succeeded"]
    assert loaded[0].fine_tuned_model == job.fine_tuned_model
    assert not any(isinstance(m, JobEnded) for m in seen)


async def test_a_live_job_is_shown_as_the_follower_reads_it(
        start_server: ServerFactory) -> None:
    server = start_server(speed="demo")
    seen: list[Message] = []
    with openai.OpenAI(base_url=server.base_url, api_key=server.api_key) as sdk:
        job_id = start_job(sdk, epochs=3)  # ~6 s of training at demo pace
        app = make_app(start_local=Attached(server.base_url, server.api_key))
        async with app.run_test(size=(80, 24), message_hook=keep_once(seen)) as pilot:
            await open_jobs(pilot)
            await wait_for_text(pilot, job_id)
            before = job_reads(server, job_id)
            await pilot.press("enter")
            detail = app.query_one(JobDetail)
            await wait_until(pilot, lambda: detail._follower is not None, what="the follower")
            follower = detail._follower
            assert isinstance(follower, EventFollower)
            await wait_until(pilot, lambda: any(isinstance(m, JobEnded) for m in seen),
                             timeout=60, what="the job's end")
            ended = next(m for m in seen if isinstance(m, JobEnded))
            await wait_for_text(pilot, f"model {ended.fine_tuned_model}")
            await app.workers.wait_for_complete()
            reads = job_reads(server, job_id) - before
    # every read of the job was the follower's: one retry loop, one cursor, no second copy
    assert reads == follower.stats.by_kind["job"]
    loaded = [m.job for m in seen if isinstance(m, JobDetail.Loaded)]
    statuses = [job.status for job in loaded]
    assert statuses[0] != "succeeded" and "running" in statuses
    assert statuses[-1] == "succeeded" and loaded[-1] == follower.job
    assert (ended.job_id, ended.status, ended.fine_tuned_model) == (
        job_id, "succeeded", loaded[-1].fine_tuned_model)
    # what the header shows is the follower's last snapshot
    assert detail.job == follower.job
