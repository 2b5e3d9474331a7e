"""Small helpers the server tests share: waiting for a job, reading a job's whole event log."""

from __future__ import annotations

import asyncio
import time

import openai
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent

FINAL = ("succeeded", "failed", "cancelled")


def wait_for(client: openai.OpenAI, job_id: str, statuses: tuple[str, ...] = FINAL,
             deadline_s: float = 60.0) -> FineTuningJob:
    """Poll until the job reaches one of ``statuses`` (fails after a generous deadline)."""
    end = time.monotonic() + deadline_s
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses:
            return job
        assert time.monotonic() < end, f"job stayed {job.status}"
        time.sleep(0.02)


async def await_for(client: openai.AsyncOpenAI, job_id: str,
                    statuses: tuple[str, ...] = FINAL, deadline_s: float = 60.0) -> FineTuningJob:
    """Async ``wait_for``."""
    end = time.monotonic() + deadline_s
    while True:
        job = await client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses:
            return job
        assert time.monotonic() < end, f"job stayed {job.status}"
        await asyncio.sleep(0.02)


def all_events(client: openai.OpenAI, job_id: str, page: int = 100) -> list[FineTuningJobEvent]:
    """Every event of a job, oldest first, through the SDK's auto-pagination."""
    return list(reversed(list(client.fine_tuning.jobs.list_events(job_id, limit=page))))


def wait_for_event(client: openai.OpenAI, job_id: str, needle: str,
                   deadline_s: float = 60.0) -> FineTuningJobEvent:
    """Poll the newest events until one whose message contains ``needle`` appears."""
    end = time.monotonic() + deadline_s
    while True:
        for event in client.fine_tuning.jobs.list_events(job_id, limit=50).data:
            if needle in event.message:
                return event
        assert time.monotonic() < end, f"no event with {needle!r}"
        time.sleep(0.02)
