"""Recorded evaluation runs: history row plus kept report, newest per model, sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui.core.evaluation.report import EvalReport, QuestionResult, SkippedQuestion
from tui.core.evaluation.runs import (
    EvalRunError,
    comparison,
    eval_source,
    load_report,
    load_runs,
    reports_dir,
    save_run,
)
from tui.core.history import History
from tui.core.paths import demo_dir


def report(model: str, matches: list[bool], *, cancelled: bool = False) -> EvalReport:
    rows = [QuestionResult(index=i, db_id="db", question=f"q{i}", gold="SELECT 1",
                           predicted="SELECT 1" if ok else "SELECT 2",
                           hardness=("easy", "medium", "hard", "extra")[i % 4], match=ok,
                           error=None if ok or i % 2 else "syntax_error: near x",
                           error_type=None if ok or i % 2 else "syntax_error",
                           latency_s=0.1 * (i + 1), prompt_tokens=100, completion_tokens=7,
                           cost_usd=0.001)
            for i, ok in enumerate(matches)]
    skipped = [SkippedQuestion(len(rows), "gone", "q?", "missing_database", "no file")]
    return EvalReport(rows=rows, skipped=skipped, model=model, split="dev",
                      cancelled=cancelled, total=len(rows) + 1)


def test_saved_run_keeps_every_number_and_the_rows() -> None:
    original = report("m1", [True, False, True, False, False])
    saved = save_run(original, provider="local")
    (loaded,) = load_runs()
    assert loaded == saved
    assert (loaded.model, loaded.provider, loaded.split, loaded.n) == ("m1", "local", "dev", 5)
    assert loaded.execution_accuracy == original.execution_accuracy == 0.4
    assert loaded.valid_sql_rate == original.valid_sql_rate
    assert loaded.latency_p50_s == original.latency_p50_s
    assert loaded.latency_p95_s == original.latency_p95_s
    assert loaded.prompt_tokens == 500 and loaded.completion_tokens == 35
    assert loaded.cost_per_question_usd == pytest.approx(0.001)
    assert loaded.by_hardness == original.by_hardness
    assert loaded.report_path is not None
    again = load_report(loaded.report_path)
    assert again.rows == original.rows and again.skipped == original.skipped
    assert again.to_json() == original.to_json()


def test_comparison_keeps_the_newest_run_of_each_model() -> None:
    save_run(report("m1", [False, False]), provider="local")
    save_run(report("m2", [True, False]), provider="local")
    newest = save_run(report("m1", [True, True]), provider="local")
    rows = comparison(load_runs())
    assert [(r.model, r.execution_accuracy) for r in rows] == [("m1", 1.0), ("m2", 0.5)]
    assert rows[0].id == newest.id


def test_cancelled_or_empty_runs_are_not_recorded() -> None:
    with pytest.raises(EvalRunError):
        save_run(report("m1", [True], cancelled=True), provider=None)
    with pytest.raises(EvalRunError):
        save_run(report("m1", []), provider=None)
    assert load_runs() == []


def test_a_run_recorded_without_a_report_shows_history_numbers_only() -> None:
    with History() as history:
        history.record_evaluation("cli-model", "dev", 0.5, by_hardness={}, questions=4)
    (run,) = load_runs()
    assert (run.model, run.execution_accuracy, run.n) == ("cli-model", 0.5, 4)
    assert run.report_path is None and run.valid_sql_rate is None


def test_a_stale_report_with_the_same_id_is_ignored() -> None:
    save_run(report("m1", [True]), provider=None)
    kept = sorted(reports_dir().iterdir())
    assert [path.name for path in kept] == ["1.json", "1.summary.json"]
    for path in kept:  # as if left behind by an older history file whose ids started over
        data = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({**data, "model": "someone-else"}), encoding="utf-8")
    (run,) = load_runs()
    assert run.report_path is None and run.execution_accuracy == 1.0


def test_the_table_reads_the_full_report_when_the_summary_is_gone() -> None:
    saved = save_run(report("m1", [True, False]), provider=None)
    assert saved.report_path is not None
    (reports_dir() / "1.summary.json").unlink()
    (run,) = load_runs()
    assert run == saved


def test_an_unreadable_report_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "7.json"
    broken.write_text('{"rows": [{"index": 1}]}', encoding="utf-8")
    with pytest.raises(EvalRunError, match=r"7\.json"):
        load_report(broken)
    assert reports_dir().name == "evaluations"


def test_eval_source_defaults_to_the_demo_dev_split(tmp_path: Path) -> None:
    demo = eval_source(None)
    assert (demo.root, demo.label, demo.default_split) == (demo_dir(), "demo", "dev")
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text("{}\n", encoding="utf-8")
    fallback = eval_source(jsonl)
    assert fallback.root == demo_dir() and "not a Spider folder" in fallback.note
    folder = tmp_path / "spider"
    folder.mkdir()
    (folder / "train.json").write_text("[]", encoding="utf-8")
    own = eval_source(folder)
    assert (own.root, own.label, own.splits, own.default_split) == (
        folder, "spider", ["train"], "train")


def test_a_missing_data_folder_is_an_error_not_the_demo(tmp_path: Path) -> None:
    missing = eval_source(tmp_path / "nope")
    assert missing.error == f"dataset folder not found: {tmp_path / 'nope'}"
    assert missing.splits == [] and missing.root != demo_dir()
