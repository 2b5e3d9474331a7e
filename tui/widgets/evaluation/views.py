"""The evaluation pane's views: runs compared, EX by hardness, per-question drill-down."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual_plotext import PlotextPlot

from tui.core.hardness import LEVELS
from tui.core.report import EvalReport, QuestionResult, SkippedQuestion

if TYPE_CHECKING:
    from tui.core.eval_runs import EvalRun


def share_text(value: float | None) -> str:
    """``62.0%`` or ``-``."""
    return "-" if value is None else f"{100 * value:.1f}%"


def seconds_text(value: float | None) -> str:
    """``0.049`` seconds or ``-``."""
    return "-" if value is None else f"{value:.3f}"


def dollars_text(value: float | None) -> str:
    """``$0.000123``, ``$0`` when free, ``-`` when unpriced."""
    if value is None:
        return "-"
    return "$0" if value == 0 else f"${value:.6f}"


def count_text(value: int | None) -> str:
    """``950``, ``12.3k``, ``4.1M`` or ``-``."""
    if value is None:
        return "-"
    for size, unit in ((1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return str(value)


RUN_COLUMNS = (("model", "model", 24), ("split", "split", 6), ("n", "n", 5), ("ex", "EX", 6),
               ("valid", "valid", 6), ("cost", "$/q", 10), ("speed", "s/q", 6),
               ("p50", "p50 s", 6), ("p95", "p95 s", 6), ("tokens", "tokens in/out", 13))
"""(key, label, width) of the comparison table."""


def short_model(model: str, width: int) -> str:
    """``model`` in ``width`` cells: a long name keeps its start and its end (a fine-tuned
    model's suffix and id tell it apart from its siblings), cut in the middle."""
    if len(model) <= width:
        return model
    head = max(1, (width - 1) // 3)
    return model[:head] + "…" + model[len(model) - (width - 1 - head):]


def run_cells(run: EvalRun, marked: bool) -> tuple[str | Text, ...]:
    """One comparison row."""
    name = Text(("● " if marked else "  ") + short_model(run.model, RUN_COLUMNS[0][2] - 2))
    tokens = ("-" if not (run.prompt_tokens or run.completion_tokens)
              else f"{count_text(run.prompt_tokens)}/{count_text(run.completion_tokens)}")
    return (name, run.split, "-" if run.n is None else str(run.n),
            share_text(run.execution_accuracy), share_text(run.valid_sql_rate),
            dollars_text(run.cost_per_question_usd), seconds_text(run.seconds_per_question),
            seconds_text(run.latency_p50_s), seconds_text(run.latency_p95_s), tokens)


class RunsTable(DataTable[Any]):
    """Every model evaluated (newest run of each), one row per model; space marks for the chart."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.runs: list[EvalRun] = []
        """The rows, in table order."""
        self.marked: set[int] = set()
        """Run ids marked for the hardness chart."""

    def on_mount(self) -> None:
        for key, label, width in RUN_COLUMNS:
            self.add_column(label, key=key, width=width)

    def show(self, runs: Sequence[EvalRun], *, select: int | None = None) -> None:
        """Replace the rows, keeping (or moving to ``select``) the highlighted run."""
        keep = select if select is not None else self.highlighted_id()
        self.runs = list(runs)
        self.marked &= {run.id for run in runs}
        self.clear()
        for run in self.runs:
            self.add_row(*run_cells(run, run.id in self.marked), key=str(run.id))
        if keep is not None and str(keep) in self.rows:
            self.move_cursor(row=self.get_row_index(str(keep)), animate=False)

    def highlighted_id(self) -> int | None:
        """The run under the cursor."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
        return None if key is None else int(key)

    def highlighted(self) -> EvalRun | None:
        """The run under the cursor."""
        wanted = self.highlighted_id()
        return next((run for run in self.runs if run.id == wanted), None)

    def toggle_mark(self) -> None:
        """Mark or unmark the highlighted run for the chart."""
        run = self.highlighted()
        if run is None:
            return
        self.marked ^= {run.id}
        self.update_cell(str(run.id), "model", run_cells(run, run.id in self.marked)[0])

    def charted(self) -> list[EvalRun]:
        """The marked runs, or the highlighted one when none is marked."""
        marked = [run for run in self.runs if run.id in self.marked]
        if marked:
            return marked
        run = self.highlighted()
        return [] if run is None else [run]


class HardnessChart(PlotextPlot):
    """EX by Spider hardness level, one bar group per charted model."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.series: dict[str, list[float]] = {}
        """Model label -> EX in percent per level (easy, medium, hard, extra)."""

    def plot_runs(self, runs: Iterable[EvalRun]) -> None:
        """Draw the given runs' EX by hardness."""
        self.series = {}
        for run in runs:
            label = run.model if run.split == "dev" else f"{run.model} ({run.split})"
            self.series[label] = [100 * float(run.by_hardness.get(level, {})
                                              .get("execution_accuracy") or 0.0)
                                  for level in LEVELS]
        self._redraw()

    def _redraw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("EX % by hardness")
        if self.series:
            labels = list(self.series)
            if len(labels) == 1:
                plt.bar(list(LEVELS), self.series[labels[0]], label=labels[0])
            else:
                plt.multiple_bar(list(LEVELS), [self.series[k] for k in labels],
                                 labels=labels)  # type: ignore[call-arg]
            # Head-room above 100 keeps the legend (top left) off the tallest bars.
            plt.ylim(0, 125)
            plt.yticks([0, 25, 50, 75, 100])
        self.refresh()


class QuestionTable(DataTable[Any]):
    """One report's questions: index, hardness, match, database, question."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.results: list[QuestionResult] = []
        """Rows shown, in table order."""
        self.failures_only = False
        """Show only questions that did not match."""
        self._all: list[QuestionResult] = []

    def on_mount(self) -> None:
        self.add_column("#", key="index", width=4)
        self.add_column("level", key="level", width=6)
        self.add_column("EX", key="match", width=2)
        self.add_column("database", key="db", width=12)
        self.add_column("question", key="question")

    def show(self, rows: Sequence[QuestionResult]) -> None:
        """Replace the rows with a report's questions."""
        self._all = list(rows)
        self._fill()

    def append(self, row: QuestionResult) -> None:
        """Add one question scored just now (a run in progress)."""
        self._all.append(row)
        if not (self.failures_only and row.match):
            self._add(row)

    def toggle_failures(self) -> None:
        """Show only the questions that did not match, or all of them."""
        self.failures_only = not self.failures_only
        self._fill()

    def _fill(self) -> None:
        self.clear()
        self.results = []
        for row in sorted(self._all, key=lambda r: r.index):
            if not (self.failures_only and row.match):
                self._add(row)

    def _add(self, row: QuestionResult) -> None:
        self.results.append(row)
        mark = Text("✓", style="green") if row.match else Text("✗", style="red")
        self.add_row(str(row.index + 1), row.hardness, mark, row.db_id, row.question,
                     key=f"q{row.index}")

    def highlighted(self) -> QuestionResult | None:
        """The question under the cursor."""
        if not self.row_count or self.cursor_row >= len(self.results):
            return None
        return self.results[self.cursor_row]


def question_detail(row: QuestionResult | None) -> str:
    """Markup for the drill-down: question, gold, predicted, match, error."""
    if row is None:
        return "[dim]No question selected.[/]"
    verdict = "[green]match[/]" if row.match else "[red]no match[/]"
    lines = [f"[b]#{row.index + 1}[/] {escape(row.question)}",
             f"[dim]database[/] {escape(row.db_id)} · [dim]level[/] {row.hardness} · {verdict}",
             f"[dim]gold[/]      {escape(row.gold)}",
             f"[dim]predicted[/] {escape(row.predicted) or '[i](no SQL)[/]'}"]
    if row.error:
        lines.append(f"[red]error[/]     {escape(row.error)}")
    if row.latency_s is not None:
        lines.append(f"[dim]{row.latency_s:.3f} s · {row.prompt_tokens} in · "
                     f"{row.completion_tokens} out[/]")
    return "\n".join(lines)


class SkippedTable(DataTable[Any]):
    """Questions reported but never scored (missing database, failing gold SQL)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self.skipped: list[SkippedQuestion] = []
        """Rows shown."""

    def on_mount(self) -> None:
        self.add_column("#", key="index", width=4)
        self.add_column("database", key="db", width=14)
        self.add_column("reason", key="reason", width=16)
        self.add_column("question", key="question")

    def show(self, skipped: Sequence[SkippedQuestion]) -> None:
        """Replace the rows."""
        self.skipped = []
        self.clear()
        for item in skipped:
            self.append(item)

    def append(self, item: SkippedQuestion) -> None:
        """Add one skipped question."""
        self.skipped.append(item)
        self.add_row(str(item.index + 1), item.db_id, item.reason, item.question,
                     key=f"s{item.index}")


def report_rows(report: EvalReport | None) -> tuple[list[QuestionResult], list[SkippedQuestion]]:
    """A report's scored and skipped questions (empty for None)."""
    return ([], []) if report is None else (list(report.rows), list(report.skipped))
