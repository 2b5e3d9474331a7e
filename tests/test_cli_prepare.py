"""`sqltune prepare`: the JSON contract, the summary, JSONL output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.test_prepare import build_spider_folder
from tui.cli import main
from tui.core.data.jsonl import validate_jsonl


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return build_spider_folder(tmp_path / "spider-mini")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict]:
    code = main(argv)
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == 1, out  # one JSON object
    return code, json.loads(lines[0])


def test_json_contract_as_a_whole_process(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    completed = subprocess.run(
        [sys.executable, "-m", "tui", "prepare", str(folder), "--json", "--out", str(out)],
        capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    assert data["examples"] == 17 and data["kept"] == 17
    assert data["epochs"] == 5 and data["epochs_setting"] == "auto"
    assert data["trained_tokens"] == data["tokens_per_epoch"] * 5
    assert data["estimated_cost_usd"] == pytest.approx(data["trained_tokens"] * 5.0 / 1e6,
                                                        abs=1e-4)
    assert data["encoding"] == "o200k_base" and data["max_example_tokens"] > 0
    assert data["over_context"] == 0
    assert {s["reason"] for s in data["skipped"]} == {"missing_database", "empty_database",
                                                      "gold_failed"}
    assert data["out"] == str(out) and data["out_examples"] == 17
    assert validate_jsonl(out, "gpt-4.1-mini-2025-04-14").ok


def test_flags_reach_the_budget(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, data = _json(capsys, ["prepare", str(folder), "--json", "--model",
                                "ft:gpt-3.5-turbo-0125:org::x", "--epochs", "2",
                                "--token-limit", "3000", "--strategy", "shortest"])
    assert code == 0
    assert data["encoding"] == "cl100k_base" and data["context_limit"] == 16_385
    assert data["epochs"] == 2 and data["token_limit"] == 3000 and data["strategy"] == "shortest"
    assert 0 < data["kept"] < data["examples"] and data["trained_tokens"] <= 3000
    assert data["estimated_cost_usd"] == pytest.approx(data["trained_tokens"] * 8.0 / 1e6,
                                                        abs=1e-4)


def test_unknown_model_note_and_template_flags(folder: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _, base = _json(capsys, ["prepare", str(folder), "--json", "--template", "compact"])
    _, more = _json(capsys, ["prepare", str(folder), "--json", "--model", "mystery-7b",
                             "--template", "compact", "--sample-rows", "2"])
    assert base["template"] == "compact" and more["template"] == "compact+custom"
    assert more["tokens_per_epoch"] > base["tokens_per_epoch"]
    assert more["estimated_cost_usd"] is None and "o200k_base" in more["encoding_note"]


def test_validation_split(folder: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    code, data = _json(capsys, ["prepare", str(folder), "--json", "--out",
                                str(tmp_path / "t.jsonl"), "--validation-out",
                                str(tmp_path / "v.jsonl"), "--validation-databases", "school"])
    assert code == 0 and data["validation_examples"] == 6 and data["kept"] == 11
    assert len((tmp_path / "v.jsonl").read_text().splitlines()) == 6


def test_summary_without_json(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "17 usable, 17 kept" in out and "Estimated cost" in out
    assert "missing_database" in out and "train.json #11" in out


@pytest.mark.parametrize("argv_tail", [[], ["--json"]])
def test_unusable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                argv_tail: list[str]) -> None:
    assert main(["prepare", str(tmp_path / "missing"), *argv_tail]) == 2
    captured = capsys.readouterr()
    assert "not found" in captured.err
    if argv_tail:
        assert "not found" in json.loads(captured.out)["error"]
    (tmp_path / "bare").mkdir()
    assert main(["prepare", str(tmp_path / "bare"), *argv_tail]) == 2
    assert "tables.json" in capsys.readouterr().err


def test_bad_flag_combinations_exit_2(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", str(folder), "--validation-fraction", "0.2"]) == 2
    assert "--validation-out" in capsys.readouterr().err
    assert main(["prepare", str(folder), "--template", "fancy"]) == 2
    assert main(["prepare", str(folder), "--token-limit", "0"]) == 2
    assert main(["prepare", str(folder), "--sample-values", "500"]) == 2


def test_prepare_counts_an_open_weight_base_with_its_own_tokenizer(tiny_model_dir: Path) -> None:
    """--model FOLDER (or a Hub id): the model's tokenizer and chat template count; free."""
    from tui.core.budget.counters import BaseModelInfo, base_counter
    from tui.core.data.prepare import PrepareOptions, prepare
    from tui.core.paths import demo_dir

    done = subprocess.run([sys.executable, "-m", "tui", "prepare", str(demo_dir()), "--json",
                           "--model", str(tiny_model_dir), "--epochs", "1"],
                          capture_output=True, text=True, check=True)
    data = json.loads(done.stdout)
    counter = base_counter(BaseModelInfo(str(tiny_model_dir), str(tiny_model_dir),
                                         kind="folder", folder=str(tiny_model_dir)))
    expected = prepare(demo_dir(), PrepareOptions(model=str(tiny_model_dir), epochs=1),
                       counter=counter).budget
    assert data["encoding"] == f"{tiny_model_dir} tokenizer" and data["encoding_note"] is None
    assert data["context_limit"] == 1024 and data["estimated_cost_usd"] == 0.0
    assert data["costs_usd"] == {}
    assert data["total_tokens"] == expected.total_tokens
    assert data["max_example_tokens"] == expected.max_example_tokens
    assert "Token indices" not in done.stderr  # no tokenizer chatter
