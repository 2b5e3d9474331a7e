"""Pilot tests of the evaluation pane at 80x24 against the real local server, in-process."""

from __future__ import annotations

import csv
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Input, Label, SelectionList

from tui.app import SqltuneApp, make_app
from tui.core.data.datasets import Example, load_dataset
from tui.core.data.prompts import DEFAULT_TEMPLATE, messages_for
from tui.core.data.schema import SchemaCache
from tui.core.evaluation.evaluate import EvalReport, evaluate, model_predictor
from tui.core.evaluation.hardness import LEVELS
from tui.core.evaluation.runs import load_report, load_runs
from tui.core.history import History
from tui.core.paths import demo_dir
from tui.messages import JobEnded
from tui.screens.confirm import ConfirmScreen
from tui.server.inprocess import LocalServer, start_local_server
from tui.widgets.evaluation import EvaluationPane
from tui.widgets.evaluation.runner import EvalProgressed
from tui.widgets.evaluation.views import HardnessChart, QuestionTable, RunsTable, SkippedTable

BASE = "sqltune-local-base"
SIZE = (80, 24)
LIMIT = 10


class Starter:
    """Starts the real local server for the app (which stops it on exit) and keeps a handle."""

    def __init__(self, data_dir: Path, faults: str = "") -> None:
        self.data_dir = data_dir
        self.faults = faults
        self.server: LocalServer | None = None

    def __call__(self) -> LocalServer:
        self.server = start_local_server(self.data_dir, speed="max", faults=self.faults)
        return self.server

    @property
    def key(self) -> str:
        assert self.server is not None and self.server.api_key
        return self.server.api_key

    def client(self) -> openai.AsyncOpenAI:
        assert self.server is not None
        return openai.AsyncOpenAI(base_url=self.server.base_url, api_key=self.key, max_retries=0)


