"""The create-job form: base model, files, suffix, hyperparameters, seed, and the estimate."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from tui.core.budget import resolve_epochs
from tui.core.pricing import price_for, priced_models, training_cost

DEFAULT_BASE = "gpt-4.1-mini-2025-04-14"
"""The form's first base model."""


def base_model_choices(provider_models: list[str]) -> list[str]:
    """Priced OpenAI snapshots, then the provider's own trainable models (local base, ft:)."""
    snapshots = []
    for name in priced_models():
        price = price_for(name)
        snapshots.append(price.snapshot if price is not None and price.snapshot else name)
    own = [m for m in provider_models if m.startswith(("sqltune-local", "ft:"))]
    return list(dict.fromkeys([*snapshots, *own]))


@dataclass(frozen=True)
class FileChoice:
    """A training or validation file the form offers."""

    id: str
    """Provider file id."""
    filename: str
    """Its name."""
    local_path: str | None = None
    """Where it came from on this machine (history), when known."""


class CreateJobScreen(ModalScreen[Any]):
    """Collects a JobSpec; the estimate of tokens and cost shows before you confirm."""

    BINDINGS: ClassVar[list[Any]] = [
        Binding("escape", "cancel", "Back", id="create.back", tooltip="Close without creating"),
        Binding("ctrl+s", "create", "Create", id="create.confirm",
                tooltip="Create the job with these settings"),
    ]

    @dataclass
    class Estimated(Message):
        """Tokens and cost of the chosen training file on the chosen model."""

        text: Text
        """What to show."""

    def __init__(self, models: list[str], files: list[FileChoice], *, training: str | None,
                 note: str | None, fetch: Any, provider_kind: str = "openai") -> None:
        super().__init__(classes="dialog-screen")
        self.provider_kind = provider_kind
        """openai, azure, compatible or local: whose bill the estimate speaks of."""
        self.models = models
        """Base models offered."""
        self.files = files
        """Fine-tune files offered."""
        self.training = training
        """Preselected training file (the last upload)."""
        self.note = note
        """A provider note (e.g. OpenAI's end of new fine-tuning jobs)."""
        self.fetch = fetch
        """``async (file_id) -> bytes``: reads a file not on this machine (for the estimate)."""

    def compose(self) -> ComposeResult:
        files = [(f"{f.filename} ({f.id})", f.id) for f in self.files]
        model = DEFAULT_BASE if DEFAULT_BASE in self.models else self.models[0]
        with Vertical(classes="dialog form"):
            yield Label("New fine-tuning job", classes="dialog-question")
            with Horizontal(classes="row"):
                yield Label("base model")
                yield Select[str]([(m, m) for m in self.models], value=model,
                                  allow_blank=False, compact=True, id="create-model")
            with Horizontal(classes="row"):
                yield Label("training")
                yield Select[str](files, value=self.training or Select.NULL, compact=True,
                                  prompt="(choose a file)", id="create-training")
            with Horizontal(classes="row"):
                yield Label("validation")
                yield Select[str](files, prompt="(none)", compact=True, id="create-validation")
            with Horizontal(classes="row"):
                yield Label("suffix")
                yield Input(placeholder="up to 64 characters", max_length=64, compact=True,
                            id="create-suffix")
            with Horizontal(classes="row"):
                yield Label("epochs")
                yield Input("auto", compact=True, id="create-epochs", classes="short")
                yield Label(" batch")
                yield Input("auto", compact=True, id="create-batch", classes="short")
                yield Label(" lr ×")
                yield Input("auto", compact=True, id="create-lr", classes="short")
            with Horizontal(classes="row"):
                yield Label("seed")
                yield Input(placeholder="random", compact=True, type="integer", id="create-seed",
                            classes="short")
            yield Static("choose a training file for the estimate", id="create-estimate")
            if self.note:
                yield Static(Text(self.note, style="yellow"), id="create-note")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create (ctrl+s)", variant="primary", id="create", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#create-model").focus()
        self._estimate()

    # ── values ──────────────────────────────────────────────────────────────────────────

    def _choice(self, selector: str) -> str | None:
        value = self.query_one(selector, Select).value
        return value if isinstance(value, str) else None

    def _auto_or(self, selector: str, kind: type) -> Any:
        text = self.query_one(selector, Input).value.strip().lower()
        if text in ("", "auto"):
            return "auto"
        return kind(text)

    def spec(self) -> Any:
        """The JobSpec the form describes; ValueError names the bad field."""
        from tui.core.jobs import JobSpec

        model, training = self._choice("#create-model"), self._choice("#create-training")
        if model is None or training is None:
            raise ValueError("choose a base model and a training file")
        try:
            epochs = self._auto_or("#create-epochs", int)
            batch = self._auto_or("#create-batch", int)
            lr = self._auto_or("#create-lr", float)
        except ValueError:
            raise ValueError("epochs and batch are whole numbers, lr a number, or auto") from None
        seed_text = self.query_one("#create-seed", Input).value.strip()
        suffix = self.query_one("#create-suffix", Input).value.strip() or None
        return JobSpec(model=model, training_file=training,
                       validation_file=self._choice("#create-validation"), suffix=suffix,
                       n_epochs=epochs, batch_size=batch, learning_rate_multiplier=lr,
                       seed=int(seed_text) if seed_text else None)

    # ── estimate ────────────────────────────────────────────────────────────────────────

    @on(Select.Changed)
    @on(Input.Changed, "#create-epochs")
    def _estimate(self) -> None:
        model, training = self._choice("#create-model"), self._choice("#create-training")
        if model and training:
            try:
                epochs = self._auto_or("#create-epochs", int)
            except ValueError:
                return
            self.query_one("#create-estimate", Static).update("estimating…")
            self.estimate(model, training, epochs)

    @work(exclusive=True, group="create-estimate", exit_on_error=False)
    async def estimate(self, model: str, file_id: str, epochs: Any) -> None:
        """Count the training file's tokens (validator) and price the job."""
        from tui.core.jsonl import validate_bytes, validate_jsonl

        choice = next((f for f in self.files if f.id == file_id), None)
        try:
            if choice is not None and choice.local_path and Path(choice.local_path).is_file():
                report = await asyncio.to_thread(validate_jsonl, Path(choice.local_path), model)
            else:
                data = await self.fetch(file_id)
                report = await asyncio.to_thread(validate_bytes, data, model)
        except Exception as error:
            self.post_message(self.Estimated(Text(f"no estimate: {error}", style="red")))
            return
        self.post_message(self.Estimated(estimate_text(report, model, epochs,
                                                         self.provider_kind)))

    def on_create_job_screen_estimated(self, message: Estimated) -> None:
        self.query_one("#create-estimate", Static).update(message.text)

    # ── buttons ─────────────────────────────────────────────────────────────────────────

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "create":
            self.action_create()
        else:
            self.action_cancel()

    def action_create(self) -> None:
        """Return the spec (the pane creates the job)."""
        try:
            spec = self.spec()
        except ValueError as error:
            self.notify(str(error), title="New job", severity="warning")
            return
        self.dismiss(spec)

    def action_cancel(self) -> None:
        """Close without creating."""
        self.dismiss(None)


