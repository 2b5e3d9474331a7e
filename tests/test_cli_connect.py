"""The headless commands reach the provider as the app does: SQLTUNE_LOCAL_URL names the local
server, and Ctrl-C ends a command even while the local server is being started."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from tests.chat_files import write_singer_jsonl
from tests.local_servers import module_server
from tui.cli import main
from tui.core.paths import data_dir, demo_dir
from tui.launch import LOCAL_KEY_ENV, LOCAL_URL_ENV
from tui.server.inprocess import LocalServer
from tui.server.service import SPAWN_LOCK_FILE, read_state

MODEL = "gpt-4.1-mini-2025-04-14"

server = module_server("connect-server")


@pytest.fixture
def named(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> LocalServer:
    """SQLTUNE_LOCAL_URL/KEY name ``server``; no profile is configured."""
    monkeypatch.setenv(LOCAL_URL_ENV, server.base_url)
    monkeypatch.setenv(LOCAL_KEY_ENV, server.api_key)
    return server


def no_service_started() -> bool:
    """No background local server ever ran on this test's data folder."""
    return read_state(data_dir() / "server") is None


def test_watch_follows_the_server_sqltune_local_url_names(
        named: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with openai.OpenAI(base_url=named.base_url, api_key=named.api_key) as client:
        upload = client.files.create(file=write_singer_jsonl(tmp_path / "t.jsonl", 20),
                                     purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=MODEL, training_file=upload.id)
    assert main(["watch", job.id]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1].endswith("The job has successfully completed")
    # the final line is the follower's last snapshot of the job: its status and tuned model
    assert f"sqltune watch: job {job.id} succeeded: " in err
    assert named.requests["GET", f"/v1/fine_tuning/jobs/{job.id}/events"] >= 1
    assert named.api_key not in out + err
    assert no_service_started()


def test_eval_asks_the_server_sqltune_local_url_names(
        named: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    asked = named.requests["POST", "/v1/chat/completions"]
    assert main(["eval", str(demo_dir()), "--json", "--model", MODEL, "--limit", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n"] == 3 and data["model"] == MODEL
    assert named.requests["POST", "/v1/chat/completions"] - asked >= 3
    assert no_service_started()


def opened(pid: int, path: Path) -> bool:
    """True once process ``pid`` holds ``path`` open."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fds / fd) == str(path) for fd in os.listdir(fds))
    except OSError:  # it exited, or closed an fd while we looked
        return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("command", [
    ["watch", "ftjob-anything"],
    ["eval", str(demo_dir()), "--model", MODEL, "--limit", "1"],
    ["jobs", "list"],
], ids=["watch", "eval", "jobs"])
def test_ctrl_c_while_the_local_server_starts_exits_130(command: list[str]) -> None:
    folder = data_dir() / "server"
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / SPAWN_LOCK_FILE
    # As if another sqltune were starting the server: this one waits for it (up to 60 s).
    held = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        process = subprocess.Popen([sys.executable, "-m", "tui", *command],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while not opened(process.pid, lock.resolve()):
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the command never waited for the server"
                time.sleep(0.05)
            interrupted = time.monotonic()
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 130
            assert time.monotonic() - interrupted < 5
            _, err = process.communicate()
            assert "Traceback" not in err
        finally:
            process.kill()
            process.wait()
    finally:
        os.close(held)
