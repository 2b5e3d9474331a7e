"""One server per data folder, with real processes: attach, race, lock, SIGKILL takeover, idle."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.server.conftest import PAIRS, chat_lines
from tests.server.helpers import all_events, data, wait_for
from tests.service_support import stop_service
from tui.cli import main
from tui.core.paths import data_dir, demo_dir
from tui.core.provider.providers import ProviderError
from tui.launch import ServiceEndpoint, local_endpoint
from tui.server.inprocess import start_local_server
from tui.server.service import FolderBusy, pid_alive, read_state

APP = r"""
import json, sys, time
import openai
from tui.launch import local_endpoint

started = time.monotonic()
endpoint = local_endpoint()
print(json.dumps({"pid": endpoint.pid, "url": endpoint.base_url,
                  "seconds": time.monotonic() - started}), flush=True)
with openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=5) as sdk:
    with open(sys.argv[1], "rb") as train:
        upload = sdk.files.create(file=train, purpose="fine-tune")
    job = sdk.fine_tuning.jobs.create(model="sqltune-local-base", training_file=upload.id,
                                      hyperparameters={"n_epochs": 2})
    print(json.dumps({"job": job.id}), flush=True)
    while job.status not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.05)
        job = sdk.fine_tuning.jobs.retrieve(job.id)
    print(json.dumps({"status": job.status}), flush=True)
endpoint.stop()
"""
"""What the app does with the local server: attach (or start it), create a job, poll it."""

STEP = re.compile(r"  Step (\d+)/(\d+): ")


@pytest.fixture
def folder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's server folder (the isolated home's); its service is stopped afterwards."""
    monkeypatch.setenv("SQLTUNE_SERVER_SPEED", "4")
    path = (data_dir() / "server").resolve()
    try:
        yield path
    finally:
        stop_service(path)


