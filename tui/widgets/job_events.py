"""The jobs pane (placeholder until the jobs service lands)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from tui.widgets.pane import Pane


class JobsPane(Pane):
    """Fine-tuning jobs."""

    PANE_ID = "jobs"
    PANE_TITLE = "Jobs"

    def compose(self) -> ComposeResult:
        yield Static("jobs")
