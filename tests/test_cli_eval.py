"""``sqltune eval DIR --json (--model M | --predictions FILE)`` as a whole process."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.demo_entries import demo_entries
from tests.eval_support import tree_digest, tune_demo_model
from tui.cli import main
from tui.core.data.datasets import load_dataset
from tui.core.evaluation.evaluate import evaluate, model_predictor
from tui.core.evaluation.runs import load_report, load_runs
from tui.core.paths import demo_dir
from tui.core.provider.config import Config, ProviderProfile, save_config
from tui.server.inprocess import LocalServer, start_local_server

LEVELS = {"easy", "medium", "hard", "extra"}
NUMBERS = ("n", "execution_accuracy", "valid_sql_rate", "prompt_tokens", "completion_tokens")
DEMO = demo_dir()
DEV = [entry["query"] for entry in demo_entries("dev")]


def sqltune(*argv: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui", *argv], capture_output=True, text=True,
                          timeout=timeout, check=False, env=env)


def one_json(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 1, completed.stdout + completed.stderr  # one JSON object
    data: dict[str, Any] = json.loads(lines[0])
    return data


def check_contract(data: dict[str, Any]) -> None:
    for key in NUMBERS:
        assert isinstance(data[key], int | float) and not isinstance(data[key], bool), key
    assert set(data["by_hardness"]) == LEVELS
    for level in data["by_hardness"].values():
        assert isinstance(level["n"], int)
        assert level["execution_accuracy"] is None or 0 <= level["execution_accuracy"] <= 1
    assert sum(level["n"] for level in data["by_hardness"].values()) == data["n"]
    for key in ("latency_p50_s", "latency_p95_s", "cost_per_question_usd"):
        assert key in data and (data[key] is None or isinstance(data[key], float))


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_predictions_file_scores_line_by_line(tmp_path: Path) -> None:
    lines = list(DEV)
    for n in (4, 9, 20):
        lines[n] = "SELEC nothing"  # invalid SQL: wrong, and not valid
    lines[30], lines[31] = lines[31], lines[30]  # swapped: each line answers the other question
    out = tmp_path / "rows.json"
    completed = sqltune("eval", str(DEMO), "--json", "--predictions",
                        str(write_lines(tmp_path / "pred.sql", lines)), "--split", "dev",
                        "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    data = one_json(completed)
    check_contract(data)
    assert data["n"] == 50 and data["skipped"] == 0 and data["split"] == "dev"
    assert data["execution_accuracy"] == pytest.approx(45 / 50)
    assert data["valid_sql_rate"] == pytest.approx(47 / 50)
    assert data["errors"] == {"syntax_error": 3}
    assert data["latency_p50_s"] is None and data["cost_per_question_usd"] is None
    assert (data["prompt_tokens"], data["completion_tokens"]) == (0, 0)
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert {k: v for k, v in saved.items() if k != "rows"} == data
    rows = saved["rows"]
    assert [row["predicted"] for row in rows] == lines  # split order, one line each
    assert [row["index"] for row in rows if not row["match"]] == [4, 9, 20, 30, 31]


def test_csv_export_and_text_summary(tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    completed = sqltune("eval", str(DEMO), "--predictions",
                        str(write_lines(tmp_path / "gold.sql", DEV)), "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    assert "execution accuracy 100.0%" in completed.stdout
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 50
    assert {"index", "db_id", "question", "gold", "predicted", "hardness", "match",
            "valid_sql", "error"} <= set(rows[0])
    assert all(row["match"] == "True" and row["predicted"] == row["gold"] for row in rows)
    assert {row["hardness"] for row in rows} == LEVELS


def test_wrong_line_count_is_a_clear_error(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    short = write_lines(tmp_path / "short.sql", DEV[:49])
    completed = sqltune("eval", str(DEMO), "--json", "--predictions", str(short))
    assert completed.returncode == 2
    error = one_json(completed)["error"]
    assert error["type"] == "usage"
    assert str(short) in error["message"] and "49 lines" in error["message"]
    assert "50 questions" in error["message"]
    assert main(["eval", str(DEMO), "--predictions", str(short)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "49 lines" in err and "50 questions" in err


def test_missing_databases_are_skipped_and_never_created(tmp_path: Path) -> None:
    root = tmp_path / "partial"
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns("clinic", "_domains", "*.py"))
    assert not (root / "database" / "clinic").exists()
    before = tree_digest(root)
    completed = sqltune("eval", str(root), "--json", "--predictions",
                        str(write_lines(tmp_path / "gold.sql", DEV)), "--concurrency", "3")
    assert completed.returncode == 0, completed.stderr
    data = one_json(completed)
    check_contract(data)
    assert data["skipped"] == 12 and data["skipped_reasons"] == {"missing_database": 12}
    assert {q["db_id"] for q in data["skipped_questions"]} == {"clinic"}
    assert data["n"] == 38 and data["execution_accuracy"] == 1.0 and data["total"] == 50
    assert tree_digest(root) == before  # no database created, nothing changed
    assert not (root / "database" / "clinic").exists()


def test_unwritable_out_keeps_the_numbers(tmp_path: Path) -> None:
    out = tmp_path / "no-such-folder" / "rows.csv"
    completed = sqltune("eval", str(DEMO), "--json", "--limit", "5", "--predictions",
                        str(write_lines(tmp_path / "gold.sql", DEV)), "--out", str(out))
    assert completed.returncode == 1
    assert one_json(completed)["n"] == 5  # printed before the export failed
    assert "cannot write" in completed.stderr and str(out) in completed.stderr
    assert "Traceback" not in completed.stderr


# ---------------------------------------------------------------- --model on the local server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with start_local_server(tmp_path_factory.mktemp("server"), speed="max",
                            faults="429=0.1,seed=2,retry_after_ms=5") as running:
        yield running


@pytest.fixture(scope="module")
def tuned(server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    return tune_demo_model(server, tmp_path_factory.mktemp("train"))


@pytest.fixture
def profile_env(server: LocalServer) -> dict[str, str]:
    """A config profile for the test server; its key only in the child's environment."""
    save_config(Config(profiles={"srv": ProviderProfile(
        name="srv", kind="local", base_url=server.base_url, api_key_env="SQLTUNE_SERVER_KEY")}))
    return dict(os.environ, SQLTUNE_SERVER_KEY=server.api_key)


