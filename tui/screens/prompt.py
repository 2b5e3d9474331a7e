"""A one-field modal: a job id to attach to, a path to upload, a file name to export to."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line of text; enter submits it, escape dismisses with None."""

    BINDINGS = [Binding("escape", "dismiss_none", "Back", id="prompt.back", tooltip="Close")]

    def __init__(self, title: str, *, value: str = "", placeholder: str = "",
                 hint: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        """What the field is for."""
        self.value = value
        """Initial text."""
        self.placeholder = placeholder
        """Shown while the field is empty."""
        self.hint = hint
        """A line of help under the field."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-question")
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input", compact=True)
            if self.hint:
                yield Label(self.hint, classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        self.dismiss(value or None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
