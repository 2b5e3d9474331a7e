"""Bench the event follower against a naive "list every event every second" loop on one live job.

    .venv/bin/python bench/bench_follower.py [--examples 150] [--epochs 2] [--speed demo]

Both watchers follow the same running job on the local server (loopback, in-process) from the
moment it is created until it ends, each through its own counting HTTP client. Reported:
(a) requests per minute of each and the ratio naive / follower; the naive loop pages through
    the whole event list (limit=100, the kindest page size) once a second and is not charged
    for knowing when the job ended;
(b) the delay from an event's insertion on the server (timestamped inside the server's store)
    to its delivery by the follower at default settings, p50 / p95 / max;
(c) both saw exactly the same events in the same order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx2
import openai

from tests.chat_files import write_singer_jsonl
from tui.core.finetune.follower import EventFollower
from tui.server import store as server_store
from tui.server.inprocess import start_local_server

CREATED: dict[str, float] = {}
"""Event id -> perf_counter() when the server committed it."""


def timestamp_events() -> None:
    original = server_store.Store.add_event

    def add_event(self: Any, *args: Any, **kwargs: Any) -> str:
        event_id: str = original(self, *args, **kwargs)
        CREATED[event_id] = time.perf_counter()
        return event_id

    server_store.Store.add_event = add_event  # type: ignore[method-assign]


def _counting_client(base_url: str, api_key: str, counter: list[int]) -> openai.AsyncOpenAI:
    async def count(request: httpx2.Request) -> None:
        counter[0] += 1

    http = httpx2.AsyncClient(event_hooks={"request": [count]}, timeout=60)
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, http_client=http)


async def _follow(client: openai.AsyncOpenAI, job_id: str, delivered: dict[str, float],
                  order: list[str], done: asyncio.Event) -> None:
    try:
        async for batch in EventFollower(client, job_id).follow():
            now = time.perf_counter()
            for event in batch.events:
                delivered[event.id] = now
                order.append(event.id)
    finally:
        done.set()


async def _naive(client: openai.AsyncOpenAI, job_id: str, order: list[str],
                 done: asyncio.Event) -> None:
    """List every event every second; it never asks for the job status (stops with the follower
    plus one last listing), which flatters it."""
    seen: set[str] = set()
    while True:
        finished = done.is_set()
        events = [event async for event in
                  client.fine_tuning.jobs.list_events(job_id, limit=100)]
        for event in reversed(events):
            if event.id not in seen:
                seen.add(event.id)
                order.append(event.id)
        if finished:
            return
        await asyncio.sleep(1.0)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def main(examples: int, epochs: int, speed: str) -> dict[str, Any]:
    """Run one job with both watchers attached; return the figures."""
    timestamp_events()
    with tempfile.TemporaryDirectory() as folder, \
            start_local_server(Path(folder) / "server", speed=speed) as server:
        setup = openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key)
        upload = await setup.files.create(
            file=write_singer_jsonl(Path(folder) / "train.jsonl", examples), purpose="fine-tune")
        follower_requests, naive_requests = [0], [0]
        follower_client = _counting_client(server.base_url, server.api_key, follower_requests)
        naive_client = _counting_client(server.base_url, server.api_key, naive_requests)
        job = await setup.fine_tuning.jobs.create(
            model="gpt-4.1-mini-2025-04-14", training_file=upload.id,
            hyperparameters={"n_epochs": epochs, "batch_size": 1})
        started = time.perf_counter()
        delivered: dict[str, float] = {}
        follower_order: list[str] = []
        naive_order: list[str] = []
        done = asyncio.Event()
        await asyncio.gather(_follow(follower_client, job.id, delivered, follower_order, done),
                             _naive(naive_client, job.id, naive_order, done))
        elapsed = time.perf_counter() - started
        for client in (setup, follower_client, naive_client):
            await client.close()
    delays = [delivered[i] - CREATED[i] for i in follower_order if i in CREATED]
    follower_rpm = follower_requests[0] / elapsed * 60
    naive_rpm = naive_requests[0] / elapsed * 60
    return {
        "events": len(follower_order), "seconds": round(elapsed, 1),
        "follower_requests": follower_requests[0], "naive_requests": naive_requests[0],
        "follower_rpm": round(follower_rpm, 1), "naive_rpm": round(naive_rpm, 1),
        "ratio_naive_over_follower": round(naive_rpm / follower_rpm, 2),
        "delay_p50_s": round(statistics.median(delays), 3),
        "delay_p95_s": round(_pct(delays, 0.95), 3), "delay_max_s": round(max(delays), 3),
        "same_events_same_order": follower_order == naive_order,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--examples", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--speed", default="demo")
    options = parser.parse_args()
    figures = asyncio.run(main(options.examples, options.epochs, options.speed))
    print(f"job: {figures['events']} events in {figures['seconds']} s")
    print(f"requests/min  follower {figures['follower_rpm']}  naive {figures['naive_rpm']}  "
          f"ratio {figures['ratio_naive_over_follower']}x fewer")
    print(f"event -> delivery  p50 {figures['delay_p50_s']} s  p95 {figures['delay_p95_s']} s  "
          f"max {figures['delay_max_s']} s")
    print(f"same events, same order: {figures['same_events_same_order']}")
    print(json.dumps(figures))
