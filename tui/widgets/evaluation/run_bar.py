"""The top of the evaluation pane: what the next run evaluates, and the run's progress."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Label, ProgressBar

from tui.core.evaluation.report import QuestionResult
from tui.widgets.evaluation.runner import (
    DEFAULT_CONCURRENCY,
    MAX_CONCURRENCY,
    EvalEnded,
    EvalFailed,
    EvalFinished,
    EvalProgressed,
    EvalStarted,
    RunPlan,
    run_plan,
)
from tui.widgets.evaluation.views import share_text
from tui.widgets.failures import ShowsWorkFailures

if TYPE_CHECKING:
    from tui.core.evaluation.runs import EvalSource
    from tui.core.session import Session
    from tui.widgets.failures import WorkFailed


def default_models(models: Sequence[str]) -> list[str]:
    """The newest fine-tuned model, else the first chat-looking model, else the first."""
    for wanted in ("ft:", "sqltune-local", "gpt-"):
        found = [m for m in models if m.startswith(wanted)]
        if found:
            return [found[-1] if wanted == "ft:" else found[0]]
    return list(models[:1])


class RunBar(Vertical, ShowsWorkFailures):
    """Settings line (models, split, concurrency, limit) and progress (done/total, running EX).

    The run's messages bubble on to the pane, which fills its drill-down from them.
    """

    FAILURE_TITLE = "Evaluation"
    DEFAULT_CSS = """
    RunBar { height: 2; }
    RunBar #eval-settings { height: 1; padding: 0 1; color: $text-muted; }
    RunBar #eval-progress-row { height: 1; padding: 0 1; }
    RunBar #eval-progress { width: auto; margin-right: 1; display: none; }
    RunBar #eval-progress Bar { width: 16; }
    RunBar #eval-state { width: 1fr; }
    """

    class Changed(Message):
        """The settings or the running state changed (the footer may need a refresh)."""

    running = reactive(False)
    """True while a run is in flight."""

    def __init__(self, session: Session, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        """Shared state: data path and provider connection."""
        self.source: EvalSource | None = None
        """Where questions come from (found on mount)."""
        self.split = "dev"
        """The split to evaluate."""
        self.concurrency = DEFAULT_CONCURRENCY
        """Questions in flight at once."""
        self.limit: int | None = None
        """Only the first K questions (None: all)."""
        self.models: list[str] = []
        """Models the provider lists."""
        self.chosen: list[str] = []
        """Models the next run evaluates."""
        self.done = 0
        """Questions finished in the current (or last) run."""
        self.total = 0
        """Questions in the current (or last) run."""
        self.matched = 0
        """Scored questions that matched so far."""
        self.skipped = 0
        """Questions skipped so far (missing database, failing gold SQL)."""
        self.model = ""
        """The model being evaluated (or last evaluated)."""
        self._cancel: asyncio.Event | None = None
        self._position = ""
        self._prompt_note = ""

    def compose(self) -> ComposeResult:
        yield Label("", id="eval-settings")
        with Horizontal(id="eval-progress-row"):
            yield ProgressBar(id="eval-progress", show_eta=False)
            yield Label("connecting…", id="eval-state")

    def on_mount(self) -> None:
        self.show_settings()

    def set_state(self, text: str, style: str = "") -> None:
        """One line of status beside the progress bar."""
        self.query_one("#eval-state", Label).update(Text(text, style=style))

    def show_settings(self) -> None:
        """Redraw the settings line."""
        models = ", ".join(self.chosen) or "(m: choose)"
        where = self.source.error or self.source.label if self.source else "…"
        limit = "all" if self.limit is None else str(self.limit)
        self.query_one("#eval-settings", Label).update(Text.assemble(
            ("models " if len(self.chosen) > 1 else "model ", "dim"), (models, "bold"),
            f" · split {self.split} ({where}) · conc {self.concurrency} · limit {limit}",
            ("  m s c l", "dim")))
        self.post_message(self.Changed())

    # ── settings ────────────────────────────────────────────────────────────────────────

    @work(thread=True, exclusive=True, group="eval-source", exit_on_error=False)
    def find_source(self) -> None:
        """Find the Spider folder and its splits (reads the disk)."""
        from tui.core.evaluation.runs import eval_source

        source = eval_source(self.session.data)
        self.app.call_from_thread(self._source_found, source)

    def _source_found(self, source: EvalSource) -> None:
        self.source, self.split = source, source.default_split
        if source.error:
            self.set_state(source.error, "red")
        if source.note:
            self.notify(source.note, title="Evaluation", severity="warning")
        self.show_settings()

    def next_split(self) -> None:
        """Evaluate on the next split of the dataset."""
        if self.source is not None and self.source.splits:
            splits = self.source.splits
            index = splits.index(self.split) if self.split in splits else -1
            self.split = splits[(index + 1) % len(splits)]
            self.show_settings()

    def set_models(self, models: Sequence[str]) -> None:
        """The provider's models were listed: the first run defaults to one of them."""
        self.models = list(models)
        if not self.chosen:
            self.chosen = default_models(self.models)
        if not self.running:
            self.set_state(f"{len(self.models)} models listed · r: run")
        self.show_settings()

    def choose(self, models: Sequence[str]) -> None:
        """Evaluate these models next (the state line's older hints go: they are answered)."""
        self.chosen = list(dict.fromkeys(models))
        if not self.running:
            count = len(self.chosen)
            self.set_state(f"{count} model{'s' if count != 1 else ''} chosen · r: run")
        self.show_settings()

    def set_concurrency(self, text: str) -> str | None:
        """Questions in flight; returns why the text is refused."""
        if not text.isdigit() or not 1 <= int(text) <= MAX_CONCURRENCY:
            return f"Concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, not {text!r}"
        self.concurrency = int(text)
        self.show_settings()
        return None

    def set_limit(self, text: str) -> str | None:
        """First K questions (``all``: every one); returns why the text is refused."""
        if text.lower() == "all":
            self.limit = None
        elif text.isdigit() and int(text) > 0:
            self.limit = int(text)
        else:
            return f"The limit must be a whole number above 0 or 'all', not {text!r}"
        self.show_settings()
        return None

    def ask_models(self, evaluated: Sequence[str]) -> None:
        """Pick models: the provider's list, models evaluated before, or typed names."""
        from tui.screens.eval_models import ModelPicker

        def chosen(models: list[str] | None) -> None:
            if models:
                self.choose(models)

        self.app.push_screen(ModelPicker([*self.models, *evaluated], self.chosen), chosen)

    def ask_concurrency(self) -> None:
        """Ask for the number of questions in flight."""
        from tui.screens.prompt import PromptScreen

        def answered(text: str | None) -> None:
            error = None if text is None else self.set_concurrency(text)
            if error:
                self.notify(error, title="Evaluation", severity="error")

        self.app.push_screen(PromptScreen("Concurrency", value=str(self.concurrency),
                                          hint="Questions in flight at once."), answered)

    def ask_limit(self) -> None:
        """Ask for a question limit (empty: the whole split)."""
        from tui.screens.prompt import PromptScreen

        def answered(text: str | None) -> None:
            error = None if text is None else self.set_limit(text)
            if error:
                self.notify(error, title="Evaluation", severity="error")

        value = "all" if self.limit is None else str(self.limit)
        self.app.push_screen(PromptScreen("Limit", value=value,
                                          hint="Only the first K questions; all: every one."),
                             answered)

    # ── the run ─────────────────────────────────────────────────────────────────────────

    def start(self) -> bool:
        """Evaluate the chosen models; False when there is nothing to run or one is running."""
        if self.running or not self.chosen or self.source is None:
            return False
        if self.source.error:
            self.notify(self.source.error, title="Evaluation", severity="error")
            return False
        plan = RunPlan(tuple(self.chosen), self.source.root, self.split,
                       concurrency=self.concurrency, limit=self.limit)
        self._cancel = asyncio.Event()
        self.running = True
        self.set_state("starting…")
        self.evaluate_plan(plan, self._cancel)
        return True

    def cancel(self) -> None:
        """Stop the run; evaluate() returns what finished so far."""
        if self._cancel is not None and self.running:
            self._cancel.set()
            self.set_state(f"cancelling at {self.done}/{self.total}…", "yellow")

    @work(exclusive=True, group="eval-run", exit_on_error=False)
    async def evaluate_plan(self, plan: RunPlan, cancel: asyncio.Event) -> None:
        """Evaluate each model of the plan (an async worker: model calls are awaited, SQL runs
        in threads)."""
        client = await self.session.client()
        connection = self.session.connection
        provider = connection.name if connection is not None else None
        await run_plan(plan, client, provider, self.post_message, cancel)

    def on_eval_started(self, message: EvalStarted) -> None:
        self.done, self.total, self.matched, self.skipped = 0, message.total, 0, 0
        self.model = message.model
        self._position = f" ({message.position + 1}/{message.count})" if message.count > 1 else ""
        warning = message.prompt.warning
        self._prompt_note = " · ⚠ default prompt" if warning else ""
        if warning:  # never a silent default: the numbers may not be the model's best
            self.notify(f"{message.model}: {warning}", title="Evaluation prompt",
                        severity="warning", timeout=15)
        bar = self.query_one(ProgressBar)
        bar.display = True
        bar.update(total=max(message.total, 1), progress=0)
        self._show_progress()

    def on_eval_progressed(self, message: EvalProgressed) -> None:
        progress = message.progress
        self.done, self.matched = progress.done, progress.matched
        self.skipped += not isinstance(progress.last, QuestionResult)
        self.query_one(ProgressBar).update(progress=progress.done)
        if not (self._cancel and self._cancel.is_set()):
            self._show_progress()

    def running_ex(self) -> float | None:
        """EX over the questions scored so far."""
        scored = self.done - self.skipped
        return self.matched / scored if scored else None

    def _show_progress(self) -> None:
        skipped = f" · {self.skipped} skipped" if self.skipped else ""
        self.set_state(f"{self.done}/{self.total} · EX {share_text(self.running_ex())}{skipped}"
                       f" · {self.model}{self._position}{self._prompt_note}")

    def on_eval_finished(self, message: EvalFinished) -> None:
        report = message.report
        done = len(report.rows) + len(report.skipped)
        if report.cancelled:
            self.set_state(f"cancelled at {done}/{report.total} · EX "
                           f"{share_text(report.execution_accuracy)} · not recorded", "yellow")
        else:
            self.set_state(f"{report.model}: EX {share_text(report.execution_accuracy)} on "
                           f"{report.n} questions" + (f", {len(report.skipped)} skipped"
                                                      if report.skipped else "")
                           + self._prompt_note, "yellow" if self._prompt_note else "green")

    def on_eval_failed(self, message: EvalFailed) -> None:
        from tui.core.provider.providers import redact

        error = redact(message.error)
        self.set_state(error, "bold red")
        self.notify(error, title="Evaluation", severity="error")

    def show_failure(self, failure: WorkFailed) -> None:
        self.set_state(failure.error, "bold red")
        super().show_failure(failure)
        if failure.operation == "evaluate_plan":  # the run ended with its worker
            self.running = False
            self._cancel = None
            self.post_message(self.Changed())

    def on_eval_ended(self, message: EvalEnded) -> None:
        self.running = False
        self._cancel = None
        self.post_message(self.Changed())
