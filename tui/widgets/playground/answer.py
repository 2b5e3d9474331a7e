"""One side of the playground: a model's SQL (editable), its figures, its rows and its verdict."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static, TextArea
from textual.worker import get_current_worker

from tui.core.elide import elide_middle
from tui.core.inference.ask import Answer
from tui.core.inference.playground import (
    MAX_ROWS,
    SQL_TIMEOUT_S,
    Database,
    ModelChoice,
    Outcome,
    pretty_sql,
    run_scored,
)
from tui.core.sql.sqlexec import ReadOnlyExecutor, jsonable
from tui.widgets.failures import ShowsWorkFailures

if TYPE_CHECKING:
    from tui.core.finetune.lineage import PromptChoice
    from tui.widgets.failures import WorkFailed

CELL_WIDTH = 40
"""Characters of a value shown in a cell (the rest is cut with an ellipsis)."""

AskCall = Callable[[ModelChoice, Database, str], Awaitable[tuple[Answer, "PromptChoice"]]]
"""Asks a model a question about a database: the answer and the template the prompt used."""


def cost_text(cost: float | None) -> str:
    """``$0``, ``$0.000123``, ``$1.2000``, or ``cost unknown`` for an unpriced model."""
    if cost is None:
        return "cost unknown"
    if cost == 0:
        return "$0"
    return f"${cost:.6f}" if cost < 0.01 else f"${cost:.4f}"


def figures_text(answer: Answer, prompt: PromptChoice) -> Text:
    """Latency, prompt and completion tokens, cost, and which prompt was used (a warning when
    the model's training template is not known)."""
    text = Text()
    text.append(f"{answer.latency_s:.2f} s", style="bold")
    text.append(f" · {answer.prompt_tokens:,} prompt + {answer.completion_tokens:,} completion"
                f" tokens · {cost_text(answer.cost_usd)}")
    text.append(f" · {prompt.label()}", style="bold yellow" if prompt.warning else "dim")
    return text


def outcome_text(outcome: Outcome) -> Text:
    """The verdict against gold when there is one, then rows and time, or the error."""
    text = Text()
    if outcome.match is True:
        text.append("✓ matches gold · ", style="bold green")
    elif outcome.match is False:
        text.append("✗ differs from gold · ", style="bold red")
    elif outcome.gold is not None and outcome.gold_error:
        text.append(f"no verdict: gold failed ({outcome.gold_error}) · ", style="yellow")
    if outcome.error is not None:
        text.append(f"SQL {outcome.error.type.replace('_', ' ')}: ", style="bold red")
        text.append(outcome.error.message, style="red")
    elif outcome.result is not None:
        result = outcome.result
        more = f" (first {result.row_count:,} shown)" if result.truncated else ""
        text.append(f"{result.row_count:,} row{'s' if result.row_count != 1 else ''}{more}"
                    f" in {result.elapsed_ms:.1f} ms")
    return text


def cell(value: Any) -> Text | str:
    """One value as a table cell: NULL dimmed, blobs as x'..', long text cut."""
    if value is None:
        return Text("NULL", style="dim italic")
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.15g}"  # as the sqlite3 shell prints it: 39.69, not 39.690000000000005
    shown = str(jsonable(value)).replace("\n", " ")
    return shown if len(shown) <= CELL_WIDTH else shown[: CELL_WIDTH - 1] + "…"


