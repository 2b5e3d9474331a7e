"""The keys of the app and of every pane, from their BINDINGS (so remapped keys show too)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


def key_text(binding: Binding, keymap: dict[str, str]) -> str:
    """The keys of a binding as the user sees them (keymap overrides applied)."""
    keys = keymap.get(binding.id, binding.key) if binding.id else binding.key
    return binding.key_display or ", ".join(k.strip() for k in keys.split(","))


def bindings_table(sections: Sequence[tuple[str, Iterable[Binding]]],
                   keymap: dict[str, str]) -> Table:
    """One table: a header row per section, then key, action and what it does."""
    table = Table(box=None, expand=True, show_header=False, padding=(0, 1))
    table.add_column("key", style="bold", no_wrap=True, width=12)
    table.add_column("action", no_wrap=True)
    table.add_column("help", style="dim", ratio=1)
    for title, bindings in sections:
        table.add_row(Text(title, style="bold reverse"), "", "")
        for binding in bindings:
            table.add_row(key_text(binding, keymap), binding.description, binding.tooltip)
    return table


class HelpScreen(ModalScreen[None]):
    """Every key, grouped by pane; escape or q closes it."""

    BINDINGS = [Binding("escape,q,f1,question_mark", "dismiss", "Close", id="help.close",
                        tooltip="Close the help")]

    def __init__(self, sections: Sequence[tuple[str, Iterable[Binding]]],
                 keymap: dict[str, str]) -> None:
        super().__init__(classes="dialog-screen")
        self.sections = [(title, list(bindings)) for title, bindings in sections]
        """(section title, bindings) pairs in display order."""
        self.keymap = keymap
        """Remapped keys by binding id."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Label("Keys  (ctrl+p: every action by name)", classes="dialog-question")
            with VerticalScroll(id="help-scroll"):
                yield Static(bindings_table(self.sections, self.keymap))

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()
