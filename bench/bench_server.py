"""Local server bench: job speed at --speed max, the events endpoint under concurrent followers,
and the demo job's pacing at --speed demo.

    .venv/bin/python bench/bench_server.py [--json] [--followers 8] [--seconds 6]
                                           [--repeat 2] [--demo-live]

The server runs as ``sqltune server`` in a subprocess on a loopback port (its own process and
event loop, as users run it); clients are the official SDK (jobs) and lean keep-alive HTTP
connections (followers: the client library's cost is not what is measured; an httpx client
cost more CPU per request than the server). Reported against baselines from the same run:
(a) a 1,000-step job (125 demo examples x 8 epochs, batch 1, the demo dev split as validation
    file): create -> succeeded as the SDK sees it, vs. the raw engine loop alone (start, the same
    1,000 steps with validation, final state) in this process; the ratio is the server's overhead
    (file validation, HTTP, the store, events, checkpoints, snapshots);
(b) the events endpoint with N concurrent followers, each paging the job's whole event log
    newest-first (limit=100, ``after`` cursors) over and over as an attaching follower does:
    requests/s, p50 and p99 latency and CPU per request, vs. one follower;
(c) the demo job (``sqltune prepare`` on the demo data, all ``auto``) at --speed demo: the pacing
    schedule, the job's measured compute at --speed max, and the predicted wall time; with
    --demo-live the job also runs at demo speed and its measured duration is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openai

from tui.core.data.datasets import load_dataset
from tui.core.data.prepare import PrepareOptions, prepare
from tui.core.data.prompts import DEFAULT_TEMPLATE, messages_for
from tui.core.data.schema import SchemaCache
from tui.core.paths import demo_dir
from tui.server.engines import ChatExample, get_engine
from tui.server.pace import Pace

MODEL = "sqltune-local-base"
FINAL = ("succeeded", "failed", "cancelled")
RAW_CPU: list[float] = []
"""CPU seconds of each raw_engine() call."""


class Server:
    """``sqltune server`` in a subprocess; the key comes from SQLTUNE_SERVER_KEY, never printed."""

    def __init__(self, data_dir: Path, speed: str) -> None:
        self.api_key = "sk-bench-" + secrets.token_urlsafe(16)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tui", "server", "--port", "0", "--data-dir", str(data_dir),
             "--speed", speed], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "SQLTUNE_SERVER_KEY": self.api_key})
        assert self.process.stdout is not None
        self.base_url = ""
        for line in self.process.stdout:
            if "listening on" in line:
                self.base_url = line.split()[-1]
            if line.startswith("speed:"):
                break
        if not self.base_url:
            raise RuntimeError("sqltune server did not start")

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def demo_chats(split: str, cache: SchemaCache) -> list[list[dict[str, Any]]]:
    root = demo_dir()
    return [messages_for(DEFAULT_TEMPLATE, cache, root / "database" / e.db_id /
                         f"{e.db_id}.sqlite", e.question, e.query)
            for e in load_dataset(root, split).examples]


def jsonl(chats: list[list[dict[str, Any]]]) -> bytes:
    return "".join(json.dumps({"messages": m}) + "\n" for m in chats).encode()


def run_job(client: openai.OpenAI, train: bytes, valid: bytes | None,
            hyperparameters: dict[str, Any], poll_s: float = 0.02) -> tuple[float, Any]:
    """Upload, then time create -> final status (polled every ``poll_s``)."""
    train_id = client.files.create(file=("train.jsonl", train), purpose="fine-tune").id
    valid_id = (client.files.create(file=("valid.jsonl", valid), purpose="fine-tune").id
                if valid else None)
    started = time.perf_counter()
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=train_id,
                                         validation_file=valid_id, seed=7,
                                         hyperparameters=hyperparameters)  # type: ignore[arg-type]
    while job.status not in FINAL:
        time.sleep(poll_s)
        job = client.fine_tuning.jobs.retrieve(job.id)
    return time.perf_counter() - started, job


def raw_engine(train: list[list[dict[str, Any]]], valid: list[list[dict[str, Any]]],
               epochs: int) -> tuple[float, list[float]]:
    """The engine alone: start, every step, final state; (seconds, per-step seconds)."""
    engine = get_engine("ngram")
    hp = engine.resolve_hyperparameters(len(train), {"n_epochs": epochs, "batch_size": 1})
    cpu = time.process_time()
    started = time.perf_counter()
    run = engine.start([ChatExample(m) for m in train],
                       [ChatExample(m) for m in valid] if valid else None, hp, seed=7)
    steps = []
    while run.steps_done < run.total_steps:
        t = time.perf_counter()
        run.step()
        steps.append(time.perf_counter() - t)
    run.state()
    RAW_CPU.append(time.process_time() - cpu)
    return time.perf_counter() - started, steps


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Follower:
    """A lean keep-alive HTTP/1.1 client on one loopback connection, so that the bench measures
    the server rather than a client library (its CPU is reported beside the server's)."""

    def __init__(self, base_url: str, key: str, job_id: str) -> None:
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.path = f"{url.path}/fine_tuning/jobs/{job_id}/events?limit=100"
        self.head = f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {key}\r\n\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def page(self, after: str | None) -> tuple[int, bytes]:
        """(status, body) of one events page."""
        assert self.reader is not None and self.writer is not None
        target = self.path + (f"&after={after}" if after else "")
        self.writer.write(f"GET {target} HTTP/1.1\r\n{self.head}".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


def last_id(body: bytes) -> str | None:
    """The last event id of a page that has more, found without decoding the page."""
    if not body.endswith(b'"has_more":true}'):
        return None
    start = body.rindex(b'{"id":"') + 7
    return body[start:body.index(b'"', start)].decode()


async def follow(base_url: str, key: str, job_id: str, followers: int,
                 seconds: float, latencies: list[float], errors: list[int]) -> float:
    """``followers`` concurrent clients paging the whole event log (newest first, pages of
    100, ``after`` cursors) over and over for ``seconds``; return the elapsed time."""
    clients = [Follower(base_url, key, job_id) for _ in range(followers)]
    await asyncio.gather(*(c.open() for c in clients))
    status, body = await clients[0].page(None)  # the lean parsing agrees with the JSON
    page = json.loads(body)
    assert status == 200 and last_id(body) == (page["data"][-1]["id"] if page["has_more"]
                                               else None)
    end = time.perf_counter() + seconds

    async def one(client: Follower) -> None:
        after: str | None = None
        while time.perf_counter() < end:
            t = time.perf_counter()
            status, body = await client.page(after)
            latencies.append(time.perf_counter() - t)
            if status != 200:
                errors[0] += 1
            after = last_id(body) if status == 200 else None

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in clients))
    elapsed = time.perf_counter() - started
    await asyncio.gather(*(c.close() for c in clients))
    return elapsed


