"""The create-job form: base model, files, suffix, hyperparameters, seed, and the estimate."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
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

from tui.core.budget.counters import BaseModelInfo
from tui.core.budget.pricing import price_for, priced_models
from tui.core.finetune.estimate import estimate_job
from tui.core.finetune.form import CPU_NOTE, FormDefaults, match_model, training_duration
from tui.core.models import DEFAULT_MODEL

NO_BASE_HINT = ("no real base model on this server: sqltune server --base-model NAME=SOURCE "
                "(a Hub id, a model folder or a .gguf file)")
"""Shown when the local server lists no real base although the train extra is installed."""


def base_model_choices(provider_models: list[str],
                       bases: Sequence[BaseModelInfo] = ()) -> list[str]:
    """The provider's real open-weight bases first, then priced OpenAI snapshots, then its own
    trainable models (the stand-in local base, ft:)."""
    snapshots = []
    for name in priced_models():
        price = price_for(name)
        snapshots.append(price.snapshot if price is not None and price.snapshot else name)
    real = [b.id for b in bases if not provider_models or b.id in provider_models]
    own = [m for m in provider_models if m.startswith(("sqltune-local", "ft:"))]
    return list(dict.fromkeys([*real, *snapshots, *own]))


@dataclass(frozen=True)
class FileChoice:
    """A training or validation file the form offers."""

    id: str
    """Provider file id."""
    filename: str
    """Its name."""
    local_path: str | None = None
    """Where it came from on this machine (history), when known."""


@dataclass
class FormData:
    """Everything the form offers, read from the provider and the local history."""

    models: list[str]
    """Base models offered."""
    files: list[FileChoice]
    """Fine-tune files offered, newest first."""
    defaults: FormDefaults
    """The preselected files, model and epochs."""
    bases: list[BaseModelInfo] = field(default_factory=list)
    """The provider's real open-weight bases (a sqltune server's extension route)."""
    real_training_hint: str | None = None
    """How to get real training when the local server has no real base."""


async def load_form_data(client: Any, kind: str, provider: str,
                         defaults: FormDefaults | None = None) -> FormData:
    """Files, models and real bases of the provider; the newest training file and its pair.

    ``defaults`` (from Budget's "train this") replace what the history suggests."""
    from tui.core.finetune.files import FileService
    from tui.core.finetune.form import fetch_base_models, read_form_defaults, train_extra_missing

    files = await FileService(client).list("fine-tune")
    models = [m.id async for m in client.models.list()]
    bases: list[BaseModelInfo] = []
    hint = None
    if kind == "local":
        try:
            listed = await fetch_base_models(client)
        except Exception:  # details are a bonus: the form still works without them
            listed = None
        bases = listed.models if listed is not None else []
        if not bases:  # the server knows best why; an older server: this install's view
            hint = (listed.train_extra_missing if listed is not None else None) or \
                await asyncio.to_thread(train_extra_missing)
        if hint is None and listed is not None and not bases:
            hint = NO_BASE_HINT
    found, local = await asyncio.to_thread(read_form_defaults, provider, files)
    choices = [FileChoice(f.id, f.filename, local.get(f.id)) for f in files]
    return FormData(base_model_choices(models, bases), choices, defaults or found, bases, hint)


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
                 note: str | None, fetch: Any, provider_kind: str = "openai",
                 validation: str | None = None, model: str | None = None,
                 epochs: int | str | None = None, bases: Sequence[BaseModelInfo] = (),
                 real_training_hint: str | None = None) -> None:
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
        self.validation = validation
        """Preselected validation file (the training file's pair)."""
        self.model = match_model(model, models)
        """Preselected base model (Budget's), when offered."""
        self.epochs = str(epochs) if epochs not in (None, "") else "auto"
        """Preselected epochs (Budget's)."""
        self.bases = {b.id: b for b in bases}
        """The real open-weight bases by name: their tokenizer counts, their speed is known."""
        self.real_training_hint = real_training_hint
        """How to get real training, when the local server has no real base."""

    @classmethod
    def from_data(cls, data: FormData, *, note: str | None, fetch: Any,
                  provider_kind: str) -> CreateJobScreen:
        """The form for what load_form_data read."""
        defaults = data.defaults
        return cls(data.models, data.files, training=defaults.training, note=note, fetch=fetch,
                   provider_kind=provider_kind, validation=defaults.validation,
                   model=defaults.model, epochs=defaults.epochs, bases=data.bases,
                   real_training_hint=data.real_training_hint)

    def compose(self) -> ComposeResult:
        files = [(f"{f.filename} ({f.id})", f.id) for f in self.files]
        model = self.model or (DEFAULT_MODEL if DEFAULT_MODEL in self.models else self.models[0])
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
                yield Select[str](files, value=self.validation or Select.NULL, prompt="(none)",
                                  compact=True, id="create-validation")
            with Horizontal(classes="row"):
                yield Label("suffix")
                yield Input(placeholder="up to 64 characters", max_length=64, compact=True,
                            id="create-suffix")
            with Horizontal(classes="row"):
                yield Label("epochs")
                yield Input(self.epochs, compact=True, id="create-epochs", classes="short")
                yield Label(" batch")
                yield Input("auto", compact=True, id="create-batch", classes="short")
                yield Label(" lr ×")
                yield Input("auto", compact=True, id="create-lr", classes="short")
            with Horizontal(classes="row"):
                yield Label("seed")
                yield Input(placeholder="random", compact=True, type="integer", id="create-seed",
                            classes="short")
            yield Static("choose a training file for the estimate", id="create-estimate")
            notes = [n for n in (self.note, self.real_training_hint) if n]
            if notes:
                yield Static(Text("\n".join(notes), style="yellow"), id="create-note")
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
        from tui.core.finetune.jobs import JobSpec

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
        """Count the training file's tokens (validator; a real base's own tokenizer) and price
        and time the job."""
        from tui.core.budget.counters import base_counter
        from tui.core.data.jsonl import validate_bytes, validate_jsonl

        choice = next((f for f in self.files if f.id == file_id), None)
        base = self.bases.get(model)
        counting: dict[str, Any] = {}
        counter = None
        try:
            if base is not None:
                counter = await asyncio.to_thread(base_counter, base)
                counting = {"token_check": counter.count, "context": counter.context_limit}
            if choice is not None and choice.local_path and Path(choice.local_path).is_file():
                report = await asyncio.to_thread(validate_jsonl, Path(choice.local_path), model,
                                                 **counting)
            else:
                data = await self.fetch(file_id)
                report = await asyncio.to_thread(validate_bytes, data, model, **counting)
        except Exception as error:
            self.post_message(self.Estimated(Text(f"no estimate: {error}", style="red")))
            return
        self.post_message(self.Estimated(estimate_text(
            report, model, epochs, self.provider_kind, base=base,
            count_note=counter.note if counter is not None else None)))

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


