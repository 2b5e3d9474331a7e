"""Without the train extra, the server, the CLI and the create form give one reason, worded once
(tui.core.finetune.form.train_extra_missing, which the server's lora package re-exports)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx
import pytest

from tui.cli import main
from tui.server.context import CTX
from tui.server.inprocess import start_local_server
from tui.server.training import JobFailed


def test_one_reason_in_the_server_the_cli_and_the_create_form(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "peft" else real(name, *a))
    from tui.commands.server import base_models_line
    from tui.core.finetune.form import train_extra_missing as form_reason
    from tui.server.engines import lora

    reason = form_reason()  # what the create form shows
    assert reason is not None and "peft" in reason and "pip install -e '.[train]'" in reason
    assert lora.train_extra_missing() == reason
    unavailable = f"this server has no 'lora' training engine: {reason}"

    assert main(["server", "--base-model", "x=Qwen/Qwen2.5-Coder-0.5B-Instruct",
                 "--data-dir", str(tmp_path / "cli")]) == 2
    assert capsys.readouterr().err.strip() == f"sqltune server: --base-model: {unavailable}"

    with start_local_server(tmp_path / "server", speed="max") as server:
        body = httpx.get(f"{server.base_url}/sqltune/base_models",
                         headers={"Authorization": f"Bearer {server.api_key}"}).json()
        assert body["train_extra_missing"] == reason
        assert server._app is not None
        assert base_models_line(server._app) == f"real base models: none ({unavailable})"
        with pytest.raises(JobFailed) as failed:
            server._app[CTX].runner.engine("lora")
        assert failed.value.message == f"T{unavailable[1:]}."
