"""``sqltune jobs ...`` against the local server over loopback, through the real CLI."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.chat_files import write_singer_jsonl
from tests.local_servers import KEY_ENV, module_server, provider_anywhere, save_profile
from tui.cli import main
from tui.launch import LOCAL_KEY_ENV, LOCAL_URL_ENV
from tui.server.inprocess import LocalServer

MODEL = "gpt-4.1-mini-2025-04-14"
EVENT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  (info|warn|error)  \S.*$")


server = module_server("jobs-server")
demo_server = module_server("jobs-demo", speed="demo")
"""Demo pace: a 300-step job runs for about 30 s, long enough to pause and resume."""


def _attach(monkeypatch: pytest.MonkeyPatch, server: LocalServer) -> openai.OpenAI:
    """No --provider: the local server, reached by attaching to the test's server."""
    monkeypatch.setenv(LOCAL_URL_ENV, server.base_url)
    monkeypatch.setenv(LOCAL_KEY_ENV, server.api_key)
    return openai.OpenAI(base_url=server.base_url, api_key=server.api_key)


@pytest.fixture
def client(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[openai.OpenAI]:
    with _attach(monkeypatch, server) as sdk:
        yield sdk


def _json(out: str) -> dict[str, object]:
    assert out.count("\n") == 1, out  # one JSON object on one line
    parsed: dict[str, object] = json.loads(out)
    return parsed


def _finished_job(client: openai.OpenAI, tmp_path: Path) -> str:
    path = write_singer_jsonl(tmp_path / "done.jsonl", 12)
    file_id = client.files.create(file=path, purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=file_id,
                                         hyperparameters={"n_epochs": 5})
    for _ in range(200):
        if client.fine_tuning.jobs.retrieve(job.id).status == "succeeded":
            return job.id
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def test_create_from_a_path_waits_and_prints_the_final_job(
        client: openai.OpenAI, server: LocalServer, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    train = write_singer_jsonl(tmp_path / "train.jsonl", 20)
    valid = write_singer_jsonl(tmp_path / "valid.jsonl", 10)
    files_before = {f.id for f in client.files.list()}
    assert main(["jobs", "create", "--model", MODEL, "--training-file", str(train),
                 "--validation-file", str(valid), "--epochs", "1", "--suffix", "cli",
                 "--seed", "7", "--wait", "--json"]) == 0
    captured = capsys.readouterr()
    job = _json(captured.out)
    assert job == client.fine_tuning.jobs.retrieve(str(job["id"])).to_dict()
    assert job["status"] == "succeeded" and job["seed"] == 7
    assert str(job["fine_tuned_model"]).startswith(f"ft:{MODEL}:sqltune:cli:")
    uploaded = {f.id: f.filename for f in client.files.list() if f.id not in files_before
                and f.purpose == "fine-tune"}
    assert {uploaded[str(job["training_file"])], uploaded[str(job["validation_file"])]} == {
        "train.jsonl", "valid.jsonl"}
    err = captured.err.splitlines()
    assert err[0].startswith("estimate: ≈ ") and "1 epochs × " in err[0]
    assert "20 examples" in err[0] and "free on the local server" in err[0]
    assert err[1].startswith("uploaded train.jsonl as file-")
    events = [line for line in err if EVENT.match(line)]
    assert any("Step 20/20: training loss=" in line for line in events)
    assert events[-1].endswith("The job has successfully completed")
    assert server.api_key not in captured.out + captured.err


def test_create_plain_text_without_wait(client: openai.OpenAI, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    file_id = client.files.create(file=write_singer_jsonl(tmp_path / "t.jsonl", 15),
                                  purpose="fine-tune").id
    assert main(["jobs", "create", "--model", MODEL, "--training-file", file_id,
                 "--epochs", "2", "--batch-size", "3", "--learning-rate-multiplier", "0.5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("estimate: ≈ ") and "(2 epochs × " in out[0]  # counted by download
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out[1:])
    assert fields["training file"] == file_id and fields["model"] == MODEL
    assert fields["hyperparameters"] == "n_epochs=2  batch_size=3  learning_rate_multiplier=0.5"
    assert client.fine_tuning.jobs.retrieve(fields["id"]).training_file == file_id


def test_a_failed_job_exits_1(client: openai.OpenAI, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    # Fewer than 10 examples: the provider accepts the file and then fails the job.
    file_id = client.files.create(file=write_singer_jsonl(tmp_path / "few.jsonl", 3),
                                  purpose="fine-tune").id
    assert main(["jobs", "create", "--model", MODEL, "--training-file", file_id,
                 "--wait"]) == 1
    captured = capsys.readouterr()
    assert "no estimate: " in captured.err
    assert "  error  " in captured.out  # the failure event
    assert re.search(r"^status\s+failed$", captured.out, re.M)
    assert re.search(r"^error\s+invalid_n_examples: Training file has 3 ", captured.out, re.M)
    assert "failed" in captured.err.splitlines()[-1]


def test_a_malformed_training_file_is_refused_before_the_provider(
        client: openai.OpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(write_singer_jsonl(tmp_path / "ok.jsonl", 12).read_text() + "{oops\n")
    files, jobs = len(client.files.list().data), len(client.fine_tuning.jobs.list().data)
    assert main(["jobs", "create", "--model", MODEL, "--training-file", str(bad)]) == 2
    assert "line 13: not valid JSON" in capsys.readouterr().err
    assert main(["jobs", "create", "--model", MODEL, "--training-file", "missing.jsonl"]) == 2
    assert "missing.jsonl: no such file" in capsys.readouterr().err
    assert len(client.files.list().data) == files
    assert len(client.fine_tuning.jobs.list().data) == jobs
    for argv in (["jobs", "create", "--training-file", "file-x"],
                 ["jobs", "create", "--model", MODEL, "--training-file", "f", "--epochs", "0"],
                 ["jobs", "create", "--model", MODEL, "--training-file", "f",
                  "--batch-size", "-1"],
                 ["jobs", "create", "--model", MODEL, "--training-file", "f",
                  "--suffix", "x" * 65],
                 ["jobs", "list", "--limit", "0"]):
        with pytest.raises(SystemExit) as usage:
            main(argv)
        assert usage.value.code == 2


def test_list_get_events_checkpoints_are_the_providers_json(
        client: openai.OpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = _finished_job(client, tmp_path)
    assert main(["jobs", "list", "--json", "--limit", "3"]) == 0
    page = _json(capsys.readouterr().out)
    assert page == client.fine_tuning.jobs.list(limit=3).to_dict() and page["object"] == "list"
    assert main(["jobs", "get", job_id, "--json"]) == 0
    assert _json(capsys.readouterr().out) == client.fine_tuning.jobs.retrieve(job_id).to_dict()
    assert main(["jobs", "events", job_id, "--json", "--limit", "5"]) == 0
    assert _json(capsys.readouterr().out) == client.fine_tuning.jobs.list_events(
        job_id, limit=5).to_dict()
    assert main(["jobs", "checkpoints", job_id, "--json"]) == 0
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job_id)
    assert _json(capsys.readouterr().out) == checkpoints.to_dict()

    assert main(["jobs", "events", job_id, "--limit", "3"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 3 and all(EVENT.match(line) for line in lines)
    assert lines[-1].endswith("The job has successfully completed")  # oldest first
    assert captured.err.startswith("older events: --after ftevent")
    assert main(["jobs", "checkpoints", job_id]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[:3] == ["STEP", "TRAIN", "LOSS"]
    steps = sorted(c.step_number for c in checkpoints.data)
    assert [int(row.split()[0]) for row in rows[1:]] == steps
    assert all(row.endswith(f"ckpt-step-{step}") for row, step in zip(rows[1:], steps,
                                                                        strict=True))
    assert main(["jobs", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split()[:2] == ["ID", "STATUS"]
    assert any(line.startswith(f"{job_id}  succeeded") for line in listed)


def test_unknown_job_exits_1(client: openai.OpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("get", "events", "checkpoints", "cancel", "pause", "resume"):
        assert main(["jobs", action, "ftjob-missing"]) == 1, action
        assert "HTTP 404: " in capsys.readouterr().err
    assert main(["jobs", "get", "ftjob-missing", "--json"]) == 1
    error = _json(capsys.readouterr().out)["error"]
    assert isinstance(error, dict) and error["type"] == "failed"


def test_pause_resume_cancel(demo_server: LocalServer, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    with _attach(monkeypatch, demo_server) as sdk:
        file_id = sdk.files.create(file=write_singer_jsonl(tmp_path / "long.jsonl", 100),
                                   purpose="fine-tune").id
        job_id = sdk.fine_tuning.jobs.create(model=MODEL, training_file=file_id,
                                             hyperparameters={"n_epochs": 3}).id
        assert main(["jobs", "pause", job_id]) == 1  # still validating: the provider says no
        assert "only a running job can be paused" in capsys.readouterr().err
        deadline = time.monotonic() + 20
        while sdk.fine_tuning.jobs.retrieve(job_id).status != "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert main(["jobs", "pause", job_id, "--json"]) == 0
        paused = _json(capsys.readouterr().out)
        assert paused["status"] == "paused"
        assert paused == sdk.fine_tuning.jobs.retrieve(job_id).to_dict()
        assert main(["jobs", "get", job_id]) == 0
        out = capsys.readouterr().out
        assert re.search(r"^status\s+paused$", out, re.M) and "estimated finish" not in out
        assert main(["jobs", "resume", job_id]) == 0
        assert capsys.readouterr().out == f"{job_id} running\n"
        assert main(["--provider", "local", "jobs", "cancel", job_id]) == 0
        assert capsys.readouterr().out == f"{job_id} cancelled\n"
        assert sdk.fine_tuning.jobs.retrieve(job_id).status == "cancelled"
        assert main(["jobs", "cancel", job_id, "--provider", "local"]) == 1


def test_provider_after_the_subcommand(server: LocalServer, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(KEY_ENV, server.api_key)
    outputs = []
    for argv in provider_anywhere(["jobs", "list", "--json"], save_profile(server)):
        assert main(argv) == 0, argv
        outputs.append(_json(capsys.readouterr().out))
    assert outputs[0] == outputs[1] == outputs[2]
    assert main(["jobs", "list", "--provider", "nope"]) == 2
    assert "unknown provider profile" in capsys.readouterr().err


def test_ctrl_c_while_waiting_exits_130_and_the_job_goes_on(
        demo_server: LocalServer, tmp_path: Path) -> None:
    train = write_singer_jsonl(tmp_path / "wait.jsonl", 100)
    env = dict(os.environ, **{LOCAL_URL_ENV: demo_server.base_url,
                              LOCAL_KEY_ENV: demo_server.api_key})
    process = subprocess.Popen(
        [sys.executable, "-m", "tui", "jobs", "create", "--model", MODEL, "--training-file",
         str(train), "--epochs", "3", "--wait"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert process.stdout is not None and process.stderr is not None
        created = ""
        while not EVENT.match(line := process.stdout.readline().rstrip("\n")):
            assert line, "the command ended before following the job"
            created = line if line.startswith("created ") else created
        job_id = created.split()[1]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 130
        assert f"job {job_id} keeps running" in process.stderr.read()
    finally:
        process.kill()
        process.wait()
    with openai.OpenAI(base_url=demo_server.base_url, api_key=demo_server.api_key) as sdk:
        assert sdk.fine_tuning.jobs.retrieve(job_id).status not in ("cancelled", "failed")
        sdk.fine_tuning.jobs.cancel(job_id)


@pytest.mark.parametrize("argv", [
    ["jobs", "create", "--model", MODEL, "--training-file", "file-x"], ["jobs", "list"],
    ["jobs", "get", "J"], ["jobs", "events", "J"], ["jobs", "checkpoints", "J"],
    ["jobs", "cancel", "J"], ["jobs", "pause", "J"], ["jobs", "resume", "J"],
    ["files", "upload", "f.jsonl"], ["files", "list"], ["files", "get", "F"],
    ["files", "content", "F"], ["files", "delete", "F"],
    ["watch", "J"], ["eval", "DIR", "--model", MODEL], ["serve"]])
def test_every_provider_command_takes_provider_on_either_side(argv: list[str]) -> None:
    from tui.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(argv).provider is None
    assert parser.parse_args(["--provider", "before", *argv]).provider == "before"
    assert parser.parse_args([*argv, "--provider", "after"]).provider == "after"


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found[0].choices) if found else {}


def test_every_option_has_help_text() -> None:
    from tui.cli import build_parser

    commands = _choices(build_parser())
    for name in ("files", "jobs"):
        actions = _choices(commands[name])
        assert len(actions) == {"files": 5, "jobs": 8}[name]
        for action in actions.values():
            for option in action._actions:
                assert option.help, (action.prog, option.dest)


def test_a_real_base_counts_with_its_own_tokenizer_and_says_how_long(
        tiny_model_dir: Path, tmp_path: Path) -> None:
    from tui.core.budget.counters import BaseModelInfo, base_counter
    from tui.core.finetune.estimate import RealBase, duration_lines, estimate_job
    from tui.core.finetune.files import FileService

    info = BaseModelInfo(id="tiny-chat", source=str(tiny_model_dir), kind="folder",
                         device="cpu", tokens_per_second=500.0, folder=str(tiny_model_dir))
    base = RealBase(info, base_counter(info))
    assert not base.counter.approximate
    path = write_singer_jsonl(tmp_path / "tiny.jsonl", 10)
    report = FileService.validate(path, "tiny-chat", base.counter)
    examples = [json.loads(line)["messages"] for line in path.read_text().splitlines()]
    assert report.total_tokens == sum(base.counter.count(m) for m in examples)
    estimate = estimate_job(report, "tiny-chat", 2, "local")
    assert estimate.trained_tokens == 2 * report.total_tokens
    assert estimate.line().endswith("· free on the local server")
    lines = duration_lines(estimate, base)
    assert lines[0].startswith("≈ ") and "at 500 tokens/s measured on cpu" in lines[0]
    assert lines[1].startswith("CPU training suits small datasets")