def test_model_on_the_local_server_matches_the_library(
        server: LocalServer, tuned: str, profile_env: dict[str, str]) -> None:
    completed = sqltune("--provider", "srv", "eval", str(DEMO), "--json", "--model", tuned,
                        "--split", "dev", "--concurrency", "4", "--limit", "24", env=profile_env)
    assert completed.returncode == 0, completed.stderr
    assert server.api_key not in completed.stdout + completed.stderr
    data = one_json(completed)
    check_contract(data)
    assert data["model"] == tuned and data["n"] == 24 and not data["errors"]
    assert 0 < data["latency_p50_s"] <= data["latency_p95_s"]
    assert data["prompt_tokens"] > 24 * 100 and data["completion_tokens"] > 24
    assert data["cost_per_question_usd"] > 0
    assert server.faults_injected["429"] > 0  # and the run still scored every question

    dataset = load_dataset(DEMO, "dev")

    async def library() -> dict[str, Any]:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key,
                                      max_retries=5) as client:
            predict = model_predictor(client, tuned,
                                      db_path_for=lambda e: dataset.db_path(e.db_id))
            report = await evaluate(dataset.examples[:24], predict=predict,
                                    db_path_for=lambda e: dataset.db_path(e.db_id))
        return report.to_json()

    expected = asyncio.run(library())
    assert data["by_hardness"] == expected["by_hardness"]
    for key in ("execution_accuracy", "valid_sql_rate", "prompt_tokens", "completion_tokens",
                "cost_per_question_usd"):
        assert data[key] == pytest.approx(expected[key]), key

    # The run is kept for the Evaluate pane: history row plus the full report with its rows.
    runs = [run for run in load_runs() if run.model == tuned]
    assert len(runs) == 1 and runs[0].report_path is not None
    kept = load_report(runs[0].report_path)
    assert kept.n == 24 and kept.execution_accuracy == pytest.approx(data["execution_accuracy"])


def test_unknown_model_exits_1(profile_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SQLTUNE_SERVER_KEY", profile_env["SQLTUNE_SERVER_KEY"])
    assert main(["--provider", "srv", "eval", str(DEMO), "--json", "--model",
                 "ft:gpt-4.1-mini-2025-04-14:nobody::gone"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["type"] == "evaluation" and "nobody" in error["message"]


def test_embedded_local_server_when_no_provider_is_configured() -> None:
    completed = sqltune("eval", str(DEMO), "--json", "--model", "gpt-4.1-mini-2025-04-14",
                        "--limit", "6")
    assert completed.returncode == 0, completed.stderr
    data = one_json(completed)
    check_contract(data)
    assert data["n"] == 6 and data["total"] == 6 and data["latency_p50_s"] > 0


def test_byte_order_mark_and_tab_separated_db_ids(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "windows.sql"
    dev = demo_entries("dev")
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(
        f"{entry['query']}\t{entry['db_id']}" for entry in dev).encode("utf-8") + b"\r\n")
    assert main(["eval", str(DEMO), "--json", "--predictions", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n"] == 50 and data["execution_accuracy"] == 1.0
