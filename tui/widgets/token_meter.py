"""The token-budget meter: tokens against the job limit, examples kept, epochs, cost, export,
and "train this" (export, upload both files, the create form filled in)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Input, Label, Select, Static

from tui.core.budget.counters import BaseModelInfo
from tui.core.budget.fit import (
    DEFAULT_TOKEN_LIMIT,
    STRATEGIES,
    Budget,
    Epochs,
    Strategy,
    fit_to_budget,
    parse_validation_share,
)
from tui.core.budget.pricing import price_for, priced_models
from tui.core.budget.tokens import undated
from tui.core.finetune.form import training_duration
from tui.core.models import DEFAULT_MODEL
from tui.core.paths import exports_dir
from tui.messages import DatasetExported
from tui.widgets.budget_view import BudgetBar, summary_text
from tui.widgets.pane import Pane

if TYPE_CHECKING:
    from tui.core.budget.counters import ChatCounter
    from tui.core.data.prepare import PrepareOptions, PrepareResult
    from tui.core.finetune.form import UploadedExport
    from tui.core.session import Session
    from tui.widgets.failures import WorkFailed

FIRST_MODEL = undated(DEFAULT_MODEL)
"""The meter's first model: the default model as the price table names it (no date)."""


class TokenMeter(Pane):
    """Exact tokens of the prepared examples, the largest subset that fits, and its cost."""

    PANE_ID = "budget"
    PANE_TITLE = "Budget"
    MAIN_WIDGET = "#budget-costs"
    BINDINGS: ClassVar[list[Any]] = [
        Binding("m", "focus_control('model')", "Model", id="budget.model",
                tooltip="Change the base model (encoding, context and price)"),
        Binding("e", "focus_control('epochs')", "Epochs", id="budget.epochs",
                tooltip="Epochs: a number, or auto for OpenAI's rule"),
        Binding("l", "focus_control('limit')", "Limit", id="budget.limit",
                tooltip="Per-job limit on trained tokens"),
        Binding("s", "focus_control('strategy')", "Strategy", id="budget.strategy",
                tooltip="How the subset is chosen: stratified, shortest or random"),
        Binding("v", "focus_control('validation')", "Valid %", id="budget.validation",
                show=False, tooltip="Share held out as a validation file: 10 (%) or 0.1"),
        Binding("x", "export", "Export", id="budget.export",
                tooltip="Write the kept examples as chat JSONL (and the validation split)"),
        Binding("t", "train_this", "Train this", id="budget.train",
                tooltip="Export, upload the training and validation files, and open the new "
                        "job form filled in with this model and epochs"),
        Binding("escape", "focus_table", "Back", id="budget.back", show=False,
                tooltip="Leave the field and go back to the cost table"),
    ]

    @dataclass
    class Prepared(Message):
        """The dataset was loaded, checked and counted for a model."""

        result: PrepareResult
        """Tokens of every usable example, and the budget fitted to them."""

    @dataclass
    class Fitted(Message):
        """The budget was recomputed for new epochs, limit or strategy."""

        budget: Budget
        """The new fit."""

    @dataclass
    class BasesFound(Message):
        """The provider's real open-weight bases (a sqltune server's extension route)."""

        bases: list[BaseModelInfo]
        """Their names, sources, context and tokenizer whereabouts."""

    @dataclass
    class Uploaded(Message):
        """"Train this" exported and uploaded the files; the form comes next."""

        export: UploadedExport
        """The files written and uploaded, and the form's defaults."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.result: PrepareResult | None = None
        """The last preparation (tokens of every usable example)."""
        self.budget: Budget | None = None
        """The fit shown."""
        self._requested: tuple[Path | None, PrepareOptions] | None = None
        self.bases: list[BaseModelInfo] = []
        """Real bases of the provider: they count with their own tokenizer, and are free."""

    def compose(self) -> ComposeResult:
        models = priced_models()
        with Horizontal(classes="filters"):
            yield Label("model ")
            yield Select[str]([(m, m) for m in models], value=FIRST_MODEL if FIRST_MODEL
                              in models else models[0], allow_blank=False, compact=True,
                              id="budget-model")
            yield Label("epochs ")
            yield Input("auto", id="budget-epochs", compact=True, classes="short",
                        tooltip="auto or 1-50")
            yield Label("limit ")
            yield Input(str(DEFAULT_TOKEN_LIMIT), id="budget-limit", compact=True,
                        type="integer", classes="number")
        with Horizontal(classes="filters"):
            yield Label("strategy ")
            yield Select[str]([(s, s) for s in STRATEGIES], value="stratified",
                              allow_blank=False, compact=True, id="budget-strategy")
            yield Label("validation ")
            yield Input("0", id="budget-validation", compact=True, classes="short",
                        restrict=r"[0-9.%]*", tooltip="share held out: 10 (%) or 0.1")
            yield Label("", id="budget-state")
        yield BudgetBar(id="budget-bar")
        yield Static("", id="budget-summary")
        table: DataTable[Any] = DataTable(id="budget-costs", cursor_type="row")
        yield table

    def on_mount(self) -> None:
        table = self.query_one("#budget-costs", DataTable)
        table.add_column("model", key="model", width=16)
        table.add_column("$/1M train", key="rate", width=10)
        table.add_column("estimated cost", key="cost", width=16)

    def after_first_frame(self) -> None:
        self.prepare_data()

    def on_show(self) -> None:
        # The preview may have opened another dataset meanwhile (o): count that one.
        if self._requested is not None:
            self.prepare_data()

    def focus_default(self) -> None:
        self.query_one("#budget-costs").focus()

    # ── reading the controls ────────────────────────────────────────────────────────────

    def _model(self) -> str:
        value = self.query_one("#budget-model", Select).value
        return value if isinstance(value, str) else FIRST_MODEL

    def _epochs(self) -> Epochs:
        text = self.query_one("#budget-epochs", Input).value.strip().lower() or "auto"
        if text == "auto":
            return "auto"
        number = int(text) if text.isdigit() else 0
        if not 1 <= number <= 50:
            raise ValueError("epochs must be auto or 1-50")
        return number

    def _limit(self) -> int:
        number = int(self.query_one("#budget-limit", Input).value.strip() or "0")
        if number < 1:
            raise ValueError("the limit must be a positive number of tokens")
        return number

    def _strategy(self) -> Strategy:
        value = self.query_one("#budget-strategy", Select).value
        return cast("Strategy", value) if value in STRATEGIES else "stratified"

    def _validation(self) -> float:
        return parse_validation_share(self.query_one("#budget-validation", Input).value)

    def _options(self) -> PrepareOptions:
        from tui.core.data.prepare import PrepareOptions

        return PrepareOptions(model=self._model(), epochs=self._epochs(),
                              token_limit=self._limit(), strategy=self._strategy(),
                              validation_fraction=self._validation())

    # ── computing ───────────────────────────────────────────────────────────────────────

    def prepare_data(self) -> None:
        """Load, check and count the dataset for the chosen model (a thread worker)."""
        try:
            options = self._options()
        except ValueError as error:
            self._show_state(str(error), error=True)
            return
        if (self.session.data, options) == self._requested:
            return  # already counted or counting (a Select posts Changed when it mounts)
        self._requested = (self.session.data, options)
        self._show_state("counting…")
        self._prepare(self.session.data, options)

    @work(thread=True, exclusive=True, group="budget", exit_on_error=False)
    def _prepare(self, data: Path | None, options: PrepareOptions) -> None:
        from tui.core.budget.counters import counter_for
        from tui.core.data.prepare import prepare
        from tui.core.paths import demo_dir

        counter = counter_for(options.model, self.bases)
        result = prepare(data or demo_dir(), options, counter=counter)
        self.post_message(self.Prepared(result))

    def on_token_meter_prepared(self, message: Prepared) -> None:
        self.result = message.result
        self.query_one(BudgetBar).error = None
        self._show(message.result.budget)

    def show_failure(self, failure: WorkFailed) -> None:
        if failure.operation == "_prepare":
            self._requested = None  # asking again retries
            self._show_state("not counted", error=True)
            self.query_one(BudgetBar).error = failure.error  # the full width: a path fits
        elif failure.operation in ("export", "train_this"):
            self.notify(failure.error, title="Export failed", severity="error", markup=False)
        else:
            super().show_failure(failure)

    # ── the provider's real bases ───────────────────────────────────────────────────────

    def provider_changed(self) -> None:
        self.find_bases()

    @work(exclusive=True, group="budget-bases", exit_on_error=False)
    async def find_bases(self) -> None:
        """Ask a local sqltune server for its real bases (others have none to offer)."""
        from tui.core.finetune.form import fetch_base_models

        connection = self.session.connection
        bases: list[BaseModelInfo] = []
        if connection is not None and connection.kind == "local":
            try:
                listed = await fetch_base_models(connection.client)
                bases = listed.models if listed is not None else []
            except Exception:  # the priced models still work; the bases are a bonus
                bases = []
        self.post_message(self.BasesFound(bases))

    def on_token_meter_bases_found(self, message: BasesFound) -> None:
        if [b.id for b in message.bases] == [b.id for b in self.bases]:
            self.bases = message.bases
            return
        self.bases = message.bases
        select = self.query_one("#budget-model", Select)
        current = select.value
        names = [*(b.id for b in self.bases), *priced_models()]
        select.set_options([(m, m) for m in dict.fromkeys(names)])
        select.value = current if isinstance(current, str) and current in names else (
            FIRST_MODEL if FIRST_MODEL in names else names[0])

    @work(thread=True, exclusive=True, group="budget", exit_on_error=False)
    def refit(self, tokens: list[int], groups: list[str], model: str, epochs: Epochs, limit: int,
              strategy: Strategy, counter: ChatCounter | None = None) -> None:
        """Fit the counted examples to new epochs, limit or strategy (no recount; ``counter``,
        the one that counted them, keeps a real base free and within its context)."""
        budget = fit_to_budget(tokens, model=model, groups=groups, epochs=epochs,
                               token_limit=limit, strategy=strategy, counter=counter)
        self.post_message(self.Fitted(budget))

    def on_token_meter_fitted(self, message: Fitted) -> None:
        if self.result is not None:
            self.result = replace(self.result, budget=message.budget)
        self._show(message.budget)

    @on(Select.Changed, "#budget-model")
    @on(Input.Submitted, "#budget-validation")
    def _recount(self) -> None:
        if self._requested is not None:  # before the first frame, after_first_frame starts it
            self.prepare_data()

    @on(Select.Changed, "#budget-strategy")
    @on(Input.Changed, "#budget-epochs")
    @on(Input.Changed, "#budget-limit")
    def _refit(self) -> None:
        if self.result is None:
            return
        try:
            epochs, limit, strategy = self._epochs(), self._limit(), self._strategy()
        except ValueError as error:
            self._show_state(str(error), error=True)
            return
        self._show_state("fitting…")
        result = self.result
        self.refit(result.tokens, [e.db_id for e in result.examples], self._model(), epochs,
                   limit, strategy, result.counter)

    # ── showing ─────────────────────────────────────────────────────────────────────────

    def _show_state(self, text: str, *, error: bool = False) -> None:
        label = self.query_one("#budget-state", Label)
        label.update(Text(text, style="bold red" if error else "italic"))

    def _show(self, budget: Budget) -> None:
        self.budget = budget
        self._show_state("")
        self.query_one(BudgetBar).budget = budget
        base = next((b for b in self.bases if b.id == budget.model), None)
        duration = training_duration(budget.trained_tokens, base).text() if base else None
        self.query_one("#budget-summary", Static).update(summary_text(budget, self.result,
                                                                      duration))
        table = self.query_one("#budget-costs", DataTable)
        table.clear()
        if budget.free:
            table.add_row(Text(budget.model, style="bold"), "—",
                          Text("free", style="bold"), key=budget.model)
        for model, cost in budget.costs_usd.items():
            price = price_for(model)
            rate = f"{price.training:g}" if price is not None and price.training else "—"
            style = "bold" if model == budget.model else ""
            table.add_row(Text(model, style=style), rate, Text(f"${cost:,.2f}", style=style),
                          key=model)

    # ── actions ─────────────────────────────────────────────────────────────────────────

    def action_focus_control(self, name: str) -> None:
        """Focus one of the controls (and open it when it is a list)."""
        widget = self.query_one(f"#budget-{name}")
        widget.focus()
        if isinstance(widget, Select):
            widget.expanded = True

    def action_focus_table(self) -> None:
        """Back to the cost table."""
        self.focus_default()

    def action_export(self) -> None:
        """Ask where to write the JSONL, then write it in a worker."""
        from tui.screens.export_dialog import ExportDialog, ExportRequest

        if self.result is None or self.budget is None:
            self.notify("Still counting tokens…", title="Export")
            return
        train, validation = self._export_paths()

        def chosen(request: ExportRequest | None) -> None:
            if request is not None and self.result is not None:
                self.export(self.result, request.train, request.validation)

        self.app.push_screen(ExportDialog(train, validation, self.budget.kept,
                                          len(self.result.validation)), chosen)

    def _export_paths(self) -> tuple[Path, Path | None]:
        assert self.result is not None and self.budget is not None
        stem = f"{Path(self.result.root).name}-{self.budget.model}-{self.budget.kept}"
        stem = stem.replace("/", "_")  # a Hub id names a real base: Qwen/Qwen2.5-...
        folder = exports_dir()
        validation = folder / f"{stem}-validation.jsonl" if self.result.validation else None
        return folder / f"{stem}.jsonl", validation

    @work(thread=True, exclusive=True, group="budget-export", exit_on_error=False)
    def export(self, result: PrepareResult, train: Path, validation: Path | None) -> None:
        """Write the kept examples (and the validation split), then record them in history."""
        from tui.core.finetune.form import write_export

        written = write_export(result, train, validation)
        self.post_message(DatasetExported(written.path, written.validation_path,
                                          written.examples, result.budget.model))

    def on_dataset_exported(self, message: DatasetExported) -> None:
        extra = f" + {message.validation.name}" if message.validation else ""
        self.notify(f"{message.examples} examples → {message.train}{extra}", title="Exported")

    def action_train_this(self) -> None:
        """Export to the exports folder, upload both files, open the create form filled in."""
        if self.result is None or self.budget is None:
            self.notify("Still counting tokens…", title="Train this")
            return
        if self.budget.kept == 0:
            why = (f"{self.budget.over_context} are over {self.budget.model}'s context of "
                   f"{self.budget.context_limit:,} tokens" if self.budget.over_context else
                   "raise the token limit")
            self.notify(f"No example to train on: {why}", title="Train this",
                        severity="warning")
            return
        train, validation = self._export_paths()
        self._show_state("exporting and uploading…")
        self.train_this(self.result, train, validation)

    @work(exclusive=True, group="budget-export", exit_on_error=False)
    async def train_this(self, result: PrepareResult, train: Path,
                         validation: Path | None) -> None:
        """Export, upload (validated, recorded in the history), then hand over to the form."""
        from tui.core.finetune.form import export_and_upload

        client = await self.session.client()
        connection = self.session.connection
        provider = connection.name if connection else "?"
        done = await export_and_upload(result, train, validation, client, provider)
        written = done.written
        self.post_message(DatasetExported(written.path, written.validation_path,
                                          written.examples, result.budget.model))
        self.post_message(self.Uploaded(done))

    def on_token_meter_uploaded(self, message: Uploaded) -> None:
        from textual.widgets import TabbedContent

        from tui.messages import FileUploaded
        from tui.widgets.job_events import JobsPane

        self._show_state("")
        for info in message.export.files:
            self.post_message(FileUploaded(info.id, info.filename))
        self.app.query_one("#panes", TabbedContent).active = f"tab-{JobsPane.PANE_ID}"
        self.app.query_one(JobsPane).open_create_form(message.export.defaults)
