"""Prompt lineage through the CLI: prepare --template rich, jobs create, eval, on a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.eval_support import tune_demo_model
from tests.local_servers import KEY_ENV, module_server, save_profile
from tui.cli import main
from tui.core.data.prompts import DEFAULT_TEMPLATE, RICH_TEMPLATE
from tui.core.finetune.lineage import METADATA_FINGERPRINT, METADATA_NAME
from tui.core.paths import demo_dir
from tui.server.inprocess import LocalServer

BASE = "gpt-4.1-mini-2025-04-14"
DEMO = demo_dir()
server = module_server("lineage-cli")


@pytest.fixture
def srv(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, server.api_key)
    return save_profile(server)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[dict[str, Any], str]:
    assert main(list(argv)) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1, captured.out + captured.err  # one JSON object
    data: dict[str, Any] = json.loads(lines[0])
    return data, captured.err


def _eval(capsys: pytest.CaptureFixture[str], profile: str,
          model: str) -> tuple[dict[str, Any], str]:
    return _run(capsys, "--provider", profile, "eval", str(DEMO), "--json", "--model", model,
                "--split", "dev", "--limit", "6")


def test_a_model_trained_on_a_rich_file_is_evaluated_with_rich(
        srv: str, server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rich.jsonl"
    prepared, _ = _run(capsys, "prepare", str(DEMO), "--template", "rich", "--out", str(out),
                       "--json")
    rich = {"name": "rich", "fingerprint": RICH_TEMPLATE.fingerprint()}
    assert prepared["prompt_template"] == rich

    job, _ = _run(capsys, "--provider", srv, "jobs", "create", "--model", BASE,
                  "--training-file", str(out), "--epochs", "1", "--wait", "--json")
    assert job["status"] == "succeeded"
    assert job["metadata"][METADATA_FINGERPRINT] == RICH_TEMPLATE.fingerprint()
    assert job["metadata"][METADATA_NAME] == "rich"
    model = str(job["fine_tuned_model"])

    tuned, err = _eval(capsys, srv, model)
    assert tuned["prompt_template"] == {**rich, "source": "history"}
    assert "warning" not in err
    base, _ = _eval(capsys, srv, BASE)  # a base model: the default template, said so
    assert base["prompt_template"] == {"name": "default",
                                       "fingerprint": DEFAULT_TEMPLATE.fingerprint(),
                                       "source": "base model"}
    # rich prompts carry sample rows: the same six questions cost more prompt tokens
    assert tuned["prompt_tokens"] > base["prompt_tokens"]

    # Another machine (an empty history): the job's metadata on the provider names rich,
    # and the model is asked with exactly the same prompts.
    monkeypatch.setenv("SQLTUNE_DATA_DIR", str(tmp_path / "elsewhere"))
    elsewhere, err = _eval(capsys, srv, model)
    assert elsewhere["prompt_template"] == {**rich, "source": "job metadata"}
    assert elsewhere["prompt_tokens"] == tuned["prompt_tokens"] and "warning" not in err


def test_a_model_of_unknown_lineage_is_warned_about(
        srv: str, server: LocalServer, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    model = tune_demo_model(server, tmp_path)  # trained through the SDK: no sqltune metadata
    data, err = _eval(capsys, srv, model)
    prompt = data["prompt_template"]
    assert prompt["source"] == "unknown" and prompt["name"] == "default"
    assert prompt["fingerprint"] == DEFAULT_TEMPLATE.fingerprint()
    assert "no sqltune template fingerprint" in prompt["warning"]
    assert "warning" in err and model in err
    assert main(["--provider", srv, "eval", str(DEMO), "--model", model, "--limit", "3"]) == 0
    text = capsys.readouterr()
    assert "prompt template default" in text.out and "default template" in text.out
