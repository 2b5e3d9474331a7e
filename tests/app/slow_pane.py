"""A pane whose module takes a while to import (a stand-in for a heavy pane, in tests)."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.widgets import Static

from tui.widgets.pane import Pane

time.sleep(0.5)


class SlowPane(Pane):
    """Says hello, after a slow import."""

    PANE_ID = "slow"
    PANE_TITLE = "Slow"

    def compose(self) -> ComposeResult:
        yield Static("slow pane")
