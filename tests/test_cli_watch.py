"""``sqltune watch JOB_ID`` against the local server: lines on stdout, exit 0/1, Ctrl-C 130."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.chat_files import write_singer_jsonl
from tests.local_servers import KEY_ENV, module_server, save_profile
from tui.cli import main
from tui.server.inprocess import LocalServer

MODEL = "gpt-4.1-mini-2025-04-14"
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  (info|warn|error)  \S.*$")


server = module_server("server", faults="429=0.05,500=0.05,seed=3")
slow_server = module_server("slow", speed="4")


@pytest.fixture
def profile(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """config.toml with a profile for the test server; its key in an environment variable."""
    monkeypatch.setenv(KEY_ENV, server.api_key)
    return save_profile(server)


def _job(server: LocalServer, tmp_path: Path, examples: int = 20, epochs: int = 1) -> str:
    client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=10)
    path = write_singer_jsonl(tmp_path / f"t{examples}.jsonl", examples)
    upload = client.files.create(file=path, purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=upload.id,
                                         hyperparameters={"n_epochs": epochs})
    client.close()
    return job.id


def test_success_prints_every_event_and_exits_0(
        server: LocalServer, profile: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    job_id = _job(server, tmp_path)
    assert main(["--provider", profile, "watch", job_id]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines and all(LINE.match(line) for line in lines)
    assert lines[-1].endswith("info  The job has successfully completed")
    assert any("Step 20/20: training loss=" in line for line in lines)
    assert server.api_key not in out + err


def test_cancelled_job_exits_1(slow_server: LocalServer, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    job_id = _job(slow_server, tmp_path)
    client = openai.OpenAI(base_url=slow_server.base_url, api_key=slow_server.api_key)
    client.fine_tuning.jobs.cancel(job_id)  # still validating at this speed
    client.close()
    monkeypatch.setenv(KEY_ENV, slow_server.api_key)
    assert main(["--provider", save_profile(slow_server, "slow"), "watch", job_id]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[-1].endswith("Fine-tuning job cancelled")
    assert "cancelled" in err


def test_failed_job_exits_1(server: LocalServer, profile: str, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    job_id = _job(server, tmp_path, examples=3)  # fewer than 10 examples: the job fails
    assert main(["--provider", profile, "watch", job_id]) == 1
    out, _ = capsys.readouterr()
    assert "  error  " in out


def test_unknown_job_and_unknown_profile(profile: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--provider", profile, "watch", "ftjob-missing"]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["--provider", "nope", "watch", "ftjob-missing"]) == 2
    assert "unknown provider profile" in capsys.readouterr().err


def test_ctrl_c_exits_130(slow_server: LocalServer, tmp_path: Path) -> None:
    job_id = _job(slow_server, tmp_path, examples=165, epochs=3)  # about 12 s of training
    env = dict(os.environ, **{KEY_ENV: slow_server.api_key})
    process = subprocess.Popen(
        [sys.executable, "-m", "tui", "--provider", save_profile(slow_server, "slow"), "watch",
         job_id],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # the follower is attached and printing
        assert LINE.match(first.rstrip("\n"))
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 130
    finally:
        process.kill()
        process.wait()
    client = openai.OpenAI(base_url=slow_server.base_url, api_key=slow_server.api_key)
    client.fine_tuning.jobs.cancel(job_id)
    client.close()