def sqltune(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tui", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def steps_of(client: openai.OpenAI, job_id: str) -> list[int]:
    return [int(data(e)["step"]) for e in all_events(client, job_id) if e.type == "metrics"]


def log_lines(folder: Path, needle: str) -> list[str]:
    return [line for line in (folder / "server.log").read_text().splitlines() if needle in line]


def test_app_watch_and_eval_at_once_share_one_server(folder: Path, tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_bytes(chat_lines(PAIRS))
    app = subprocess.Popen([sys.executable, "-c", APP, str(train)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    evaluate = sqltune("eval", str(demo_dir()), "--json", "--model", "gpt-4.1-mini-2025-04-14",
                       "--limit", "6")
    starter = sqltune("server", "start")
    assert app.stdout is not None
    first = json.loads(app.stdout.readline() or "null") or pytest.fail(app.stderr.read())
    job_id = json.loads(app.stdout.readline())["job"]
    watch = sqltune("watch", job_id)

    code, out, err = finish(watch)
    assert code == 0, err
    assert [int(m.group(1)) for m in map(STEP.search, out.splitlines()) if m] == \
        list(range(1, 49)), "watch printed every step once"
    assert finish(evaluate)[0] == 0
    code, out, err = finish(starter)
    assert code == 0 and f"pid {first['pid']}" in out, out + err
    code, out, err = finish(app)
    assert code == 0 and json.loads(out.splitlines()[-1]) == {"status": "succeeded"}, err

    # Three processes raced to start it: one service ran, and everyone used it.
    assert len(log_lines(folder, "starting: -m tui server --service")) == 1
    assert len(log_lines(folder, "listening on")) == 1
    state = read_state(folder)
    assert state is not None and state.pid == first["pid"] and state.kind == "service"
    started = time.monotonic()
    endpoint = local_endpoint(keep_alive=False)
    attach_s = time.monotonic() - started
    assert isinstance(endpoint, ServiceEndpoint) and endpoint.pid == first["pid"]
    print(f"\nstart-or-attach in the app process {first['seconds']:.3f} s; "
          f"attach in this process {attach_s * 1000:.1f} ms")
    with openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key) as client:
        assert steps_of(client, job_id) == list(range(1, 49)), "every step reported once"
        assert [c.step_number for c in client.fine_tuning.jobs.checkpoints.list(job_id)] == \
            [48, 24]


def test_sigkill_of_the_owner_mid_job_is_taken_over_and_every_step_reported_once(
        folder: Path) -> None:
    endpoint = local_endpoint(keep_alive=False)
    assert isinstance(endpoint, ServiceEndpoint)
    owner = endpoint.pid
    with openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key,
                       max_retries=0) as client:
        upload = client.files.create(file=("t.jsonl", chat_lines(PAIRS)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model="sqltune-local-base", training_file=upload.id,
                                             hyperparameters={"n_epochs": 3})
        # The checkpoint at step 24 snapshotted; the next snapshot comes 3 s later or at the
        # checkpoint of step 48: killed in between, steps 25.. were reported and are replayed.
        while (seen := max(steps_of(client, job.id), default=0)) < 30:
            time.sleep(0.02)
        os.kill(owner, signal.SIGKILL)
    assert seen < 48

    killed = time.monotonic()
    watch = sqltune("watch", job.id)
    while (state := read_state(folder)) is None or state.pid == owner:
        assert watch.poll() is None, watch.communicate()
        time.sleep(0.01)
    endpoint = local_endpoint(keep_alive=False)
    takeover_s = time.monotonic() - killed
    code, out, err = finish(watch)
    assert code == 0, err
    assert endpoint.pid != owner and not pid_alive(owner)
    print(f"\nSIGKILL takeover by the next sqltune (watch): {takeover_s:.2f} s")
    with openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key) as client:
        done = wait_for(client, job.id)
        assert done.status == "succeeded", done.error
        messages = [e.message for e in all_events(client, job.id)]
        resumed = [m for m in messages if m.startswith("The server restarted")]
        assert len(resumed) == 1 and resumed[0].startswith("The server restarted; resuming")
        assert 24 <= int(resumed[0].rsplit(" ", 1)[1]) < seen, "killed after an unsaved step"
        assert steps_of(client, job.id) == list(range(1, 73)), "every step reported once"
        assert [c.step_number for c in client.fine_tuning.jobs.checkpoints.list(job.id)] == \
            [72, 48, 24]
    printed = [int(m.group(1)) for m in map(STEP.search, out.splitlines()) if m]
    assert printed == list(range(1, 73)), "watch printed every step once"


def test_second_server_on_the_folder_exits_1_naming_the_url(folder: Path) -> None:
    endpoint = local_endpoint(keep_alive=False)
    started = time.monotonic()
    second = subprocess.run([sys.executable, "-m", "tui", "server", "--port", "0",
                             "--data-dir", str(folder)], capture_output=True, text=True,
                            timeout=60)
    assert second.returncode == 1
    assert f"already served by {endpoint.base_url}" in second.stderr
    assert time.monotonic() - started < 10
    with pytest.raises(FolderBusy, match=re.escape(endpoint.base_url)):
        start_local_server(folder)


def test_in_process_server_owns_its_folder_and_others_attach(folder: Path) -> None:
    with start_local_server(folder, speed="max") as server:
        endpoint = local_endpoint(keep_alive=False)
        assert endpoint.base_url == server.base_url and endpoint.api_key == server.api_key
        assert isinstance(endpoint, ServiceEndpoint) and endpoint.pid == os.getpid()
        assert main(["server", "stop", "--data-dir", str(folder)]) == 1  # it would stop us
    assert read_state(folder) is None


def test_status_and_stop(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["server", "status", "--data-dir", str(folder)]) == 3
    assert "not running" in capsys.readouterr().out
    endpoint = local_endpoint(keep_alive=False)
    with openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key) as client:
        upload = client.files.create(file=("t.jsonl", chat_lines(PAIRS)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model="sqltune-local-base", training_file=upload.id,
                                             hyperparameters={"n_epochs": 3})
        wait_for(client, job.id, ("running",))
    assert main(["server", "--data-dir", str(folder), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["running"] and status["pid"] == endpoint.pid
    assert status["url"] == endpoint.base_url and status["kind"] == "service"
    assert status["jobs"] == [{"id": job.id, "status": "running"}]
    assert status["running_jobs"] == 1 and status["data_dir"] == str(folder)
    assert status["idle_timeout_s"] == 20 and status["uptime_s"] >= 0
    assert endpoint.api_key not in json.dumps(status)
    assert main(["server", "status"]) == 0
    assert f"running at {endpoint.base_url}" in capsys.readouterr().out

    assert main(["server", "stop"]) == 0
    assert "1 running job(s) resume on the next start" in capsys.readouterr().out
    assert not pid_alive(endpoint.pid) and read_state(folder) is None
    assert main(["server", "status", "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["running"] is False

    again = local_endpoint(keep_alive=False)
    with openai.OpenAI(base_url=again.base_url, api_key=again.api_key) as client:
        assert wait_for(client, job.id).status == "succeeded"
        assert steps_of(client, job.id) == list(range(1, 73))


def test_idle_stop_keep_alive_restart_and_sighup(folder: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLTUNE_SERVER_IDLE_TIMEOUT", "1.5")
    endpoint = local_endpoint()  # keeps the service alive, as the app does while open
    assert isinstance(endpoint, ServiceEndpoint)
    try:
        first, url = endpoint.pid, endpoint.base_url
        os.kill(first, signal.SIGHUP)  # a dropped SSH session
        time.sleep(3.0)
        assert pid_alive(first) and endpoint.pid == first, "kept alive past its idle timeout"
        os.kill(first, signal.SIGKILL)
        end = time.monotonic() + 20
        while endpoint.pid == first:
            assert time.monotonic() < end, "the keep-alive did not restart the service"
            time.sleep(0.05)
        assert endpoint.base_url == url, "restarted on the same port: clients keep their URL"
        moved_to: list[str] = []
        endpoint.on_moved(moved_to.append)
        second = endpoint.pid
        with squatting_after_kill(second, url):  # its port is taken while it is down
            end = time.monotonic() + 20
            while endpoint.pid == second:
                assert time.monotonic() < end, "the keep-alive did not restart the service"
                time.sleep(0.05)
        assert endpoint.base_url != url and moved_to == [endpoint.base_url]
        last = endpoint.pid
    finally:
        endpoint.stop()
    end = time.monotonic() + 20
    while pid_alive(last):
        assert time.monotonic() < end, "the service did not stop once idle"
        time.sleep(0.05)
    assert read_state(folder) is None
    assert log_lines(folder, "idle for 1.5 s: stopping")


@contextlib.contextmanager
def squatting_after_kill(pid: int, url: str) -> Iterator[None]:
    """SIGKILL ``pid`` and listen on its port at once, before anyone restarts it there."""
    os.kill(pid, signal.SIGKILL)
    while pid_alive(pid):
        time.sleep(0.002)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])))
    squatter.listen()
    try:
        yield
    finally:
        squatter.close()


def test_explicit_server_and_an_auto_start_racing_end_with_one_server(folder: Path) -> None:
    explicit = sqltune("server", "--port", "0", "--data-dir", str(folder), "--speed", "max")
    endpoint = local_endpoint(keep_alive=False)  # spawns a service unless the explicit one is up
    try:
        state = read_state(folder)
        assert state is not None and state.pid == endpoint.pid
        if state.kind == "foreground":  # the explicit server won; the spawned service gave way
            assert state.pid == explicit.pid
            assert len(log_lines(folder, "is already served by")) <= 1
        else:  # the service won the lock: the explicit server exits 1 naming its URL
            code, _, err = finish(explicit, 30)
            assert code == 1 and f"already served by {state.url}" in err
    finally:
        if explicit.poll() is None:
            explicit.send_signal(signal.SIGINT)
            assert finish(explicit, 30)[0] == 0


def test_status_and_stop_of_a_folder_no_server_used_create_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "never"
    assert main(["server", "status", "--data-dir", str(folder)]) == 3
    assert main(["server", "stop", "--data-dir", str(folder)]) == 0
    assert not folder.exists()


def test_a_service_that_cannot_start_is_a_clear_error_at_once(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLTUNE_SERVER_SPEED", "warp")
    started = time.monotonic()
    with pytest.raises(ProviderError, match=r"exited with status 2 (?s:.*)speed must be"):
        local_endpoint(keep_alive=False)
    assert time.monotonic() - started < 20