async def until(pilot: Pilot[Any], ready: Callable[[], object], what: str,
                timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


async def open_pane(pilot: Pilot[Any], app: SqltuneApp) -> EvaluationPane:
    """Show the pane by its number key and wait for the provider's models and the split."""
    ids = [pane.PANE_ID for pane in app.pane_classes()]
    await pilot.press(str(ids.index(EvaluationPane.PANE_ID) + 1))
    pane = app.pane("evaluation")
    assert isinstance(pane, EvaluationPane)
    await until(pilot, lambda: pane.run_bar.models and pane.run_bar.source, "models listed")
    return pane


async def run_and_wait(pilot: Pilot[Any], pane: EvaluationPane, rows: int) -> None:
    await pilot.press("r")
    table = pane.query_one(RunsTable)
    await until(pilot, lambda: not pane.run_bar.running and table.row_count == rows,
                f"{rows} compared runs")


async def core_report(starter: Starter, model: str, *, limit: int | None = None) -> EvalReport:
    """What tui.core.evaluation.evaluate computes directly for the same model on the same
    questions."""
    dataset = load_dataset(demo_dir(), "dev")
    examples = dataset.examples[:limit]

    def db_path_for(example: Example) -> Path | None:
        return dataset.db_path(example.db_id)

    async with starter.client() as client:
        return await evaluate(examples, db_path_for=db_path_for, concurrency=8,
                              predict=model_predictor(client, model, db_path_for=db_path_for))


def percent(share: float | None) -> str:
    assert share is not None
    return f"{100 * share:.1f}%"


def cell(table: RunsTable, model: str, column: str) -> str:
    run = next(run for run in table.runs if run.model == model)
    return str(table.get_cell(str(run.id), column)).strip("● ").strip()


def hardness_percent(report: EvalReport) -> list[float]:
    return [100 * (report.by_hardness[level]["execution_accuracy"] or 0.0) for level in LEVELS]


def exported(posted: list[Message]) -> int:
    return len({id(m) for m in posted if isinstance(m, EvaluationPane.Exported)})


def no_key_anywhere(app: SqltuneApp, key: str) -> None:
    assert key not in app.export_screenshot()


async def test_base_model_scores_like_core_with_chart_drilldown_and_export(
        tmp_path: Path) -> None:
    starter = Starter(tmp_path / "server")
    posted: list[Message] = []
    app = make_app(start_local=starter)
    async with app.run_test(size=SIZE, message_hook=posted.append) as pilot:
        pane = await open_pane(pilot, app)
        assert pane.run_bar.chosen == [BASE] and pane.run_bar.split == "dev"
        await run_and_wait(pilot, pane, rows=1)
        expected = await core_report(starter, BASE)
        table = pane.query_one(RunsTable)
        (run,) = table.runs
        assert (run.model, run.split, run.n) == (BASE, "dev", expected.n)
        assert expected.n == len(load_dataset(demo_dir(), "dev").examples)
        assert run.execution_accuracy == expected.execution_accuracy
        assert run.valid_sql_rate == expected.valid_sql_rate
        assert cell(table, BASE, "ex") == percent(expected.execution_accuracy)
        assert run.prompt_tokens == expected.prompt_tokens
        assert run.latency_p50_s is not None and run.latency_p95_s is not None
        assert run.latency_p50_s <= run.latency_p95_s

        chart = pane.query_one(HardnessChart)
        assert chart.series == {BASE: hardness_percent(expected)}
        assert chart.region.height >= 8 and chart.region.width >= 60
        # The hook sees a bubbling message once per node it reaches: count each one once.
        progress = [m for m in {id(m): m for m in posted}.values()
                    if isinstance(m, EvalProgressed)]
        assert [m.progress.done for m in progress] == list(range(1, expected.n + 1))
        assert "EX" in str(pane.query_one("#eval-state", Label).render())
        no_key_anywhere(app, starter.key)

        await pilot.press("v")
        questions = pane.query_one(QuestionTable)
        assert app.focused is questions and questions.row_count == expected.n
        first = questions.highlighted()
        assert first is not None and first.gold == expected.rows[0].gold
        assert first.match == expected.rows[0].match
        await pilot.press("f")
        assert questions.row_count == expected.n - sum(r.match for r in expected.rows)

        await pilot.press("e")
        field = app.screen.query_one("#export-report-path", Input)
        field.value = str(tmp_path / "report.csv")
        await pilot.press("enter")
        await until(pilot, lambda: exported(posted) == 1, "the export")
        # The same path again: both files exist, so the pane asks before overwriting them.
        await pilot.press("e")
        app.screen.query_one("#export-report-path", Input).value = str(tmp_path / "report")
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: exported(posted) == 2, "the second export")
        no_key_anywhere(app, starter.key)
    with (tmp_path / "report.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == expected.n
    assert sum(row["match"] == "True" for row in rows) == sum(r.match for r in expected.rows)
    summary = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert summary["n"] == expected.n and len(summary["rows"]) == expected.n
    assert summary["execution_accuracy"] == expected.execution_accuracy
    assert summary["by_hardness"] == expected.by_hardness
    for path in (tmp_path / "report.csv", tmp_path / "report.json"):
        assert starter.key not in path.read_text(encoding="utf-8")


async def test_cancel_mid_run_stops_early_and_records_nothing(tmp_path: Path) -> None:
    # Every response of the real server waits 100 ms: the run is slow enough to stop.
    starter = Starter(tmp_path / "server", faults="latency=100ms")
    app = make_app(start_local=starter)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot, app)
        bar = pane.run_bar
        await pilot.press("c")
        app.screen.query_one("#prompt-input", Input).value = "2"
        await pilot.press("enter")
        assert bar.concurrency == 2
        await pilot.press("r")
        await until(pilot, lambda: bar.done >= 4, "four questions")
        await pilot.press("x")
        await until(pilot, lambda: not bar.running, "the cancel")
        stopped_at = bar.done
        await pilot.pause(0.5)
        assert 4 <= stopped_at < bar.total == 50
        assert bar.done == stopped_at, "questions kept finishing after the cancel"
        report = pane.report
        assert report is not None and report.cancelled
        assert len(report.rows) + len(report.skipped) == stopped_at
        assert pane.query_one(QuestionTable).row_count == len(report.rows)
        assert "cancelled" in str(pane.query_one("#eval-state", Label).render())
        assert pane.query_one(RunsTable).row_count == 0
        # A typed name the provider does not serve: a clear error, nothing recorded.
        await pilot.press("m", "space", "tab")
        app.screen.query_one("#eval-models-other", Input).value = "no-such-model"
        await pilot.press("enter")
        assert bar.chosen == ["no-such-model"]
        await pilot.press("r")
        await until(pilot, lambda: not bar.running, "the failed run")
        state = str(pane.query_one("#eval-state", Label).render())
        assert "no-such-model" in state and "not_found" in state
        assert pane.query_one(RunsTable).row_count == 0
        no_key_anywhere(app, starter.key)
    with History() as history:
        assert history.evaluations() == []


