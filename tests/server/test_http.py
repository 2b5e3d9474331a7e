"""HTTP contract details: bearer auth, request ids, OpenAI error bodies, key file, CLI safety."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

import httpx
import openai
import pytest

from tests.server.helpers import ServerProcess
from tests.server.spec import check
from tui.commands.server import is_loopback
from tui.commands.server import run as run_server
from tui.server.inprocess import LocalServer, start_local_server


@pytest.mark.openapi
def test_missing_or_wrong_key_is_401_with_openai_body(server: LocalServer) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = httpx.get(f"{server.base_url}/models", headers=headers)
        assert response.status_code == 401
        body = response.json()
        check("ErrorResponse", body)
        assert body["error"]["type"] == "invalid_request_error"
        assert server.api_key not in response.text
        assert response.headers["x-request-id"].startswith("req_")
    with openai.OpenAI(base_url=server.base_url, api_key="sk-wrong", max_retries=0) as sdk, \
            pytest.raises(openai.AuthenticationError) as error:
        sdk.models.list()
    assert error.value.code == "invalid_api_key"


@pytest.mark.openapi
def test_request_ids_and_unknown_routes(server: LocalServer) -> None:
    auth = {"Authorization": f"Bearer {server.api_key}"}
    seen = set()
    for method, path in (("GET", "/models"), ("GET", "/nope"), ("DELETE", "/fine_tuning/jobs"),
                         ("GET", "/files/file-x")):
        response = httpx.request(method, f"{server.base_url}{path}", headers=auth)
        seen.add(response.headers["x-request-id"])
        if response.status_code >= 400:
            check("ErrorResponse", response.json())
    assert len(seen) == 4
    missing = httpx.get(f"{server.base_url}/nope", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Invalid URL (GET /v1/nope)"
    bad_json = httpx.post(f"{server.base_url}/fine_tuning/jobs", content=b"{nope",
                           headers={**auth, "Content-Type": "application/json"})
    assert bad_json.status_code == 400 and "parse the JSON body" in bad_json.text


def test_key_file_is_private_and_env_overrides(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with start_local_server(tmp_path / "a", speed="max") as first:
        key_file = tmp_path / "a" / "api-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key_file.read_text().strip() == first.api_key
        assert first.api_key not in repr(first)
    with start_local_server(tmp_path / "a", speed="max") as again:
        assert again.api_key == first.api_key  # one key per data dir
    monkeypatch.setenv("SQLTUNE_SERVER_KEY", "sk-from-env")
    with start_local_server(tmp_path / "b", speed="max") as from_env:
        assert from_env.api_key == "sk-from-env"
        ok = httpx.get(f"{from_env.base_url}/models",
                        headers={"Authorization": "Bearer sk-from-env"})
        assert ok.status_code == 200


def test_command_refuses_remote_hosts_without_allow_remote(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    args = argparse.Namespace(host="0.0.0.0", port=0, data_dir=tmp_path, faults="",
                              speed="max", allow_remote=False)
    assert run_server(args) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert not (tmp_path / "api-key").exists()
    bad_speed = argparse.Namespace(**{**vars(args), "host": "127.0.0.1", "speed": "warp"})
    assert run_server(bad_speed) == 2
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.4", "example.com"))


def test_command_prints_url_and_key_path_never_the_key(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "srv")
    try:
        text = "\n".join(proc.banner)
        assert proc.base_url.startswith("http://127.0.0.1:") and proc.base_url.endswith("/v1")
        assert str(tmp_path / "srv" / "api-key") in text
        assert proc.api_key not in text
        with proc.client(max_retries=0) as sdk:
            assert sdk.models.list().data
    finally:
        assert proc.terminate() == 0
    assert proc.process.stdout is not None and proc.process.stderr is not None
    rest = proc.process.stdout.read() + proc.process.stderr.read()
    assert proc.api_key not in rest