def follower_load(server: Server, job_id: str, followers: int, seconds: float,
                  rounds: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """1 follower and ``followers`` followers, alternated ``rounds`` times (the machine's
    background load then weighs on both alike); figures pooled over the rounds."""
    pooled: dict[int, tuple[list[float], list[int], list[float]]] = {
        n: ([], [0], []) for n in (1, followers)}
    cpu = {n: 0.0 for n in pooled}
    client_cpu = {n: 0.0 for n in pooled}
    for _ in range(rounds):
        for n, (latencies, errors, elapsed) in pooled.items():
            before, mine = server.cpu_seconds(), time.process_time()
            elapsed.append(asyncio.run(follow(server.base_url, server.api_key, job_id, n,
                                              seconds / rounds, latencies, errors)))
            cpu[n] += server.cpu_seconds() - before
            client_cpu[n] += time.process_time() - mine
    out = []
    for n, (latencies, errors, elapsed) in pooled.items():
        out.append({"followers": n, "requests": len(latencies),
                    "server_cpu_ms_per_request": round(cpu[n] / len(latencies) * 1000, 2),
                    "client_cpu_ms_per_request": round(client_cpu[n] / len(latencies) * 1000,
                                                       2),
                    "requests_per_s": round(len(latencies) / sum(elapsed), 1),
                    "p50_ms": round(statistics.median(latencies) * 1000, 2),
                    "p99_ms": round(pct(latencies, 0.99) * 1000, 2), "errors": errors[0]})
    return out[0], out[1]


def bench(followers: int, seconds: float, demo_live: bool, repeat: int) -> dict[str, Any]:
    cache = SchemaCache()
    train, dev = demo_chats("train", cache)[:125], demo_chats("dev", cache)
    out: dict[str, Any] = {"load_average_1min": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as folder:
        server = Server(Path(folder) / "max", "max")
        try:
            with server.client() as client:
                walls, raws, cpus, raw_cpus = [], [], [], []
                for _ in range(repeat):  # alternated; the best of each is reported
                    cpu = server.cpu_seconds()
                    wall, job = run_job(client, jsonl(train), jsonl(dev),
                                        {"n_epochs": 8, "batch_size": 1})
                    cpus.append(server.cpu_seconds() - cpu)
                    assert job.status == "succeeded", job.error
                    walls.append(wall)
                    raws.append(raw_engine(train, dev, 8)[0])
                    raw_cpus.append(RAW_CPU[-1])
                wall, raw = min(walls), min(raws)
                total_steps = 125 * 8
                out["job_1000"] = {
                    "steps": total_steps, "server_s": round(wall, 2), "raw_engine_s": round(raw, 2),
                    "ratio_server_over_raw": round(wall / raw, 2),
                    "server_steps_per_s": round(total_steps / wall, 1),
                    "overhead_ms_per_step": round((wall - raw) / total_steps * 1000, 2),
                    "trained_tokens": job.trained_tokens, "repeats": repeat,
                    "server_cpu_s": round(min(cpus), 2),
                    "raw_engine_cpu_s": round(min(raw_cpus), 2),
                    "cpu_ratio_server_over_raw": round(min(cpus) / min(raw_cpus), 2),
                    "all_server_s": [round(w, 2) for w in walls],
                    "all_raw_engine_s": [round(r, 2) for r in raws]}
                all_events = sum(1 for _ in client.fine_tuning.jobs.list_events(job.id, limit=100))
                one, many = follower_load(server, job.id, followers, seconds, rounds=3)
                out["events"] = {"events_in_log": all_events, "one": one, "many": many,
                                 "throughput_ratio": round(many["requests_per_s"]
                                                           / one["requests_per_s"], 2),
                                 "p99_ratio": round(many["p99_ms"] / one["p99_ms"], 2)}
                out["demo"] = demo_pacing(client, cache)
        finally:
            server.stop()
        if demo_live:
            live = Server(Path(folder) / "demo", "demo")
            try:
                with live.client() as client:
                    prepared = demo_prepared(cache)
                    wall, job = run_job(client, prepared, None, {}, poll_s=0.25)
                    out["demo"]["live_demo_s"] = round(wall, 1)
                    out["demo"]["live_status"] = job.status
            finally:
                live.stop()
    return out


def demo_prepared(cache: SchemaCache) -> bytes:
    """The JSONL `sqltune prepare` makes of the demo data with default options."""
    result = prepare(demo_dir(), PrepareOptions(parallel=False))
    return jsonl([result.messages[i] for i in result.budget.kept_indices])


def demo_pacing(client: openai.OpenAI, cache: SchemaCache) -> dict[str, Any]:
    """The demo job's schedule at --speed demo, its compute at --speed max, and the prediction."""
    data = demo_prepared(cache)
    examples = data.count(b"\n")
    wall_max, job = run_job(client, data, None, {})
    assert job.status == "succeeded", job.error
    hp = job.hyperparameters
    steps = math.ceil(examples / int(hp.batch_size)) * int(hp.n_epochs)
    pace = Pace.parse("demo")
    delay, phases = pace.step_delay(steps), 2 * pace.phase_delay()
    chats = [json.loads(line)["messages"] for line in data.decode().splitlines()]
    raw, per_step = raw_engine(chats, [], int(hp.n_epochs))
    overhead = max(0.0, (wall_max - raw) / steps)
    predicted = phases + sum(max(delay, s + overhead) for s in per_step)
    return {"examples": examples, "epochs": hp.n_epochs, "batch_size": hp.batch_size,
            "steps": steps, "step_delay_s": delay, "scheduled_s": round(phases + steps * delay, 1),
            "max_speed_s": round(wall_max, 2),
            "compute_ms_per_step_p50": round(statistics.median(per_step) * 1000, 2),
            "compute_ms_per_step_max": round(max(per_step) * 1000, 2),
            "server_overhead_ms_per_step": round(overhead * 1000, 2),
            "predicted_demo_s": round(predicted, 1)}


def report(figures: dict[str, Any]) -> None:
    job, events, demo = figures["job_1000"], figures["events"], figures["demo"]
    print(f"machine load average (1 min) at start: {figures['load_average_1min']} on "
          f"{os.cpu_count()} CPUs")
    print(f"(a) 1,000-step job at --speed max, best of {job['repeats']}: create -> succeeded "
          f"{job['server_s']:.2f} s "
          f"({job['server_steps_per_s']:.0f} steps/s); raw engine loop, same steps: "
          f"{job['raw_engine_s']:.2f} s; server/raw {job['ratio_server_over_raw']:.2f}x "
          f"(+{job['overhead_ms_per_step']:.2f} ms/step)")
    print(f"    CPU time: server process {job['server_cpu_s']:.2f} s, raw engine "
          f"{job['raw_engine_cpu_s']:.2f} s, ratio {job['cpu_ratio_server_over_raw']:.2f}x")
    one, many = events["one"], events["many"]
    print(f"(b) events endpoint, {events['events_in_log']} events, pages of 100 with after "
          f"cursors, 1 and {many['followers']} followers alternated over 3 rounds:")
    for row in (one, many):
        print(f"    {row['followers']} follower(s): {row['requests_per_s']:.0f} req/s, "
              f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms "
              f"({row['requests']} requests, {row['errors']} errors; CPU per request: server "
              f"{row['server_cpu_ms_per_request']:.2f} ms, client "
              f"{row['client_cpu_ms_per_request']:.2f} ms)")
    print(f"    {many['followers']} vs 1: throughput {events['throughput_ratio']:.2f}x, "
          f"p99 {events['p99_ratio']:.2f}x")
    print(f"(c) demo job: {demo['examples']} examples, {demo['epochs']} epochs, batch "
          f"{demo['batch_size']} = {demo['steps']} steps at {demo['step_delay_s'] * 1000:.0f} ms: "
          f"scheduled {demo['scheduled_s']} s; compute at --speed max {demo['max_speed_s']} s "
          f"(engine p50 {demo['compute_ms_per_step_p50']} ms/step, max "
          f"{demo['compute_ms_per_step_max']} ms, server +{demo['server_overhead_ms_per_step']} "
          f"ms/step); predicted at --speed demo {demo['predicted_demo_s']} s")
    if "live_demo_s" in demo:
        print(f"    measured at --speed demo: {demo['live_demo_s']} s ({demo['live_status']})")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--followers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6.0,
                        help="duration of each follower load (split over 3 alternated rounds)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of the 1,000-step job and of its baseline (best reported)")
    parser.add_argument("--demo-live", action="store_true",
                        help="also run the demo job at --speed demo (about 50 s)")
    options = parser.parse_args()
    figures = bench(options.followers, options.seconds, options.demo_live, options.repeat)
    if options.json:
        print(json.dumps(figures))
    else:
        report(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
