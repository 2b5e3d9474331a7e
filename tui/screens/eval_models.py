"""Pick the models to evaluate: the provider's list (fine-tuned ones too) or names typed in."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, SelectionList
from textual.widgets.selection_list import Selection


def typed_models(text: str) -> list[str]:
    """Model names typed in, separated by commas or spaces."""
    return [name for name in re.split(r"[,\s]+", text.strip()) if name]


class ModelPicker(ModalScreen[list[str] | None]):
    """Space toggles a listed model; enter on the name field (or ctrl+s) confirms; esc backs out."""

    DEFAULT_CSS = """
    #eval-models-list { height: auto; max-height: 12; }
    """
    BINDINGS: ClassVar[list[Any]] = [
        Binding("escape", "cancel", "Back", id="eval_models.back", tooltip="Keep the old choice"),
        Binding("ctrl+s", "confirm", "Use these", id="eval_models.confirm",
                tooltip="Evaluate the ticked and typed models"),
    ]

    def __init__(self, models: Sequence[str], chosen: Sequence[str]) -> None:
        super().__init__(classes="dialog-screen")
        self.models = list(dict.fromkeys(models))
        """Models the provider lists (and models evaluated before)."""
        self.chosen = list(chosen)
        """The current choice (ticked, or typed when not listed)."""

    def compose(self) -> ComposeResult:
        listed = set(self.models)
        with Vertical(classes="dialog", id="eval-models-dialog"):
            yield Label("Models to evaluate (one run each, in order)", classes="dialog-question")
            yield SelectionList[str](
                *(Selection(name, name, name in self.chosen) for name in self.models),
                id="eval-models-list")
            yield Label("other models (any name the provider serves)")
            yield Input(", ".join(m for m in self.chosen if m not in listed),
                        placeholder="e.g. ft:gpt-4o-mini:org::abc, gpt-4.1-mini",
                        id="eval-models-other", compact=True)
            yield Label("space: tick · tab: name field · enter/ctrl+s: use · esc: back",
                        classes="dialog-hint")

    def on_mount(self) -> None:
        target = "#eval-models-list" if self.models else "#eval-models-other"
        self.query_one(target).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def action_confirm(self) -> None:
        """Use the ticked models, then the typed ones."""
        ticked = list(self.query_one("#eval-models-list", SelectionList).selected)
        typed = typed_models(self.query_one("#eval-models-other", Input).value)
        chosen = list(dict.fromkeys([*ticked, *typed]))
        if not chosen:
            self.notify("Tick a model or type a name", severity="warning")
            return
        self.dismiss(chosen)

    def action_cancel(self) -> None:
        """Keep the previous choice."""
        self.dismiss(None)
