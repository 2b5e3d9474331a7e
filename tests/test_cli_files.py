"""``sqltune files ...`` against the local server over loopback, through the real CLI."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.chat_files import write_singer_jsonl
from tests.local_servers import KEY_ENV, module_server, provider_anywhere, save_profile
from tui.cli import main
from tui.commands._headless import ProgressBar, table
from tui.core.finetune.files import UploadProgress
from tui.launch import LOCAL_KEY_ENV, LOCAL_URL_ENV
from tui.server.inprocess import LocalServer

server = module_server("files-server")


@pytest.fixture
def client(server: LocalServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key=server.api_key) as sdk:
        yield sdk


@pytest.fixture(autouse=True)
def attached(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """No --provider: the local server, reached by attaching to the test's server."""
    monkeypatch.setenv(LOCAL_URL_ENV, server.base_url)
    monkeypatch.setenv(LOCAL_KEY_ENV, server.api_key)


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out  # one JSON object on one line
    parsed: dict[str, object] = json.loads(out)
    return parsed


def _ids(client: openai.OpenAI) -> set[str]:
    return {f.id for f in client.files.list()}


def test_upload_prints_the_providers_file_object(
        client: openai.OpenAI, server: LocalServer, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_singer_jsonl(tmp_path / "train.jsonl", 12)
    assert main(["files", "upload", str(path), "--json"]) == 0
    obj = _json(capsys)
    assert obj == client.files.retrieve(str(obj["id"])).to_dict()
    assert obj["bytes"] == path.stat().st_size and obj["purpose"] == "fine-tune"
    assert client.files.content(str(obj["id"])).content == path.read_bytes()

    assert main(["files", "upload", str(path)]) == 0
    captured = capsys.readouterr()
    assert "filename  train.jsonl" in captured.out and "purpose   fine-tune" in captured.out
    assert "\r" not in captured.err  # no progress bar when stderr is not a terminal
    assert server.api_key not in captured.out + captured.err


def test_a_malformed_file_is_refused_with_its_lines_and_never_sent(
        client: openai.OpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_singer_jsonl(tmp_path / "good.jsonl", 12).read_text()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good + "not json\n" + '{"messages": [{"role": "user", "content": "hi"}]}\n')
    before = _ids(client)
    assert main(["files", "upload", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl is not a valid fine-tuning file; not uploaded" in err
    assert "line 13: not valid JSON" in err and "line 14:" in err
    assert main(["files", "upload", str(bad), "--json"]) == 2
    error = _json(capsys)["error"]
    assert isinstance(error, dict) and error["type"] == "usage"
    assert [issue["line"] for issue in error["errors"]] == [13, 14]
    assert _ids(client) == before


def test_missing_file_and_directory_are_usage_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["files", "upload", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["files", "upload", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_list_get_content_delete(client: openai.OpenAI, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = write_singer_jsonl(tmp_path / "listed.jsonl", 11)
    file_id = client.files.create(file=path, purpose="fine-tune").id

    assert main(["files", "list", "--json"]) == 0
    assert _json(capsys) == client.files.list().to_dict()
    assert main(["files", "list", "--json", "--limit", "1", "--order", "asc"]) == 0
    page = _json(capsys)
    assert page == client.files.list(limit=1, order="asc").to_dict()
    assert page["object"] == "list" and isinstance(page["data"], list) and len(page["data"]) == 1
    assert main(["files", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "PURPOSE", "SIZE", "CREATED", "(UTC)", "STATUS", "FILENAME"]
    assert any(line.startswith(file_id) and line.endswith("listed.jsonl") for line in lines)

    assert main(["files", "get", file_id, "--json"]) == 0
    assert _json(capsys) == client.files.retrieve(file_id).to_dict()

    out = tmp_path / "copy.jsonl"
    assert main(["files", "content", file_id, "--out", str(out)]) == 0
    assert out.read_bytes() == path.read_bytes()
    assert capsys.readouterr().err == f"wrote {out.stat().st_size} bytes to {out}\n"

    assert main(["files", "delete", file_id, "--json"]) == 0
    assert _json(capsys) == {"id": file_id, "object": "file", "deleted": True}
    assert main(["files", "get", file_id]) == 1
    assert f"No such File object: {file_id}" in capsys.readouterr().err
    assert main(["files", "delete", file_id, "--json"]) == 1
    error = _json(capsys)["error"]
    assert isinstance(error, dict) and "404" in error["message"]


def test_content_to_stdout_is_the_bytes_unchanged(
        client: openai.OpenAI, tmp_path: Path,
        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = write_singer_jsonl(tmp_path / "raw.jsonl", 10)
    file_id = client.files.create(file=path, purpose="fine-tune").id
    assert main(["files", "content", file_id]) == 0
    assert capsysbinary.readouterr().out == path.read_bytes()


def test_plain_list_fits_the_terminal(client: openai.OpenAI, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    name = "a-rather-long-training-file-name-for-the-narrow-terminal.jsonl"
    file_id = client.files.create(file=write_singer_jsonl(tmp_path / name, 10),
                                  purpose="fine-tune").id
    for columns in (60, 80, 160):
        monkeypatch.setenv("COLUMNS", str(columns))
        assert main(["files", "list"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert all(len(line) <= columns for line in lines), (columns, lines)
        row = next(line for line in lines if line.startswith(file_id))
        assert row.endswith(name if columns == 160 else ".jsonl")  # cut in the middle
        assert ("…" in row) is (columns < 160)


def test_table_drops_columns_before_ids() -> None:
    from tui.commands._headless import Column

    columns = (Column("ID"), Column("NOTE", drop=1), Column("NAME", flexible=True, minimum=8))
    rows = [["file-0123456789", "something long enough", "x" * 40]]
    assert table(columns, rows, None)[1] == "  ".join(rows[0])
    narrow = table(columns, rows, 30)
    assert narrow[0].split() == ["ID", "NAME"] and narrow[1].startswith("file-0123456789  ")
    assert all(len(line) <= 30 for line in narrow)


def test_provider_before_or_after_the_subcommand(
        server: LocalServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(LOCAL_URL_ENV)
    monkeypatch.setenv(KEY_ENV, server.api_key)
    outputs = []
    for argv in provider_anywhere(["files", "list", "--json"], save_profile(server)):
        assert main(argv) == 0, argv
        outputs.append(_json(capsys))
    assert outputs[0] == outputs[1] == outputs[2]
    assert main(["files", "list", "--provider", "nope"]) == 2
    assert "unknown provider profile 'nope'" in capsys.readouterr().err
    assert main(["--provider", "nope", "files", "list"]) == 2
    with pytest.raises(SystemExit) as usage:
        main(["files", "upload"])
    assert usage.value.code == 2


def test_progress_bar_fits_its_width() -> None:
    bar = ProgressBar("a-long-training-file-name.jsonl", enabled=False)
    for width in (40, 80, 120):
        line = bar.render(UploadProgress(1_200_000, 2_600_000), width)
        assert len(line) <= width and "46%" in line and "1.2 MB/2.6 MB" in line
    assert "part 2/3" in bar.render(UploadProgress(1, 3, part=2, parts=3), 80)


def test_upload_draws_progress_on_a_terminal(server: LocalServer, tmp_path: Path) -> None:
    path = write_singer_jsonl(tmp_path / "shown.jsonl", 30)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {name: value for name, value in os.environ.items() if name != "COLUMNS"}
    try:
        process = subprocess.run(  # stdout piped, stderr a 100-column terminal
            [sys.executable, "-m", "tui", "files", "upload", str(path), "--json"],
            stdout=subprocess.PIPE, stderr=follower, env=env, timeout=60, check=False)
        os.close(follower)
        follower = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the pty closed
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert process.returncode == 0
    assert json.loads(process.stdout)["filename"] == "shown.jsonl"  # stdout stays clean JSON
    text = drawn.decode()
    assert "\rshown.jsonl  [" in text and "100%" in text and text.endswith("\r\n")
    assert {len(line) for line in text.rstrip("\r\n").split("\r") if line} == {99}


def test_without_a_server_the_commands_attach_to_the_folders_background_service(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from tests.service_support import stop_service
    from tui.core.paths import data_dir

    monkeypatch.delenv(LOCAL_URL_ENV)
    monkeypatch.delenv(LOCAL_KEY_ENV)
    folder = (data_dir() / "server").resolve()
    try:
        assert main(["files", "upload", str(write_singer_jsonl(tmp_path / "bg.jsonl", 10)),
                     "--json"]) == 0
        file_id = _json(capsys)["id"]
        assert main(["files", "list", "--json"]) == 0  # a second command: the same server
        listed = _json(capsys)["data"]
        assert isinstance(listed, list) and [f["id"] for f in listed] == [file_id]
    finally:
        stop_service(folder)


def test_warnings_are_shown_and_the_file_still_uploads(
        client: openai.OpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + write_singer_jsonl(tmp_path / "x.jsonl", 10).read_bytes())
    assert main(["files", "upload", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: bom.jsonl: line 1: the file starts with a UTF-8 "
                                   "byte order mark")
    assert json.loads(captured.out)["filename"] == "bom.jsonl"