class AnswerView(Vertical, ShowsWorkFailures):
    """A model's answer: title = model, editable SQL, a status line, the rows."""

    SCOPED_CSS = False
    DEFAULT_CSS = """
    AnswerView { width: 1fr; height: 1fr; }
    AnswerView > .answer-head { height: auto; }
    AnswerView TextArea { height: 7; border: round $primary-darken-2; padding: 0; }
    AnswerView TextArea:focus { border: round $accent; }
    Screen.-wide AnswerView TextArea { height: 12; }
    AnswerView .answer-status { height: auto; max-height: 4; padding: 0 1; }
    AnswerView > DataTable { height: 1fr; min-height: 3; }
    AnswerView.-busy .answer-status { color: $text-muted; text-style: italic; }
    /* Wide and alone: the SQL on the left, its rows on the right. */
    Screen.-wide SideBySide.-single AnswerView { layout: horizontal; }
    Screen.-wide SideBySide.-single .answer-head { width: 1fr; height: 1fr; }
    Screen.-wide SideBySide.-single TextArea { height: 1fr; }
    Screen.-wide SideBySide.-single AnswerView > DataTable { width: 1fr; margin-left: 1; }
    """

    busy = reactive(False, toggle_class="-busy")
    """A model call or a query is running."""

    @dataclass
    class Answered(Message):
        """The model answered; its SQL is in the editor and runs next."""

        view: AnswerView
        """The side that asked."""
        answer: Answer
        """The reply, its latency, tokens and cost."""
        pretty_sql: str
        """Its SQL laid out for the editor."""
        question: str
        """What was asked."""
        gold: str | None
        """Gold SQL when the question came from the dataset."""
        prompt: PromptChoice
        """The template that built the prompt (a warning when it is not the model's own)."""

    @dataclass
    class Ran(Message):
        """A statement ran through the read-only executor (or failed there)."""

        view: AnswerView
        """The side that ran it."""
        outcome: Outcome
        """Rows or error, and the verdict against gold."""

    def __init__(self, side: str, **kwargs: Any) -> None:
        super().__init__(id=f"pg-side-{side}", **kwargs)
        self.side = side
        """``a`` (left) or ``b`` (the comparison)."""
        self.choice: ModelChoice | None = None
        """The model this side asks."""
        self.database: Database | None = None
        """The database its SQL runs on."""
        self.answer: Answer | None = None
        """The last answer."""
        self.outcome: Outcome | None = None
        """The last run."""
        self.sql_timeout = SQL_TIMEOUT_S
        """Deadline of one query, seconds."""
        self._executor: ReadOnlyExecutor | None = None
        self._figures = Text()
        self._result = Text()
        self._title = "no model"

    def compose(self) -> ComposeResult:
        editor = TextArea("", language="sql", soft_wrap=True, tab_behavior="focus",
                          id=f"pg-sql-{self.side}")
        editor.border_title = "no model"
        with Vertical(classes="answer-head"):
            yield editor
            yield Static("", classes="answer-status", id=f"pg-status-{self.side}")
        table: DataTable[Any] = DataTable(id=f"pg-rows-{self.side}", zebra_stripes=True)
        yield table

    @property
    def editor(self) -> TextArea:
        """The SQL editor."""
        return self.query_one(TextArea)

    @property
    def table(self) -> DataTable[Any]:
        """The result rows."""
        return self.query_one(DataTable)

    @property
    def status_text(self) -> str:
        """The status line as plain text (figures, rows, verdict or error)."""
        return self._status().plain

    def _status(self) -> Text:
        parts = [part for part in (self._figures, self._result) if part.plain]
        return Text("\n").join(parts)

    def _show(self, figures: Text | None = None, result: Text | None = None) -> None:
        if figures is not None:
            self._figures = figures
        if result is not None:
            self._result = result
        self.query_one(".answer-status", Static).update(self._status())

    def note(self, text: Text) -> None:
        """Show a message in the status line (a problem before anything was asked)."""
        self._show(text, Text())

    def set_choice(self, choice: ModelChoice | None) -> None:
        """Ask this model from now on."""
        self.choice = choice
        self.set_title(choice.label if choice else "no model")

    def set_title(self, title: str) -> None:
        """The editor's title (the model), cut in the middle to the editor's width: two tuned
        models of one base still differ by their suffix and job id."""
        self._title = title
        self._fit_title()

    def _fit_title(self) -> None:
        room = self.editor.size.width - 6  # the corners and the "─ " around the title
        self.editor.border_title = (self._title if room <= 0
                                    else elide_middle(self._title, room))

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_title)

    def set_database(self, database: Database | None) -> None:
        """Run on this database from now on (the old connection closes off the event loop)."""
        if database == self.database:
            return
        self.database = database
        old, self._executor = self._executor, None
        if old is not None:
            old.cancel()
            self.run_worker(old.close, thread=True, group="close", exit_on_error=False)

    def _executor_for(self, database: Database) -> ReadOnlyExecutor:
        if self._executor is None or self._executor.db != database.path:
            self._executor = ReadOnlyExecutor(database.path, timeout=self.sql_timeout,
                                              max_rows=MAX_ROWS)
        self._executor.timeout = self.sql_timeout
        return self._executor

    # ── asking ──────────────────────────────────────────────────────────────────────────

    def ask(self, ask_call: AskCall, question: str, gold: str | None) -> None:
        """Ask this side's model, then run its SQL (both in workers)."""
        if self.choice is None or self.database is None:
            return
        self.busy = True
        self.answer = None
        self.set_title(self.choice.label)
        self._show(Text(f"asking {self.choice.label}…"), Text())
        self._ask(ask_call, self.choice, self.database, question, gold)

    @work(exclusive=True, group="ask", exit_on_error=False)
    async def _ask(self, ask_call: AskCall, choice: ModelChoice, database: Database,
                   question: str, gold: str | None) -> None:
        answer, prompt = await ask_call(choice, database, question)
        pretty = await asyncio.to_thread(pretty_sql, answer.sql)
        self.post_message(self.Answered(self, answer, pretty, question, gold, prompt))

    def on_answer_view_answered(self, message: Answered) -> None:
        if message.view is not self:
            return
        self.answer = message.answer
        self.editor.load_text(message.pretty_sql)
        self._show(figures_text(message.answer, message.prompt))
        if message.answer.sql.strip():
            self.run(message.gold)
        else:
            self.busy = False
            self._show(result=Text("the reply held no SQL: " + message.answer.raw_text[:200],
                                   style="red"))

    def show_failure(self, failure: WorkFailed) -> None:
        """The model call (or a query) failed: this side's status line says why."""
        self.busy = False
        if failure.operation == "_ask":
            self._show(Text("model call failed", style="bold red"),
                       Text(failure.error, style="red"))
        else:
            self._show(result=Text(failure.error, style="red"))

    # ── running ─────────────────────────────────────────────────────────────────────────

    def run(self, gold: str | None) -> None:
        """Run the editor's SQL on the database (scored against gold when given)."""
        if self.database is None:
            self._show(result=Text("pick a database first", style="red"))
            return
        sql = self.editor.text
        if not sql.strip():
            self._show(result=Text("nothing to run: the SQL is empty", style="red"))
            return
        executor = self._executor_for(self.database)
        executor.cancel()
        self.busy = True
        self._show(result=Text("running…"))
        self._run(executor, sql, gold)

    @work(thread=True, exclusive=True, group="sql", exit_on_error=False)
    def _run(self, executor: ReadOnlyExecutor, sql: str, gold: str | None) -> None:
        outcome = run_scored(executor, sql, gold)
        if not get_current_worker().is_cancelled:  # a newer run replaced this one
            self.post_message(self.Ran(self, outcome))

    def on_answer_view_ran(self, message: Ran) -> None:
        if message.view is not self:
            return
        self.busy = False
        self.outcome = outcome = message.outcome
        self._show(result=outcome_text(outcome))
        table = self.table
        table.clear(columns=True)
        if outcome.result is not None:
            for name in outcome.result.columns:
                table.add_column(name)
            table.add_rows([cell(value) for value in row] for row in outcome.result.rows)

    def cancel(self) -> None:
        """Stop the model call and the query running now."""
        if not self.busy:
            return
        for group in ("ask", "sql"):
            self.workers.cancel_group(self, group)
        if self._executor is not None:
            self._executor.cancel()
        self.busy = False
        self._show(result=Text("cancelled", style="yellow"))

    def clear(self) -> None:
        """Forget the last answer and result."""
        self.answer = self.outcome = None
        self.editor.load_text("")
        self.table.clear(columns=True)
        self._show(Text(), Text())

    def close(self) -> None:
        """Stop and close the database connection (blocks until a running query stops)."""
        if self._executor is not None:
            self._executor.cancel()
            self._executor.close()


