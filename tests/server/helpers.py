"""Small helpers the server tests share: waiting for a job, reading a job's whole event log."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


def data(event: FineTuningJobEvent) -> dict[str, Any]:
    """A metrics event's ``data`` (the SDK types it as a bare object)."""
    assert isinstance(event.data, dict), event
    return event.data


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


class ServerProcess:
    """``sqltune server`` in a subprocess on an ephemeral loopback port."""

    def __init__(self, data_dir: Path, *, speed: str = "max", faults: str = "",
                 env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.data_dir = data_dir
        command = [sys.executable, "-m", "tui", "server", "--port", "0", "--data-dir",
                   str(data_dir), "--speed", speed]
        if faults:
            command += ["--faults", faults]
        command += args or []  # e.g. ["--base-model", "tiny=FOLDER"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env={**os.environ, **(env or {})})
        self.banner: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.banner.append(line.rstrip("\n"))
            if line.startswith("speed:"):
                break
        found = [line for line in self.banner if "listening on" in line]
        assert found, f"server did not start: {self.banner} {self.process.stderr}"
        self.base_url = found[0].rsplit(" ", 1)[1]

    @property
    def api_key(self) -> str:
        """The key from the data dir (the banner never shows it)."""
        return (self.data_dir / "api-key").read_text().strip()

    def client(self, **options: Any) -> openai.OpenAI:
        """An SDK client for this server."""
        return openai.OpenAI(base_url=self.base_url, api_key=self.api_key, **options)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.process.kill()
        self.process.wait(10)

    def terminate(self) -> int:
        """SIGTERM and wait; return the exit code."""
        self.process.terminate()
        return self.process.wait(20)
