"""The Jobs pane follows a job to its end through the server's injected drops, 429s and 500s."""

from __future__ import annotations

import openai
from textual.message import Message

from tests.app.conftest import Attached, ServerFactory
from tests.app.helpers import keep_once, wait_for_text, wait_until
from tests.app.test_jobs_pane import attach_job, start_job
from tests.server.helpers import all_events
from tui.app import make_app
from tui.messages import JobEnded
from tui.widgets.jobs.detail import JobDetail
from tui.widgets.jobs.events import EventLog, event_lines


async def test_every_event_once_in_order_through_faults(start_server: ServerFactory) -> None:
    server = start_server(speed="2", faults="drop=0.1,429=0.05,500=0.05,seed=5")
    seen: list[Message] = []
    with openai.OpenAI(base_url=server.base_url, api_key=server.api_key,
                       max_retries=10) as sdk:
        app = make_app(start_local=Attached(server.base_url, server.api_key))
        async with app.run_test(size=(80, 24), message_hook=keep_once(seen)) as pilot:
            await wait_for_text(pilot, "provider local")
            job_id = start_job(sdk, epochs=10)  # about 13 s of training: running when attached
            await pilot.press("4")
            await attach_job(pilot, job_id)
            await wait_until(pilot, lambda: any(isinstance(m, JobEnded) for m in seen),
                             timeout=60, what="the job's end")
            assert next(m for m in seen if isinstance(m, JobDetail.Loaded)).job.status != \
                "succeeded"
            ended = next(m for m in seen if isinstance(m, JobEnded))
            assert (ended.job_id, ended.status) == (job_id, "succeeded")
            await wait_for_text(pilot, f"model {ended.fine_tuned_model}")
            log = app.query_one("#job-events", EventLog)
            shown, lines, width = list(log.events), list(log.lines), log.text_width()
            events = all_events(sdk, job_id)
        delivered = [event.id for m in seen if isinstance(m, JobDetail.EventsArrived)
                     for event in m.events]
        assert delivered == [event.id for event in events]
        assert [event.message for event in shown] == [event.message for event in events]
        # each on screen once, in order, wrapped to the log's width (never cut)
        assert lines == [line for event in shown for line in event_lines(event, width)]
        assert all(len(line) <= width for line in lines)
    assert sum(server.faults_injected.values()) >= 3
