"""Pick the models to evaluate: the provider's list (fine-tuned ones too) or names typed in."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from rich.segment import Segment
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widgets import Input, Label, SelectionList
from textual.widgets.option_list import OptionDoesNotExist
from textual.widgets.selection_list import Selection


def typed_models(text: str) -> list[str]:
    """Model names typed in, separated by commas or spaces."""
    return [name for name in re.split(r"[,\s]+", text.strip()) if name]


class ModelChecklist(SelectionList[str]):
    """The listed models, each drawn ``[x]`` when ticked and ``[ ]`` when not (not by colour
    alone); space ticks, enter uses the ticked models."""

    BINDINGS: ClassVar[list[Any]] = [
        Binding("enter", "screen.confirm", "Use these", show=False,
                id="eval_models.use", tooltip="Evaluate the ticked and typed models"),
    ]

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        try:
            selection = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return strip
        if len(segments) < 3:
            return strip
        mark = "x" if selection.value in self.selected else " "
        left, inner, right = segments[:3]
        return Strip([Segment("[", left.style), Segment(mark, inner.style),
                      Segment("]", right.style), *segments[3:]], strip.cell_length)


class ModelPicker(ModalScreen[list[str] | None]):
    """Space ticks a listed model; enter (or ctrl+s) uses the ticked and typed ones; esc backs
    out."""

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
            yield ModelChecklist(
                *(Selection(name, name, name in self.chosen) for name in self.models),
                id="eval-models-list")
            yield Label("other models (any name the provider serves)")
            yield Input(", ".join(m for m in self.chosen if m not in listed),
                        placeholder="e.g. ft:gpt-4o-mini:org::abc, gpt-4.1-mini",
                        id="eval-models-other", compact=True)
            yield Label("space: tick · enter or ctrl+s: use these · tab: name field · "
                        "esc: back", classes="dialog-hint")

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