class SideBySide(Horizontal):
    """The left side, always shown, and the comparison side, shown on demand."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(classes="-single", **kwargs)

    def compose(self) -> ComposeResult:
        yield AnswerView("a")
        yield AnswerView("b", classes="-hidden")

    def set_comparing(self, comparing: bool) -> None:
        """Show or hide the comparison side."""
        self.b.set_class(not comparing, "-hidden")
        self.set_class(not comparing, "-single")

    def forget_provider_models(self) -> None:
        """The provider changed: its models mean nothing on the new one (endpoints stay)."""
        for view in (self.a, self.b):
            if view.choice is not None and view.choice.base_url is None:
                view.set_choice(None)
        if self.b.choice is None:
            self.set_comparing(False)

    @property
    def a(self) -> AnswerView:
        """The left side."""
        return self.query_one("#pg-side-a", AnswerView)

    @property
    def b(self) -> AnswerView:
        """The comparison side."""
        return self.query_one("#pg-side-b", AnswerView)

    @property
    def comparing(self) -> bool:
        """True while the comparison side is shown."""
        return not self.b.has_class("-hidden")

    def shown(self) -> list[AnswerView]:
        """The sides on screen."""
        return [self.a, self.b] if self.comparing else [self.a]

    def holding(self, widget: Any) -> AnswerView | None:
        """The shown side that contains ``widget`` (the focused one, say)."""
        for view in self.shown():
            if widget is not None and (widget is view or view in widget.ancestors):
                return view
        return None
