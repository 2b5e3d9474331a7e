"""Evaluation runs kept across sessions: history's headline row plus the full report beside it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tui.core.data.datasets import available_splits
from tui.core.evaluation.report import EvalReport, QuestionResult, SkippedQuestion
from tui.core.history import EvaluationRecord, History
from tui.core.paths import data_dir, demo_dir

REPORTS_FOLDER = "evaluations"
"""Folder under the data dir holding one ``<history id>.json`` report per recorded run."""


class EvalRunError(Exception):
    """A run cannot be recorded (no model, cancelled, nothing scored) or a report is unreadable."""


@dataclass(frozen=True)
class EvalRun:
    """One recorded evaluation, as the comparison table shows it."""

    id: int
    """History's evaluation id."""
    created_at: float
    """When it was recorded (epoch seconds)."""
    model: str
    """The model evaluated."""
    provider: str | None
    """The provider profile it ran on."""
    split: str
    """The split evaluated."""
    n: int | None
    """Scored questions."""
    execution_accuracy: float
    """EX over the scored questions."""
    by_hardness: dict[str, Any]
    """{level: {n, execution_accuracy}}."""
    cost_per_question_usd: float | None = None
    """Dollars per question (None when unpriced)."""
    seconds_per_question: float | None = None
    """Mean model latency."""
    valid_sql_rate: float | None = None
    """Share of predictions that ran (None when no report file was kept)."""
    latency_p50_s: float | None = None
    """Median model latency."""
    latency_p95_s: float | None = None
    """95th percentile model latency."""
    prompt_tokens: int | None = None
    """Input tokens over the run."""
    completion_tokens: int | None = None
    """Output tokens over the run."""
    report_path: Path | None = None
    """The full per-question report, when this machine kept one."""


def reports_dir() -> Path:
    """Where full reports of recorded runs live."""
    return data_dir() / REPORTS_FOLDER


def save_run(report: EvalReport, *, provider: str | None,
             history: History | None = None) -> EvalRun:
    """Record a finished run in history and keep its full report (summary and rows) beside it."""
    if report.model is None or report.cancelled or not report.n:
        raise EvalRunError("only a finished run of a model with scored questions is recorded")
    own = history is None
    store = History() if history is None else history
    try:
        record = store.record_evaluation(
            report.model, report.split or "", report.execution_accuracy or 0.0,
            by_hardness=report.by_hardness, provider=provider,
            cost_per_question=report.cost_per_question_usd,
            seconds_per_question=report.seconds_per_question, questions=report.n)
    finally:
        if own:
            store.close()
    summary = {**report.to_json(), "history_id": record.id}
    path = reports_dir() / f"{record.id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    # The table reads only the small summary; the drill-down and exports read the full report.
    _write_json(path, {**report.to_json(include_rows=True), "history_id": record.id})
    _write_json(_summary_path(path), summary)
    return _run(record, summary, path)


def load_runs(history: History | None = None) -> list[EvalRun]:
    """Every recorded run, newest first, with the kept report's extra numbers when present."""
    own = history is None
    store = History() if history is None else history
    try:
        records = store.evaluations()
    finally:
        if own:
            store.close()
    runs = []
    for record in records:
        path = reports_dir() / f"{record.id}.json"
        data = _read_summary(_summary_path(path), record) if path.is_file() else None
        if data is None and path.is_file():
            data = _read_summary(path, record)
        runs.append(_run(record, data, path if data is not None else None))
    return runs


def comparison(runs: Iterable[EvalRun]) -> list[EvalRun]:
    """The newest run of each (model, split, provider): one row per model in the table."""
    latest: dict[tuple[str, str, str | None], EvalRun] = {}
    for run in sorted(runs, key=lambda r: r.id, reverse=True):
        latest.setdefault((run.model, run.split, run.provider), run)
    return list(latest.values())


def load_report(path: Path) -> EvalReport:
    """Rebuild a kept report (summary and per-question rows); raises EvalRunError."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        row_fields = {f.name for f in fields(QuestionResult)}
        skip_fields = {f.name for f in fields(SkippedQuestion)}
        rows = [QuestionResult(**{k: v for k, v in row.items() if k in row_fields})
                for row in data.get("rows", [])]
        skipped = [SkippedQuestion(**{k: v for k, v in item.items() if k in skip_fields})
                   for item in data.get("skipped_questions", [])]
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise EvalRunError(f"{path}: not a readable evaluation report ({error})") from None
    return EvalReport(rows=rows, skipped=skipped, model=data.get("model"),
                      split=data.get("split"), cancelled=bool(data.get("cancelled")),
                      total=int(data.get("total") or len(rows) + len(skipped)),
                      prompt_template=data.get("prompt_template"))


@dataclass(frozen=True)
class EvalSource:
    """The Spider-format folder an evaluation reads, its splits and the one to start on."""

    root: Path
    """The folder (the demo data unless --data names a Spider folder)."""
    label: str
    """``demo`` or the folder's name."""
    splits: list[str]
    """Splits present in the folder."""
    default_split: str
    """dev when present, else the first split."""
    note: str = ""
    """Why the demo data is used instead of --data, when it is."""
    error: str = ""
    """Why there is nothing to evaluate on (--data names a folder that is not there)."""


def eval_source(data: Path | None) -> EvalSource:
    """Where questions come from: --data when it is a Spider folder, else the demo dev split;
    a --data that does not exist is an error, never silently the demo data."""
    note = ""
    root = demo_dir()
    if data is not None and not Path(data).exists():
        return EvalSource(Path(data), Path(data).name, [], "dev",
                          error=f"dataset folder not found: {data}")
    if data is not None and Path(data).is_dir():
        root = Path(data)
    elif data is not None:
        note = f"{data} is not a Spider folder (databases are needed): using the demo data"
    splits = available_splits(root)
    default = "dev" if "dev" in splits else (splits[0] if splits else "dev")
    label = "demo" if root == demo_dir() else root.name
    return EvalSource(root, label, splits or [default], default, note)


def _summary_path(report: Path) -> Path:
    return report.with_name(f"{report.stem}.summary.json")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(data, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _read_summary(path: Path, record: EvaluationRecord) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    # A report left from an older history file with the same id is not this run's.
    if not isinstance(data, dict) or data.get("history_id") != record.id \
            or data.get("model") != record.model:
        return None
    return data


def _run(record: EvaluationRecord, data: dict[str, Any] | None, path: Path | None) -> EvalRun:
    extra = data or {}
    return EvalRun(
        id=record.id, created_at=record.created_at, model=record.model,
        provider=record.provider, split=record.split, n=record.questions,
        execution_accuracy=record.ex, by_hardness=record.by_hardness or {},
        cost_per_question_usd=record.cost_per_question,
        seconds_per_question=record.seconds_per_question,
        valid_sql_rate=extra.get("valid_sql_rate"), latency_p50_s=extra.get("latency_p50_s"),
        latency_p95_s=extra.get("latency_p95_s"), prompt_tokens=extra.get("prompt_tokens"),
        completion_tokens=extra.get("completion_tokens"), report_path=path)
