"""The token meter pane (placeholder)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from tui.widgets.pane import Pane


class TokenMeter(Pane):
    """Token budget."""

    PANE_ID = "budget"
    PANE_TITLE = "Budget"

    def compose(self) -> ComposeResult:
        yield Static("budget")
