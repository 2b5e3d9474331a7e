"""What the create form preselects and estimates: the newest training file with its validation
pair and Budget's settings; a duration only from measured throughput."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tui.core.budget.counters import BaseModelInfo
from tui.core.finetune.form import (
    ExportRecord,
    FormDefaults,
    form_defaults,
    human_duration,
    match_model,
    read_form_defaults,
    training_duration,
)
from tui.core.history import History


@dataclass(frozen=True)
class File:
    id: str
    filename: str


def test_newest_training_file_and_its_validation_pair_not_the_newest_upload(
        tmp_path: Path) -> None:
    # Budget exported train + validation, both were uploaded: the validation one is newest.
    train, valid = tmp_path / "demo-gpt-4.1-mini-120.jsonl", \
        tmp_path / "demo-gpt-4.1-mini-120-validation.jsonl"
    files = [File("file-v", "demo-gpt-4.1-mini-120-validation.jsonl"),
             File("file-t", "demo-gpt-4.1-mini-120.jsonl"),
             File("file-old", "older.jsonl")]
    exports = [ExportRecord(str(train), str(valid), "gpt-4.1-mini", 4)]
    found = form_defaults(files, {"file-v": str(valid), "file-t": str(train)}, exports)
    assert found == FormDefaults("file-t", "file-v", "gpt-4.1-mini", 4)


def test_pairs_by_path_when_names_do_not_say_validation(tmp_path: Path) -> None:
    files = [File("file-2", "held.jsonl"), File("file-1", "kept.jsonl")]
    exports = [ExportRecord(str(tmp_path / "kept.jsonl"), str(tmp_path / "held.jsonl"),
                            "gpt-4o-mini", "auto")]
    local = {"file-2": str(tmp_path / "held.jsonl"), "file-1": str(tmp_path / "kept.jsonl")}
    assert form_defaults(files, local, exports) == FormDefaults(
        "file-1", "file-2", "gpt-4o-mini", "auto")


def test_pairs_by_name_without_history() -> None:
    files = [File("f3", "b-validation.jsonl"), File("f2", "b.jsonl"),
             File("f1", "a-validation.jsonl")]
    assert form_defaults(files, {}, []) == FormDefaults("f2", "f3")
    assert form_defaults([File("f1", "x.jsonl")], {}, []) == FormDefaults("f1", None)
    assert form_defaults([File("f1", "x-validation.jsonl")], {}, []) == FormDefaults()


def test_read_from_history_records(tmp_path: Path) -> None:
    train, valid = tmp_path / "t.jsonl", tmp_path / "t-validation.jsonl"
    train.write_text("{}\n")
    valid.write_text("{}\n")
    with History() as history:
        history.record_dataset(tmp_path, "train", {}, budget={
            "model": "gpt-4.1-nano", "epochs_setting": 2, "out": str(train),
            "validation_out": str(valid)}, jsonl_path=train)
        history.record_upload("local", "file-t", train)
        history.record_upload("local", "file-v", valid)
    defaults, local = read_form_defaults(
        "local", [File("file-v", valid.name), File("file-t", train.name)])
    assert defaults == FormDefaults("file-t", "file-v", "gpt-4.1-nano", 2)
    assert local == {"file-t": str(train), "file-v": str(valid)}


def test_budget_model_matches_the_offered_snapshot() -> None:
    offered = ["gpt-4o-mini-2024-07-18", "gpt-4.1-mini-2025-04-14", "tiny"]
    assert match_model("gpt-4.1-mini", offered) == "gpt-4.1-mini-2025-04-14"
    assert match_model("tiny", offered) == "tiny"
    assert match_model("gpt-5", offered) is None


def test_duration_only_from_a_measurement() -> None:
    measured = BaseModelInfo("q", "Qwen/x", device="cpu", tokens_per_second=500.0)
    duration = training_duration(300_000, measured)
    assert duration.seconds == pytest.approx(600.0)
    assert duration.text() == "≈ 10 min at 500 tokens/s measured on cpu"
    assert duration.cpu
    unmeasured = training_duration(300_000, BaseModelInfo("q", "Qwen/x", device="cuda"))
    assert unmeasured.seconds is None and not unmeasured.cpu
    assert unmeasured.text().startswith("duration: no measurement yet on cuda")
    assert training_duration(0, measured).text() == "duration: nothing to train"
    assert [human_duration(s) for s in (0.2, 59, 61, 3600 + 5 * 60)] == \
        ["1 s", "59 s", "1 min", "1 h 05 min"]
