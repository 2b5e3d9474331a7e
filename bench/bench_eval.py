"""Bench an evaluation of 1,000 questions on the local server: concurrency 16 against 1.

    .venv/bin/python bench/bench_eval.py [--questions 1000] [--high 16] [--tuned] [--json]

The demo dev split (50 questions) is cycled to --questions. One local server (in-process, on
loopback, as the app starts it) answers both runs through the official async SDK; each
question is the full evaluation path: gold SQL through the read-only executor, the training
prompt (schema cached), one chat completion, the predicted SQL executed and matched.
Reported: wall time of each run, questions per second, the ratio (concurrency 1 time /
concurrency 16 time), model latency p50/p95 of each run, and that both runs scored every
question with identical EX (the answers are deterministic at temperature 0).
--tuned first fine-tunes a model on the demo training split (--speed max, a few seconds) and
evaluates it instead of the base model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openai

from tui.core.data.datasets import Example, load_dataset
from tui.core.data.prepare import PrepareOptions, prepare
from tui.core.data.schema import SchemaCache
from tui.core.evaluation.evaluate import EvalReport, evaluate, model_predictor
from tui.core.paths import demo_dir
from tui.server.auth import KEY_ENV, key_path
from tui.server.inprocess import LocalServer, start_local_server

BASE = "gpt-4.1-mini-2025-04-14"


def _tune(server: Server, folder: Path) -> str:
    result = prepare(demo_dir(), PrepareOptions(model=BASE, parallel=False))
    path = folder / "demo-train.jsonl"
    result.write(path)
    client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=8)
    try:
        upload = client.files.create(file=path, purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=BASE, training_file=upload.id)
        while job.status not in ("succeeded", "failed", "cancelled"):
            time.sleep(0.05)
            job = client.fine_tuning.jobs.retrieve(job.id)
        if job.status != "succeeded" or not job.fine_tuned_model:
            raise SystemExit(f"fine-tuning ended {job.status}: {job.error}")
        return job.fine_tuned_model
    finally:
        client.close()


class _ServerProcess:
    """`sqltune server` in a child process (its own interpreter, so its own GIL)."""

    def __init__(self, folder: Path, faults: str) -> None:
        command = [sys.executable, "-m", "tui", "server", "--port", "0", "--speed", "max",
                   "--data-dir", str(folder)] + (["--faults", faults] if faults else [])
        env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        assert self._process.stdout is not None
        first = self._process.stdout.readline()
        if "listening on " not in first:
            self._process.kill()
            raise SystemExit(f"sqltune server did not start: {first!r}")
        self.base_url = first.split("listening on ", 1)[1].strip()
        self.api_key = key_path(folder).read_text(encoding="utf-8").strip()

    def __enter__(self) -> _ServerProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


Server = LocalServer | _ServerProcess


async def _run(server: Server, model: str, examples: list[Example],
               db_path_for: Any, concurrency: int) -> tuple[EvalReport, float]:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key,
                                  max_retries=2) as client:
        # A fresh schema cache for each run: neither run inherits the other's warm cache.
        predict = model_predictor(client, model, db_path_for=db_path_for,
                                  schema_cache=SchemaCache())
        started = time.perf_counter()
        report = await evaluate(examples, predict=predict, db_path_for=db_path_for,
                                concurrency=concurrency, model=model)
        return report, time.perf_counter() - started


def _summary(report: EvalReport, wall: float) -> dict[str, Any]:
    return {
        "wall_s": round(wall, 3), "questions_per_s": round(report.n / wall, 2),
        "n": report.n, "skipped": len(report.skipped),
        "execution_accuracy": report.execution_accuracy,
        "errors": dict(report.to_json()["errors"]),
        "latency_p50_s": round(report.latency_p50_s or 0.0, 4),
        "latency_p95_s": round(report.latency_p95_s or 0.0, 4),
    }


def _scenario(tuned: bool, faults: str, questions: int, high: int, dev_examples: list[Example],
              db_path_for: Any, *, process: bool = False) -> dict[str, Any]:
    examples = [dev_examples[i % len(dev_examples)] for i in range(questions)]
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "server"
        with (_ServerProcess(data, faults) if process else
              start_local_server(data, speed="max", faults=faults)) as server:
            result = _measure(server, tuned, Path(folder), examples, high, db_path_for)
    return {**result, "questions": questions, "server_faults": faults or None,
            "server": "process" if process else "in-process"}


def _measure(server: Server, tuned: bool, folder: Path, examples: list[Example], high: int,
             db_path_for: Any) -> dict[str, Any]:
    model = _tune(server, folder) if tuned else BASE
    asyncio.run(_run(server, model, examples[:20], db_path_for, 4))  # warm-up, not timed
    runs: dict[int, tuple[EvalReport, float]] = {}
    for concurrency in (1, high):
        runs[concurrency] = asyncio.run(_run(server, model, examples, db_path_for, concurrency))
    (serial, serial_s), (parallel, parallel_s) = runs[1], runs[high]
    return {
        "model": model,
        "serial": _summary(serial, serial_s),
        "concurrent": {"concurrency": high, **_summary(parallel, parallel_s)},
        "speedup": round(serial_s / parallel_s, 2),
        "identical_scores": [r.match for r in serial.rows] == [r.match for r in parallel.rows],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--high", type=int, default=16, help="the concurrent run's concurrency")
    parser.add_argument("--tuned", action="store_true", help="evaluate a demo-tuned model")
    parser.add_argument("--latency-ms", type=int, default=100,
                        help="provider latency emulated in the second scenario (0: skip it)")
    parser.add_argument("--latency-questions", type=int, default=200)
    parser.add_argument("--server-process", action="store_true",
                        help="also run the first scenario against `sqltune server` in a child "
                             "process")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    dev = load_dataset(demo_dir(), "dev")

    def db_path_for(example: Example) -> Path | None:
        return dev.db_path(example.db_id)

    scenarios = {"local": _scenario(args.tuned, "", args.questions, args.high, dev.examples,
                                    db_path_for)}
    if args.server_process:
        scenarios["process"] = _scenario(args.tuned, "", args.questions, args.high,
                                         dev.examples, db_path_for, process=True)
    if args.latency_ms > 0:
        scenarios["latency"] = _scenario(args.tuned, f"latency={args.latency_ms}ms",
                                         args.latency_questions, args.high, dev.examples,
                                         db_path_for)
    same = all(row["identical_scores"] for row in scenarios.values())
    if args.json:
        print(json.dumps(scenarios))
        return 0 if same else 1
    titles = {"local": "local server in-process, no added latency",
              "process": "`sqltune server` in a child process, no added latency",
              "latency": f"local server with {args.latency_ms} ms added per request "
                         "(a remote provider's latency)"}
    for key, result in scenarios.items():
        print(f"evaluation of {result['questions']} questions (demo dev cycled), model "
              f"{result['model']}, {titles[key]}")
        for name, row in (("concurrency 1", result["serial"]),
                          (f"concurrency {args.high}", result["concurrent"])):
            print(f"  {name:<15} {row['wall_s']:8.2f} s  {row['questions_per_s']:7.2f} q/s  "
                  f"EX {row['execution_accuracy']:.3f}  scored {row['n']}  "
                  f"latency p50 {row['latency_p50_s'] * 1000:.1f} ms, "
                  f"p95 {row['latency_p95_s'] * 1000:.1f} ms  errors {row['errors'] or 'none'}")
        print(f"  speedup (concurrency 1 time / concurrency {args.high} time): "
              f"{result['speedup']:.2f}x; identical scores: {result['identical_scores']}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