def estimate_text(report: Any, model: str, epochs: Any, provider_kind: str = "openai", *,
                  base: BaseModelInfo | None = None, count_note: str | None = None) -> Text:
    """``≈ 358,332 trained tokens (3 epochs × 119,444) · $1.79`` from a ValidationReport.

    The price table is OpenAI's: on the local server training is free, and other providers
    bill by their own price list, so the figure is labelled for what it is. A real base adds
    how long it would train (measured throughput only) and, on a CPU, what that suits."""
    if not report.ok:
        return Text(f"the file has {len(report.errors)} errors: the job would fail",
                    style="bold red")
    estimate = estimate_job(report, model, epochs, provider_kind)
    text = Text("≈ ")
    text.append(f"{estimate.trained_tokens:,}", style="bold")
    text.append(f" trained tokens ({estimate.epochs} epochs × {estimate.tokens_per_epoch:,}, "
                f"{estimate.examples:,} examples) · ")
    label = estimate.price_label
    head, _, tail = label.partition(" (") if provider_kind == "local" else label.partition(" at ")
    text.append(head, style="bold")
    if tail:
        text.append(f" ({tail}" if provider_kind == "local" else f" at {tail}")
    over = [w.line for w in report.warnings if w.code == "over_context"]
    if base is not None and over:  # a real base's server refuses them (as OpenAI does)
        lines = ", ".join(str(n) for n in over[:3]) + (", …" if len(over) > 3 else "")
        text.append(f"\nexamples over {base.id}'s context of {report.context_limit:,} tokens "
                    f"(line {lines}): the server refuses the file", style="bold red")
    if base is not None:
        duration = training_duration(estimate.trained_tokens, base)
        text.append(f"\n{duration.text()}")
        if duration.cpu:
            text.append(f"\n{CPU_NOTE}", style="dim")
    if count_note:
        text.append(f"\n{count_note}", style="yellow")
    return text
