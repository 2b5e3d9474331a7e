"""Time from a job event's creation on the server to its line on screen in the app (Pilot, 80x24).

    .venv/bin/python bench/bench_event_to_screen.py [--examples 150] [--epochs 2] [--speed demo]
                                                    [--json]

The local server runs in-process at default (demo) pacing; its store is timestamped when each
event is committed. The app (make_app, headless Pilot at 80x24, default follower settings)
opens the job in the Jobs pane right after it is created. An event is "on screen" at the first
frame the app composites after the event's line was written to the events log (the frame a
terminal would receive). Baseline, same run and process: a bare core EventFollower on the same
job, timed at delivery. Reported: p50 / p95 / max of creation -> screen, of creation -> bare
delivery, the ratio of the p50s, and delivery -> screen inside the app (the UI's own cost).
Events committed before the app began following are left out (they measure set-up, not the
live path).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openai
from bench_follower import CREATED, timestamp_events

from tests.chat_files import write_singer_jsonl
from tui.app import make_app
from tui.core.finetune.follower import EventFollower
from tui.server.inprocess import start_local_server
from tui.widgets.jobs.detail import JobDetail


class _Endpoint:
    """The bench's server as the app's local-server starter (the bench stops it, not the app)."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.api_key = api_key

    def __call__(self) -> _Endpoint:
        return self

    def stop(self) -> None:
        """The bench owns the server."""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50_s": round(statistics.median(values), 3), "p95_s": round(_pct(values, 0.95), 3),
            "max_s": round(max(values), 3)}


async def _bare(client: openai.AsyncOpenAI, job_id: str, delivered: dict[str, float]) -> None:
    async for batch in EventFollower(client, job_id).follow():
        now = time.perf_counter()
        for event in batch.events:
            delivered.setdefault(event.id, now)


async def main(examples: int, epochs: int, speed: str) -> dict[str, Any]:
    """Follow one job in the app and with a bare follower; return the figures."""
    timestamp_events()
    on_screen: dict[str, float] = {}
    in_app: dict[str, float] = {}
    bare: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder, \
            start_local_server(Path(folder) / "server", speed=speed) as server:
        # The user's config and history stay untouched (and cannot pick another provider).
        os.environ["SQLTUNE_CONFIG_DIR"] = str(Path(folder) / "config")
        os.environ["SQLTUNE_DATA_DIR"] = str(Path(folder) / "data")
        sdk = openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key)
        upload = await sdk.files.create(
            file=write_singer_jsonl(Path(folder) / "train.jsonl", examples), purpose="fine-tune")
        app = make_app(provider="local",
                       start_local=_Endpoint(server.base_url, server.api_key))
        async with app.run_test(size=(80, 24)) as pilot:
            while app.session.connection is None:
                await pilot.pause(0.05)
            await pilot.press("4")
            detail = app.query_one(JobDetail)
            shown = [0]
            original_hook = app.post_display_hook

            def after_frame() -> None:
                # Lines written to the log before this frame are now on screen.
                original_hook()
                now = time.perf_counter()
                events = detail._events
                for event in events[shown[0]:]:
                    on_screen.setdefault(event.id, now)
                shown[0] = len(events)

            def delivered(message: Any) -> None:
                if isinstance(message, JobDetail.EventsArrived):
                    now = time.perf_counter()
                    for event in message.events:
                        in_app.setdefault(event.id, now)

            app.post_display_hook = after_frame  # type: ignore[method-assign]
            hook = detail.post_message

            def spy(message: Any) -> bool:
                delivered(message)
                return hook(message)

            detail.post_message = spy  # type: ignore[method-assign]
            job = await sdk.fine_tuning.jobs.create(
                model="sqltune-local-base", training_file=upload.id,
                hyperparameters={"n_epochs": epochs, "batch_size": 1})
            follow_from = time.perf_counter()
            app.query_one("#pane-jobs").action_open_job(job.id)  # type: ignore[attr-defined]
            baseline = asyncio.create_task(_bare(
                openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key), job.id,
                bare))
            started = time.perf_counter()
            while detail.job is None or not detail.job.terminal or not baseline.done():
                await pilot.pause(0.1)
            await pilot.pause(0.5)
            elapsed = time.perf_counter() - started
            app_order = [event.id for event in detail._events]
        await sdk.close()
    live = [i for i in CREATED if CREATED[i] >= follow_from and i in on_screen and i in bare]
    screen = [on_screen[i] - CREATED[i] for i in live]
    base = [bare[i] - CREATED[i] for i in live]
    ui = [on_screen[i] - in_app[i] for i in live if i in in_app]
    return {
        "events": len(CREATED), "events_measured": len(live), "seconds": round(elapsed, 1),
        "speed": speed, "creation_to_screen": _summary(screen),
        "creation_to_bare_follower": _summary(base),
        "ratio_screen_over_bare_p50": round(statistics.median(screen)
                                            / max(1e-9, statistics.median(base)), 2),
        "delivery_to_screen_in_app": _summary(ui),
        "app_shows_every_event_once_in_order": app_order == list(bare),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--examples", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--speed", default="demo")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    options = parser.parse_args()
    figures = asyncio.run(main(options.examples, options.epochs, options.speed))
    if options.json:
        print(json.dumps(figures))
        sys.exit(0)
    s, b, u = (figures["creation_to_screen"], figures["creation_to_bare_follower"],
               figures["delivery_to_screen_in_app"])
    print(f"job: {figures['events']} events, {figures['events_measured']} measured live, "
          f"{figures['seconds']} s at speed {figures['speed']}")
    print(f"event created -> line on screen (app, 80x24)  p50 {s['p50_s']} s  "
          f"p95 {s['p95_s']} s  max {s['max_s']} s")
    print(f"event created -> bare follower delivery       p50 {b['p50_s']} s  "
          f"p95 {b['p95_s']} s  max {b['max_s']} s")
    print(f"ratio screen / bare follower (p50): {figures['ratio_screen_over_bare_p50']}x")
    print(f"inside the app, delivery -> screen  p50 {u['p50_s']} s  p95 {u['p95_s']} s  "
          f"max {u['max_s']} s")
    print(f"app shows every event once, in order: "
          f"{figures['app_shows_every_event_once_in_order']}")
