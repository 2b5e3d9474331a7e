"""The evaluation pane's views: runs compared, EX by hardness, per-question drill-down."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual.app import RenderResult
from textual.coordinate import Coordinate
from textual.events import Resize
from textual.widgets import DataTable
from textual_plotext import PlotextPlot

from tui.core.elide import elide_end
from tui.core.evaluation.hardness import LEVELS
from tui.core.evaluation.report import QuestionResult, SkippedQuestion

if TYPE_CHECKING:
    from tui.core.evaluation.runs import EvalRun


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
"""(key, label, width) of the comparison table (the model's width is its narrowest)."""
RUN_PRIORITY = ("model", "ex", "n", "valid", "cost", "speed", "split", "p95", "p50", "tokens")
"""Which columns a narrow table keeps first (the rest are left out whole, never cut)."""
MODEL_MIN = 20
"""The model column's narrowest width; it takes whatever width the kept columns leave."""


def fitted_width(table_width: int, fixed: Sequence[int]) -> int:
    """The width left for one flexible column beside ``fixed`` ones (each cell pads by 1+1, and
    a vertical scrollbar may take 2)."""
    return table_width - sum(fixed) - 2 * (len(fixed) + 1) - 2


def run_columns(table_width: int) -> list[tuple[str, str, int]]:
    """The comparison columns that fit ``table_width`` whole, in table order, the model's
    widened to take the rest."""
    widths = {key: width for key, _, width in RUN_COLUMNS}
    kept = ["model"]
    for key in RUN_PRIORITY[1:]:
        trial = [widths[k] for k in (*kept, key) if k != "model"]
        if fitted_width(table_width, trial) >= MODEL_MIN:
            kept.append(key)
    model = max(MODEL_MIN, fitted_width(table_width, [widths[k] for k in kept if k != "model"]))
    return [(key, label, model if key == "model" else width)
            for key, label, width in RUN_COLUMNS if key in kept]


def short_model(model: str, width: int) -> str:
    """``model`` in ``width`` cells: a long name keeps its start and its end (a fine-tuned
    model's suffix and id tell it apart from its siblings), cut in the middle."""
    if len(model) <= width:
        return model
    head = max(1, (width - 1) // 3)
    return model[:head] + "…" + model[len(model) - (width - 1 - head):]


def run_cells(run: EvalRun, marked: bool,
              model_width: int = RUN_COLUMNS[0][2]) -> dict[str, str | Text]:
    """One comparison row, by column key."""
    name = Text(("● " if marked else "  ") + short_model(run.model, model_width - 2))
    tokens = ("-" if not (run.prompt_tokens or run.completion_tokens)
              else f"{count_text(run.prompt_tokens)}/{count_text(run.completion_tokens)}")
    return {"model": name, "split": run.split, "n": "-" if run.n is None else str(run.n),
            "ex": share_text(run.execution_accuracy), "valid": share_text(run.valid_sql_rate),
            "cost": dollars_text(run.cost_per_question_usd),
            "speed": seconds_text(run.seconds_per_question),
            "p50": seconds_text(run.latency_p50_s), "p95": seconds_text(run.latency_p95_s),
            "tokens": tokens}


class RunsTable(DataTable[Any]):
    """Every model evaluated (newest run of each), one row per model; space marks for the chart."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.runs: list[EvalRun] = []
        """The rows, in table order."""
        self.marked: set[int] = set()
        """Run ids marked for the hardness chart."""
        self.shown_columns: list[tuple[str, str, int]] = []
        """(key, label, width) of the columns that fit the table's width."""

    def on_mount(self) -> None:
        self._fit_columns(self.size.width or 80)

    def on_resize(self, event: Resize) -> None:
        self._fit_columns(event.size.width)

    def _fit_columns(self, width: int) -> None:
        """Keep the columns that fit whole, the model's as wide as the rest allows."""
        columns = run_columns(width)
        if columns == self.shown_columns:
            return
        self.shown_columns = columns
        keep = self.highlighted_id()
        self.clear(columns=True)
        for key, label, column_width in columns:
            self.add_column(label, key=key, width=column_width)
        self.show(self.runs, select=keep)

    def _cells(self, run: EvalRun) -> list[str | Text]:
        cells = run_cells(run, run.id in self.marked, self._model_width())
        return [cells[key] for key, _, _ in self.shown_columns]

    def _model_width(self) -> int:
        return self.shown_columns[0][2] if self.shown_columns else RUN_COLUMNS[0][2]

    def show(self, runs: Sequence[EvalRun], *, select: int | None = None) -> None:
        """Replace the rows, keeping (or moving to ``select``) the highlighted run."""
        keep = select if select is not None else self.highlighted_id()
        self.runs = list(runs)
        self.marked &= {run.id for run in runs}
        self.clear()
        for run in self.runs:
            self.add_row(*self._cells(run), key=str(run.id))
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
        self.update_cell(str(run.id), "model",
                         run_cells(run, run.id in self.marked, self._model_width())["model"])

    def charted(self) -> list[EvalRun]:
        """The marked runs, or the highlighted one when none is marked."""
        marked = [run for run in self.runs if run.id in self.marked]
        if marked:
            return marked
        run = self.highlighted()
        return [] if run is None else [run]


CHART_FRAME_ROWS = 4
"""Rows of a plotext bar chart that hold no bars: the title, the frame's top and bottom, the
x labels."""


def chart_scale(height: int, legend_rows: int) -> tuple[float, list[float]] | None:
    """The y limit and ticks that put 0, every tick and 100 exactly on rows of a chart
    ``height`` rows high, with rows above 100 for the legend; None when bars could not be drawn
    within a quarter tick of their values (at least 2 rows a tick: a bar's top is its value
    rounded to a row, so off by half a row at most)."""
    rows = height - CHART_FRAME_ROWS
    room = rows - 1 - legend_rows  # rows from 0 up to 100 (the row of 0 not counted)
    ticks: list[float]  # whole numbers, labelled without decimals
    if room >= 8:
        span, ticks = room - room % 4, [0, 25, 50, 75, 100]
    elif room >= 4:
        span, ticks = room - room % 2, [0, 50, 100]
    else:
        return None
    return 100 * (rows - 1) / span, ticks


def chart_rows_needed(legend_rows: int) -> int:
    """The least height at which :func:`chart_scale` draws bars."""
    return CHART_FRAME_ROWS + 1 + legend_rows + 4


class HardnessChart(PlotextPlot):
    """EX by Spider hardness level, one bar group per charted model.

    Bars are drawn only where the plot has the rows to draw them true to the ticks
    (:func:`chart_scale`); a shorter chart gives the figures as text instead."""

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
        self.refresh()

    def as_text(self) -> str:
        """The figures, for a chart too short to draw them."""
        lines = [f"EX % by hardness (a chart needs {chart_rows_needed(len(self.series))} rows)"]
        for label, values in self.series.items():
            figures = "  ".join(f"{level} {value:.1f}"
                                for level, value in zip(LEVELS, values, strict=True))
            lines += [label, f"  {figures}"]
        return "\n".join(lines)

    def render(self) -> RenderResult:
        if self.series:
            # The legend (top left, one row a model) sits above the 100 row, off the bars.
            scale = chart_scale(self.size.height, len(self.series))
            if scale is None:
                return Text(self.as_text())
            top, ticks = scale
            self.plt.ylim(0, top)
            self.plt.yticks(ticks)
        return super().render()


class QuestionTable(DataTable[Any]):
    """One report's questions: index, hardness, match, database, question."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.results: list[QuestionResult] = []
        """Rows shown, in table order."""
        self.failures_only = False
        """Show only questions that did not match."""
        self._all: list[QuestionResult] = []
        self.question_width = 0
        """Width of the question column: what the others leave (the text is cut to it)."""

    def on_mount(self) -> None:
        self._fit_columns(self.size.width or 80)

    def on_resize(self, event: Resize) -> None:
        self._fit_columns(event.size.width)

    def _fit_columns(self, width: int) -> None:
        fixed = (("index", "#", 4), ("level", "level", 6), ("match", "EX", 2),
                 ("db", "database", 12))
        question = max(12, fitted_width(width, [w for _, _, w in fixed]))
        if question == self.question_width:
            return
        self.question_width = question
        keep = self.cursor_row
        self.clear(columns=True)
        for key, label, column_width in fixed:
            self.add_column(label, key=key, width=column_width)
        self.add_column("question", key="question", width=question)
        self._fill()
        if self.row_count:
            self.move_cursor(row=min(keep, self.row_count - 1), animate=False)

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
        self.add_row(str(row.index + 1), row.hardness, mark, elide_end(row.db_id, 12),
                     elide_end(row.question, self.question_width), key=f"q{row.index}")

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
        self.question_width = 0
        """Width of the question column: what the others leave (the text is cut to it)."""

    def on_mount(self) -> None:
        self._fit_columns(self.size.width or 80)

    def on_resize(self, event: Resize) -> None:
        self._fit_columns(event.size.width)

    def _fit_columns(self, width: int) -> None:
        fixed = (("index", "#", 4), ("db", "database", 14), ("reason", "reason", 16))
        question = max(12, fitted_width(width, [w for _, _, w in fixed]))
        if question == self.question_width:
            return
        self.question_width = question
        self.clear(columns=True)
        for key, label, column_width in fixed:
            self.add_column(label, key=key, width=column_width)
        self.add_column("question", key="question", width=question)
        self.show(list(self.skipped))

    def show(self, skipped: Sequence[SkippedQuestion]) -> None:
        """Replace the rows."""
        self.skipped = []
        self.clear()
        for item in skipped:
            self.append(item)

    def append(self, item: SkippedQuestion) -> None:
        """Add one skipped question."""
        self.skipped.append(item)
        self.add_row(str(item.index + 1), elide_end(item.db_id, 14), item.reason,
                     elide_end(item.question, self.question_width), key=f"s{item.index}")
