"""Background service bench: how long a sqltune waits for the local server.

    .venv/bin/python bench/bench_service.py [--json] [--repeat 5]

Each figure is measured inside a fresh ``python`` process (``tui.launch.local_endpoint()``
from call to return), median of ``--repeat`` runs, on a throwaway data folder:
(a) start: no server runs, so the call spawns the background service and waits for it to answer;
(b) attach: the service runs; the call reads server.json and checks it answers with the key
    (the first call of a process pays for its imports; "attach again" is a second call);
(c) baseline: what every sqltune did before, an in-process server started in a thread;
(d) takeover: the service was SIGKILLed in the middle of a job (stale server.json, lock released
    by the kernel); the call starts a new service, which resumes the job, and attaches.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.service_support import stop_service
from tui.server.service import pid_alive, read_state

TIMED = """
import json, sys, time
started = time.monotonic()
if sys.argv[1] == "baseline":
    from tui.server.inprocess import start_local_server
    server = start_local_server()
    pid = 0
else:
    from tui.launch import local_endpoint
    server = local_endpoint(keep_alive=False)
    pid = server.pid
seconds = time.monotonic() - started
again = time.monotonic()
if sys.argv[1] != "baseline":
    local_endpoint(keep_alive=False)
print(json.dumps({"seconds": seconds, "pid": pid, "again": time.monotonic() - again}))
server.stop()
"""

JOB = """
import openai
from tui.launch import local_endpoint
endpoint = local_endpoint(keep_alive=False)
sdk = openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key)
lines = [{"messages": [{"role": "user", "content": f"question {n}"},
                       {"role": "assistant", "content": f"SELECT {n}"}]} for n in range(30)]
import json, time
body = "\\n".join(json.dumps(line) for line in lines).encode()
upload = sdk.files.create(file=("t.jsonl", body), purpose="fine-tune")
job = sdk.fine_tuning.jobs.create(model="sqltune-local-base", training_file=upload.id,
                                  hyperparameters={"n_epochs": 3})
while sdk.fine_tuning.jobs.retrieve(job.id).status != "running":
    time.sleep(0.05)
time.sleep(0.5)
"""


def timed(mode: str, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", TIMED, mode], env=env, capture_output=True,
                          text=True, check=True, timeout=120)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {"start": [], "attach": [], "attach again": [],
                                    "baseline": [], "takeover": []}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as home:
            env = dict(os.environ, SQLTUNE_DATA_DIR=home, SQLTUNE_CONFIG_DIR=home + "/config",
                       SQLTUNE_SERVER_SPEED="1")
            folder = Path(home) / "server"
            try:
                runs["baseline"].append(timed("baseline", env)["seconds"])
                runs["start"].append(timed("service", env)["seconds"])
                attached = timed("service", env)
                runs["attach"].append(attached["seconds"])
                runs["attach again"].append(attached["again"])
                subprocess.run([sys.executable, "-c", JOB], env=env, check=True, timeout=120)
                state = read_state(folder)
                assert state is not None
                os.kill(state.pid, signal.SIGKILL)
                while pid_alive(state.pid):
                    time.sleep(0.01)
                took = timed("service", env)
                assert took["pid"] != state.pid
                runs["takeover"].append(took["seconds"])
            finally:
                stop_service(folder)
    medians = {name: statistics.median(values) for name, values in runs.items()}
    if args.json:
        print(json.dumps({"median_s": medians, "runs_s": runs}))
        return
    for name, value in medians.items():
        print(f"{name:<12} {value * 1000:8.1f} ms  (median of {args.repeat})")
    print(f"attach is {medians['start'] / medians['attach']:.0f}x faster than starting the "
          f"service and {medians['baseline'] / medians['attach']:.0f}x faster than the "
          "in-process server every sqltune started before")


if __name__ == "__main__":
    main()