def estimate_text(report: Any, model: str, epochs: Any, provider_kind: str = "openai") -> Text:
    """``≈ 358,332 trained tokens (3 epochs × 119,444) · $1.79`` from a ValidationReport.

    The price table is OpenAI's: on the local server training is free, and other providers
    bill by their own price list, so the figure is labelled for what it is."""
    if not report.ok:
        return Text(f"the file has {len(report.errors)} errors: the job would fail",
                    style="bold red")
    per_epoch = report.total_tokens or 0
    n_epochs = resolve_epochs(epochs, report.examples)
    trained = per_epoch * n_epochs
    cost = training_cost(model, trained)
    text = Text("≈ ")
    text.append(f"{trained:,}", style="bold")
    text.append(f" trained tokens ({n_epochs} epochs × {per_epoch:,}, "
                f"{report.examples:,} examples) · ")
    if provider_kind == "local":
        text.append("free on the local server", style="bold")
        if cost:
            text.append(f" (OpenAI's list price: ${cost:,.2f})")
    elif cost is None:
        text.append("cost unknown", style="bold")
    elif provider_kind == "openai":
        text.append(f"${cost:,.2f}", style="bold")
    else:
        text.append(f"${cost:,.2f}", style="bold")
        text.append(" at OpenAI's list price (this provider bills by its own)")
    return text
