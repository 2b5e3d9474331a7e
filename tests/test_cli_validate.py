"""``sqltune validate``: JSON and text reports, exit statuses 0, 1 and 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tui.cli import main

CORPUS = Path(__file__).parent / "core" / "malformed"


def good_file(path: Path, examples: int = 12) -> Path:
    lines = [json.dumps({"messages": [
        {"role": "system", "content": "CREATE TABLE singer (id INT, age INT);"},
        {"role": "user", "content": f"How many singers are older than {i}?"},
        {"role": "assistant", "content": f"SELECT count(*) FROM singer WHERE age > {i}"},
    ]}) for i in range(examples)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_valid_file_json_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", str(good_file(tmp_path / "t.jsonl")), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["ok"] is True and report["examples"] == 12
    assert report["errors"] == [] and report["warnings"] == []
    assert isinstance(report["max_example_tokens"], int)


def test_invalid_file_json_exit_one(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", str(CORPUS / "several_errors.jsonl"), "--json",
                 "--model", "gpt-4o-mini-2024-07-18"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["ok"] is False
    assert [(e["line"], e["code"], e["field"]) for e in report["errors"]] == [
        (3, "unknown_role", "messages[2].role"), (14, "invalid_json", None)]
    assert all(set(e) == {"line", "code", "message", "field"} for e in report["errors"])


def test_text_report_names_lines_and_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", str(CORPUS / "weight_two.jsonl")])
    out = capsys.readouterr().out
    assert code == 1
    assert "INVALID" in out
    assert "line 9 messages[2].weight: weight must be 0 or 1, got 2 [invalid_weight]" in out


def test_text_report_for_a_valid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(good_file(tmp_path / "t.jsonl"))]) == 0
    assert ": valid, 12 examples, 0 errors, 0 warnings" in capsys.readouterr().out


def test_missing_file_exits_two_with_a_clear_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", str(tmp_path / "nope.jsonl"), "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "nope.jsonl: no such file" in captured.err


def test_console_script_end_to_end(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tui", "validate", str(CORPUS / "too_few_examples.jsonl"),
         "--json"], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["errors"][0]["code"] == "too_few_examples" and report["examples"] == 5


def test_directory_is_named_as_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"sqltune validate: {tmp_path}: is a directory; "
                   "give a .jsonl file (sqltune prepare DIR makes one)\n")
    missing = tmp_path / "nope.jsonl"
    assert main(["validate", str(missing)]) == 2
    assert capsys.readouterr().err == f"sqltune validate: {missing}: no such file\n"
