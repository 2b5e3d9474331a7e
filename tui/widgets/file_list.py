"""The file list pane (placeholder until the files service lands)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from tui.widgets.pane import Pane


class FileList(Pane):
    """Files on the provider."""

    PANE_ID = "files"
    PANE_TITLE = "Files"

    def compose(self) -> ComposeResult:
        yield Static("files")
