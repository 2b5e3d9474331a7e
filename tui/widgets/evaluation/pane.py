"""The evaluation pane: run models over a split, compare every model evaluated, drill down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.message import Message
from textual.widgets import ContentSwitcher, DataTable, Label, Static

from tui.core.evaluation.report import EvalReport, QuestionResult
from tui.messages import JobEnded
from tui.widgets.evaluation.export import ask_export
from tui.widgets.evaluation.run_bar import RunBar
from tui.widgets.evaluation.runner import EvalEnded, EvalFinished, EvalProgressed, EvalStarted
from tui.widgets.evaluation.views import (
    HardnessChart,
    QuestionTable,
    RunsTable,
    SkippedTable,
    question_detail,
    share_text,
)
from tui.widgets.pane import Pane

if TYPE_CHECKING:
    from tui.core.evaluation.runs import EvalRun
    from tui.core.session import Session
    from tui.widgets.failures import WorkFailed

VIEWS = ("eval-compare", "eval-questions", "eval-skipped-view")
"""The views ``v`` cycles through."""


class EvaluationPane(Pane):
    """Execution accuracy, cost and speed of models on a split, compared across runs."""

    PANE_ID = "evaluation"
    PANE_TITLE = "Evaluate"
    SCOPED_CSS = False
    DEFAULT_CSS = """
    #pane-evaluation #eval-views, #pane-evaluation .eval-split { height: 1fr; }
    #pane-evaluation #eval-compare, #pane-evaluation #eval-questions { height: 1fr; }
    #pane-evaluation #eval-runs { height: auto; max-height: 8; }
    #pane-evaluation #eval-chart { height: 1fr; min-height: 8; }
    #pane-evaluation #eval-questions-title { height: 1; padding: 0 1; color: $text-muted; }
    #pane-evaluation #eval-question-table { height: 7; }
    #pane-evaluation #eval-detail-scroll { height: 1fr; padding: 0 1;
                                           border-top: solid $primary-darken-2; }
    #pane-evaluation #eval-skipped-view, #pane-evaluation #eval-skipped { height: 1fr; }
    #pane-evaluation #eval-skipped-note { height: 1; padding: 0 1; color: $text-muted; }
    Screen.-wide #pane-evaluation .eval-split { layout: horizontal; }
    Screen.-wide #pane-evaluation #eval-runs { height: 1fr; width: 1fr; }
    Screen.-wide #pane-evaluation #eval-chart { width: 50; }
    Screen.-wide #pane-evaluation #eval-question-table { height: 1fr; width: 1fr; }
    Screen.-wide #pane-evaluation #eval-detail-scroll { width: 1fr; border-top: none;
                                                        border-left: solid $primary-darken-2; }
    """
    BINDINGS: ClassVar[list[Any]] = [
        Binding("r", "run", "Run", id="evaluation.run",
                tooltip="Evaluate the chosen model(s) on the split"),
        Binding("x,escape", "cancel", "Cancel run", id="evaluation.cancel",
                tooltip="Stop the run; the questions finished so far stay listed"),
        Binding("m", "pick_models", "Models", id="evaluation.models",
                tooltip="Choose models: the provider's (fine-tuned too) or any name"),
        Binding("v", "next_view", "View", id="evaluation.view",
                tooltip="Compare runs, then questions of the run, then skipped questions"),
        Binding("e", "export", "Export", id="evaluation.export",
                tooltip="Write the shown run's report as CSV and JSON"),
        Binding("s", "next_split", "Split", id="evaluation.split", show=False,
                tooltip="Evaluate on the next split of the dataset"),
        Binding("c", "set_concurrency", "Concurrency", id="evaluation.concurrency",
                show=False, tooltip="Questions in flight at once"),
        Binding("l", "set_limit", "Limit", id="evaluation.limit", show=False,
                tooltip="Only the first K questions (all: every one)"),
        Binding("space", "mark", "Chart", id="evaluation.mark", show=False,
                tooltip="Add or remove the highlighted model in the hardness chart"),
        Binding("f", "failures", "Failures", id="evaluation.failures", show=False,
                tooltip="Show only the questions that did not match"),
    ]

    @dataclass
    class ModelsListed(Message):
        """The provider's models were listed."""

        models: list[str]
        """Model ids, as listed."""

    @dataclass
    class RunsLoaded(Message):
        """Recorded runs were read from history."""

        runs: list[EvalRun]
        """One per model (newest run of each)."""
        select: int | None
        """Run id to highlight."""

    @dataclass
    class ReportLoaded(Message):
        """A recorded run's full report was read."""

        run_id: int
        """Its history id."""
        report: EvalReport | None
        """The report (None when this machine kept none)."""

    @dataclass
    class Exported(Message):
        """A report was written."""

        paths: list[Path]
        """The CSV and the JSON file."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.report: EvalReport | None = None
        """The report the drill-down shows (a recorded run, or the run in progress)."""
        self._reports: dict[int, EvalReport | None] = {}
        self._new_model: str | None = None
        self._binding_state: tuple[object, ...] = ()

    def compose(self) -> ComposeResult:
        yield RunBar(self.session, id="eval-run-bar")
        with ContentSwitcher(initial=VIEWS[0], id="eval-views"):
            with Container(id="eval-compare", classes="eval-split"):
                yield RunsTable(id="eval-runs")
                yield HardnessChart(id="eval-chart")
            with Container(id="eval-questions"):
                yield Label("", id="eval-questions-title")
                with Container(classes="eval-split"):
                    yield QuestionTable(id="eval-question-table")
                    with VerticalScroll(id="eval-detail-scroll", can_focus=True):
                        yield Static(question_detail(None), id="eval-detail")
            with Container(id="eval-skipped-view"):
                yield Label("", id="eval-skipped-note")
                yield SkippedTable(id="eval-skipped")

    def after_first_frame(self) -> None:
        self.run_bar.find_source()
        self.load_runs()

    @property
    def run_bar(self) -> RunBar:
        """Settings and progress of the run."""
        return self.query_one(RunBar)

    def focus_default(self) -> None:
        view = self.query_one(ContentSwitcher).current
        target = {"eval-questions": "#eval-question-table",
                  "eval-skipped-view": "#eval-skipped"}.get(view or "", "#eval-runs")
        self.query_one(target).focus()

    def provider_changed(self) -> None:
        self.list_models()

    def session_changed(self, fact: Message) -> None:
        if isinstance(fact, JobEnded):
            self._new_model = fact.fine_tuned_model
            self.list_models()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.is_mounted:
            return True
        bar, view = self.run_bar, self.query_one(ContentSwitcher).current
        if action == "cancel":
            return bar.running
        if action == "run":
            return None if bar.running or not bar.chosen else True
        if action == "mark":
            return view == "eval-compare"
        if action == "failures":
            return view == "eval-questions"
        if action == "export":
            return None if bar.running or not self._exportable() else True
        return True

    def _sync_bindings(self) -> None:
        """Refresh the footer only when what it shows changed (a refresh recomposes it)."""
        bar = self.run_bar
        state = (bar.running, bool(bar.chosen), self.query_one(ContentSwitcher).current,
                 self._exportable())
        if state != self._binding_state:
            self._binding_state = state
            self.refresh_bindings()

    def _exportable(self) -> bool:
        return self.report is not None and bool(self.report.rows)

    def on_run_bar_changed(self, message: RunBar.Changed) -> None:
        self._sync_bindings()

    # ── settings and the run ────────────────────────────────────────────────────────────

    def action_run(self) -> None:
        """Evaluate the chosen models on the split."""
        bar = self.run_bar
        if not bar.running and not bar.chosen:
            self.notify("Choose a model first (m)", title="Evaluation", severity="warning")
        bar.start()
        self._sync_bindings()

    def action_cancel(self) -> None:
        """Stop the run."""
        self.run_bar.cancel()

    def action_next_split(self) -> None:
        """Evaluate on the next split of the dataset."""
        self.run_bar.next_split()

    def action_pick_models(self) -> None:
        """Choose the models of the next run."""
        self.run_bar.ask_models([run.model for run in self.query_one(RunsTable).runs])

    def action_set_concurrency(self) -> None:
        """Ask for the number of questions in flight."""
        self.run_bar.ask_concurrency()

    def action_set_limit(self) -> None:
        """Ask for a question limit (empty: the whole split)."""
        self.run_bar.ask_limit()

    def on_eval_started(self, message: EvalStarted) -> None:
        self.report = EvalReport(rows=[], model=message.model, total=message.total)
        self._show_report(self.report, message.model)

    def on_eval_progressed(self, message: EvalProgressed) -> None:
        last = message.progress.last
        if self.report is None:
            return
        if isinstance(last, QuestionResult):
            self.report.rows.append(last)
            self.query_one(QuestionTable).append(last)
            if self.query_one(QuestionTable).row_count == 1:
                self._update_detail()
        else:
            self.report.skipped.append(last)
            self.query_one(SkippedTable).append(last)
            self._note_skipped()

    def on_eval_finished(self, message: EvalFinished) -> None:
        report = message.report
        model = report.model or ""
        if message.run is not None:
            self._reports[message.run.id] = report
            self.load_runs(message.run.id)
        self._show_report(report, model)

    def on_eval_ended(self, message: EvalEnded) -> None:
        self._sync_bindings()

    # ── models and recorded runs ────────────────────────────────────────────────────────

    @work(exclusive=True, group="eval-models", exit_on_error=False)
    async def list_models(self) -> None:
        """List the provider's models (fine-tuned ones included)."""
        client = await self.session.client()
        models = [model.id async for model in client.models.list()]
        self.post_message(self.ModelsListed(models))

    def on_evaluation_pane_models_listed(self, message: ModelsListed) -> None:
        bar = self.run_bar
        bar.set_models(message.models)
        if self._new_model in message.models and not bar.running:
            bar.set_state(f"new model {self._new_model} · m: choose it", "green")
            self._new_model = None
        self._sync_bindings()

    @work(thread=True, exclusive=True, group="eval-runs", exit_on_error=False)
    def load_runs(self, select: int | None = None) -> None:
        """Read every recorded run (history and kept reports)."""
        from tui.core.evaluation.runs import comparison, load_runs

        self.post_message(self.RunsLoaded(comparison(load_runs()), select))

    def on_evaluation_pane_runs_loaded(self, message: RunsLoaded) -> None:
        self.query_one(RunsTable).show(message.runs, select=message.select)
        self._chart_and_report()

    @on(DataTable.RowSelected, "#eval-runs")
    def _run_selected(self) -> None:
        self._show_view("eval-questions")

    @on(DataTable.RowHighlighted, "#eval-runs")
    def _chart_and_report(self) -> None:
        table = self.query_one(RunsTable)
        self.query_one(HardnessChart).plot_runs(table.charted())
        run = table.highlighted()
        if run is None or self.run_bar.running:
            return
        if run.id in self._reports:
            self._show_report(self._reports[run.id], run.model)
        else:
            self.load_report(run)

    @work(thread=True, exclusive=True, group="eval-report", exit_on_error=False)
    def load_report(self, run: EvalRun) -> None:
        """Read a recorded run's per-question report."""
        from tui.core.evaluation.runs import EvalRunError, load_report

        report = None
        if run.report_path is not None:
            try:
                report = load_report(run.report_path)
            except EvalRunError:
                report = None
        self.post_message(self.ReportLoaded(run.id, report))

    def on_evaluation_pane_report_loaded(self, message: ReportLoaded) -> None:
        self._reports[message.run_id] = message.report
        run = self.query_one(RunsTable).highlighted()
        if run is not None and run.id == message.run_id and not self.run_bar.running:
            self._show_report(message.report, run.model)

    def _show_report(self, report: EvalReport | None, model: str) -> None:
        self.report = report
        self.query_one(QuestionTable).show(report.rows if report else [])
        self.query_one(SkippedTable).show(report.skipped if report else [])
        self._update_detail()
        if report is None:
            title = f"{model}: no per-question report on this machine"
        else:
            skipped = f" · {len(report.skipped)} skipped" if report.skipped else ""
            title = (f"{model} · {report.split} · {report.n} scored · EX "
                     f"{share_text(report.execution_accuracy)}{skipped}"
                     + (" · cancelled" if report.cancelled else "") + " · f: failures only")
        self.query_one("#eval-questions-title", Label).update(title)
        self._note_skipped()
        self._sync_bindings()

    def _note_skipped(self) -> None:
        skipped = len(self.report.skipped) if self.report is not None else 0
        self.query_one("#eval-skipped-note", Label).update(
            f"{skipped} skipped: no database file, or the gold SQL fails (never scored)"
            if skipped else "No question was skipped.")

    # ── views ───────────────────────────────────────────────────────────────────────────

    def action_next_view(self) -> None:
        """Compare → questions → skipped."""
        current = self.query_one(ContentSwitcher).current or VIEWS[0]
        self._show_view(VIEWS[(VIEWS.index(current) + 1) % len(VIEWS)])

    def _show_view(self, view: str) -> None:
        self.query_one(ContentSwitcher).current = view
        self.focus_default()
        self._sync_bindings()

    def action_mark(self) -> None:
        """Add or remove the highlighted model in the hardness chart."""
        table = self.query_one(RunsTable)
        table.toggle_mark()
        self.query_one(HardnessChart).plot_runs(table.charted())

    def action_failures(self) -> None:
        """Only the questions that did not match, or all."""
        self.query_one(QuestionTable).toggle_failures()
        self._update_detail()

    @on(DataTable.RowHighlighted, "#eval-question-table")
    def _update_detail(self) -> None:
        row: QuestionResult | None = self.query_one(QuestionTable).highlighted()
        self.query_one("#eval-detail", Static).update(question_detail(row))

    # ── export ──────────────────────────────────────────────────────────────────────────

    def action_export(self) -> None:
        """Ask where to write the shown report, then write it as CSV and JSON."""
        if self.report is not None and self._exportable() and not self.run_bar.running:
            ask_export(self, self.report, self.export_report)

    @work(thread=True, group="eval-export", exit_on_error=False)
    def export_report(self, report: EvalReport, paths: list[Path]) -> None:
        """Write the CSV and the JSON (reads nothing from the provider)."""
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            report.write(path)
        self.post_message(self.Exported(paths))

    def show_failure(self, failure: WorkFailed) -> None:
        if failure.operation == "list_models":
            self.run_bar.set_state(f"models: {failure.error}", "red")
        elif failure.operation == "load_runs":
            self.run_bar.set_state(f"history: {failure.error}", "red")
        elif failure.operation == "export_report":
            self.notify(f"Cannot write: {failure.error}", title="Export", severity="error",
                        markup=False)
        else:
            super().show_failure(failure)

    def on_evaluation_pane_exported(self, message: Exported) -> None:
        names = " and ".join(path.name for path in message.paths)
        folder = message.paths[0].parent if message.paths else ""
        self.notify(f"Wrote {names} in {folder}", title="Export", timeout=10)
