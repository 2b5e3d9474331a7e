"""The token-budget meter: tokens against the job limit, examples kept, epochs, cost, export."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Input, Label, Select, Static

from tui.core.budget import DEFAULT_TOKEN_LIMIT, STRATEGIES, Budget, fit_to_budget
from tui.core.pricing import price_for, priced_models
from tui.messages import DatasetExported
from tui.widgets.pane import Pane

DEFAULT_MODEL = "gpt-4.1-mini"
"""The meter's first model (the CLI's default, without its snapshot date)."""


class BudgetBar(Static):
    """A bar of trained tokens against the per-job limit; red when the limit cut examples."""

    budget: reactive[Budget | None] = reactive(None)
    """The fit shown."""
    over = reactive(False, toggle_class="-over")
    """True when examples had to be dropped to fit the limit."""

    def watch_budget(self, budget: Budget | None) -> None:
        self.over = budget is not None and not budget.fits_all

    def render(self) -> Text:
        budget = self.budget
        if budget is None:
            return Text("counting tokens…", style="italic")
        width = max(10, self.size.width - 34)
        fraction = min(1.0, budget.fraction_of_limit)
        filled = round(fraction * width)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("█" * filled, style="red" if self.over else "green")
        text.append("░" * (width - filled), style="dim")
        text.append(f" {_short(budget.trained_tokens)} / {_short(budget.token_limit)}"
                    f" tokens ({fraction:.1%})")
        return text


class TokenMeter(Pane):
    """Exact tokens of the prepared examples, the largest subset that fits, and its cost."""

    PANE_ID = "budget"
    PANE_TITLE = "Budget"
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
                show=False, tooltip="Share of examples held out as a validation file"),
        Binding("x", "export", "Export", id="budget.export",
                tooltip="Write the kept examples as chat JSONL (and the validation split)"),
        Binding("escape", "focus_table", "Back", id="budget.back", show=False,
                tooltip="Leave the field and go back to the cost table"),
    ]

    @dataclass
    class Prepared(Message):
        """The dataset was loaded, checked and counted for a model."""

        result: Any
        """tui.core.prepare.PrepareResult."""

    @dataclass
    class PrepareFailed(Message):
        """The dataset could not be prepared."""

        error: str
        """Why."""

    @dataclass
    class Fitted(Message):
        """The budget was recomputed for new epochs, limit or strategy."""

        budget: Budget
        """The new fit."""

    @dataclass
    class ExportFailed(Message):
        """Writing the JSONL failed."""

        error: str
        """Why."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self.result: Any = None
        """The last PrepareResult (tokens of every usable example)."""
        self.budget: Budget | None = None
        """The fit shown."""
        self._requested: tuple[Path | None, Any] | None = None

    def compose(self) -> ComposeResult:
        models = priced_models()
        with Horizontal(classes="filters"):
            yield Label("model ")
            yield Select[str]([(m, m) for m in models], value=DEFAULT_MODEL if DEFAULT_MODEL
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
            yield Input("0", id="budget-validation", compact=True, type="number",
                        classes="short", tooltip="fraction held out, e.g. 0.1")
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
        return value if isinstance(value, str) else DEFAULT_MODEL

    def _epochs(self) -> int | str:
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

    def _strategy(self) -> str:
        value = self.query_one("#budget-strategy", Select).value
        return value if isinstance(value, str) else "stratified"

    def _validation(self) -> float:
        fraction = float(self.query_one("#budget-validation", Input).value.strip() or "0")
        if not 0 <= fraction < 1:
            raise ValueError("validation must be a fraction from 0 to below 1")
        return fraction

    def _options(self) -> Any:
        from tui.core.prepare import PrepareOptions

        return PrepareOptions(model=self._model(), epochs=self._epochs(),  # type: ignore[arg-type]
                              token_limit=self._limit(), strategy=self._strategy(),  # type: ignore[arg-type]
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
    def _prepare(self, data: Path | None, options: Any) -> None:
        from tui.core.paths import demo_dir
        from tui.core.prepare import prepare

        try:
            result = prepare(data or demo_dir(), options)
        except Exception as error:
            self.post_message(self.PrepareFailed(str(error)))
            return
        self.post_message(self.Prepared(result))

    def on_token_meter_prepared(self, message: Prepared) -> None:
        self.result = message.result
        self._show(message.result.budget)

    def on_token_meter_prepare_failed(self, message: PrepareFailed) -> None:
        self._requested = None  # asking again retries
        self._show_state(message.error, error=True)

    @work(thread=True, exclusive=True, group="budget", exit_on_error=False)
    def refit(self, tokens: list[int], groups: list[str], model: str, epochs: Any, limit: int,
              strategy: Any) -> None:
        """Fit the counted examples to new epochs, limit or strategy (no recount)."""
        budget = fit_to_budget(tokens, model=model, groups=groups, epochs=epochs,
                               token_limit=limit, strategy=strategy)
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
                   limit, strategy)

    # ── showing ─────────────────────────────────────────────────────────────────────────

    def _show_state(self, text: str, *, error: bool = False) -> None:
        label = self.query_one("#budget-state", Label)
        label.update(Text(text, style="bold red" if error else "italic"))

    def _show(self, budget: Budget) -> None:
        self.budget = budget
        self._show_state("")
        self.query_one(BudgetBar).budget = budget
        self.query_one("#budget-summary", Static).update(summary_text(budget, self.result))
        table = self.query_one("#budget-costs", DataTable)
        table.clear()
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
        stem = f"{Path(self.result.root).name}-{self.budget.model}-{self.budget.kept}"
        folder = _exports_dir()
        validation = folder / f"{stem}-validation.jsonl" if self.result.validation else None

        def chosen(request: ExportRequest | None) -> None:
            if request is not None:
                self.export(self.result, request.train, request.validation)

        self.app.push_screen(ExportDialog(folder / f"{stem}.jsonl", validation,
                                          self.budget.kept, len(self.result.validation)),
                             chosen)

    @work(thread=True, exclusive=True, group="budget-export", exit_on_error=False)
    def export(self, result: Any, train: Path, validation: Path | None) -> None:
        """Write the kept examples (and the validation split), then record them in history."""
        from tui.core.history import History

        try:
            train.parent.mkdir(parents=True, exist_ok=True)
            written = result.write(train, validation)
            with History() as history:
                history.record_dataset(result.root, result.options.split,
                                       result.options.template.to_dict(),
                                       budget=result.to_json(written), jsonl_path=written.path)
        except Exception as error:
            self.post_message(self.ExportFailed(str(error)))
            return
        self.post_message(DatasetExported(written.path, written.validation_path,
                                          written.examples, result.budget.model))

    def on_dataset_exported(self, message: DatasetExported) -> None:
        extra = f" + {message.validation.name}" if message.validation else ""
        self.notify(f"{message.examples} examples → {message.train}{extra}", title="Exported")

    def on_token_meter_export_failed(self, message: ExportFailed) -> None:
        self.notify(message.error, title="Export failed", severity="error")


def _exports_dir() -> Path:
    from tui.core.paths import data_dir

    return data_dir() / "exports"


def _short(n: int) -> str:
    for size, unit in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def summary_text(budget: Budget, result: Any) -> Text:
    """Examples kept, epochs, tokens, cost, encoding and what was skipped, in three lines."""
    text = Text()
    text.append("kept ")
    text.append(f"{budget.kept:,}", style="bold")
    text.append(f" of {budget.examples:,} examples · ")
    auto = " (auto)" if budget.epochs_setting == "auto" else ""
    text.append(f"{budget.epochs}", style="bold")
    text.append(f" epochs{auto} · {budget.tokens_per_epoch:,} tokens/epoch\n")
    text.append("trained ")
    text.append(f"{budget.trained_tokens:,}", style="bold")
    cost = budget.estimated_cost_usd
    text.append(f" tokens · {budget.model} ")
    text.append("price unknown" if cost is None else f"${cost:,.2f}", style="bold")
    if budget.over_context:
        text.append(f" · {budget.over_context} over context", style="bold red")
    skipped = result.skipped_examples if result is not None else 0
    held = len(result.validation) if result is not None else 0
    text.append(f"\n{budget.encoding} · context {budget.context_limit:,} · longest "
                f"{budget.max_example_tokens:,} · skipped {skipped} · validation {held}",
                style="dim")
    if budget.encoding_note:
        text.append(f"\n{budget.encoding_note}", style="yellow")
    return text