def training_jsonl(path: Path) -> Path:
    """The demo train split as chat JSONL, rendered by the one shared prompt function."""
    dataset = load_dataset(demo_dir(), "train")
    cache = SchemaCache()
    lines = []
    for example in dataset.examples:
        db = dataset.db_path(example.db_id)
        assert db is not None
        lines.append(json.dumps({"messages": messages_for(DEFAULT_TEMPLATE, cache, db,
                                                          example.question, example.query)}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def fine_tune(pilot: Pilot[Any], starter: Starter, tmp_path: Path) -> str:
    async with starter.client() as client:
        with training_jsonl(tmp_path / "train.jsonl").open("rb") as handle:
            upload = await client.files.create(file=handle, purpose="fine-tune")
        job = await client.fine_tuning.jobs.create(model=BASE, training_file=upload.id)
        while job.status not in ("succeeded", "failed", "cancelled"):
            await pilot.pause(0.1)
            job = await client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded" and job.fine_tuned_model
    return job.fine_tuned_model


async def test_tuned_and_base_models_compared_and_kept_across_runs(tmp_path: Path) -> None:
    starter = Starter(tmp_path / "server")
    app = make_app(start_local=starter)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot, app)
        await pilot.press("l")
        app.screen.query_one("#prompt-input", Input).value = str(LIMIT)
        await pilot.press("enter")
        assert pane.run_bar.limit == LIMIT
        await run_and_wait(pilot, pane, rows=1)
        tuned = await fine_tune(pilot, starter, tmp_path)
        assert tuned not in pane.run_bar.models
        app.post_message(JobEnded("ftjob-done", "succeeded", tuned))
        await until(pilot, lambda: tuned in pane.run_bar.models, "the refreshed model list")

        await pilot.press("m")
        picker = app.screen.query_one(SelectionList)
        assert app.focused is picker and list(picker.selected) == [BASE]
        await pilot.press("space", "down", "space", "ctrl+s")
        assert pane.run_bar.chosen == [tuned]
        await run_and_wait(pilot, pane, rows=2)
        # Trained through the SDK, the tuned model's template is unknown: shown, never silent.
        assert "⚠ default prompt" in str(pane.query_one("#eval-state", Label).render())
        assert any(tuned in n.message and "default template" in n.message
                   for n in app._notifications)

        table = pane.query_one(RunsTable)
        for model in (BASE, tuned):
            expected = await core_report(starter, model, limit=LIMIT)
            assert cell(table, model, "ex") == percent(expected.execution_accuracy)
            assert cell(table, model, "n") == str(expected.n) == str(LIMIT)
        ex = {run.model: run.execution_accuracy for run in table.runs}
        assert ex[tuned] > ex[BASE], "the model tuned on the demo data should beat the base"

        await pilot.press("space", "down", "space")
        chart = pane.query_one(HardnessChart)
        assert set(chart.series) == {BASE, tuned}
        no_key_anywhere(app, starter.key)
    # What the next session's table is built from: history plus the kept per-question reports.
    kept = {run.model: run for run in load_runs()}
    assert {model: run.execution_accuracy for model, run in kept.items()} == ex
    for run in kept.values():
        assert run.report_path is not None
        assert load_report(run.report_path).execution_accuracy == run.execution_accuracy
    prompts = {model: load_report(run.report_path).prompt_template  # type: ignore[arg-type]
               for model, run in kept.items()}
    assert prompts[BASE] == {"name": "default", "fingerprint": DEFAULT_TEMPLATE.fingerprint(),
                             "source": "base model"}
    assert prompts[tuned] is not None and prompts[tuned]["source"] == "unknown"
    assert "no sqltune template fingerprint" in prompts[tuned]["warning"]


async def test_questions_whose_database_is_missing_are_listed_as_skipped(
        tmp_path: Path) -> None:
    data = tmp_path / "spider"
    shutil.copytree(demo_dir(), data, ignore=shutil.ignore_patterns("clinic.sqlite"))
    missing = sum(e.db_id == "clinic" for e in load_dataset(data, "dev").examples)
    starter = Starter(tmp_path / "server")
    app = make_app(data=data, start_local=starter)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot, app)
        await run_and_wait(pilot, pane, rows=1)
        (run,) = pane.query_one(RunsTable).runs
        assert run.n == 50 - missing and pane.report is not None
        assert {row.db_id for row in pane.report.rows} == {"bookshop", "university", "airline"}
        await pilot.press("v", "v")
        skipped = pane.query_one(SkippedTable)
        assert app.focused is skipped and skipped.row_count == missing > 0
        assert {(s.db_id, s.reason) for s in skipped.skipped} == {("clinic", "missing_database")}
        assert str(pane.query_one("#eval-skipped-note", Label).render()).startswith(
            f"{missing} skipped")
        assert f"{missing} skipped" in str(pane.query_one("#eval-state", Label).render())
    assert not (data / "database" / "clinic" / "clinic.sqlite").exists()


def test_every_key_has_an_evaluation_id_and_a_tooltip() -> None:
    bindings = list(EvaluationPane.pane_bindings())
    assert {b.action for b in bindings} >= {"run", "cancel", "pick_models", "export",
                                           "next_view"}
    for binding in bindings:
        assert binding.id and binding.id.startswith("evaluation.") and binding.tooltip
