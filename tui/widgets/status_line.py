"""The one-line provider status: name, kind, base URL, masked key and the embedded server state."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from tui.core.provider.connection import Connection


class ProviderStatus(Static):
    """Shows which provider the app talks to; the key only ever appears masked."""

    connection: reactive[Connection | None] = reactive(None)
    """The provider in use (None while connecting or after a failure)."""
    state: reactive[str] = reactive("connecting")
    """connecting, connected or failed."""
    error: reactive[str] = reactive("")
    """Why the connection failed."""

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("provider ", style="dim")
        if self.state == "connecting":
            text.append("connecting…", style="italic")
            return text
        if self.state == "failed" or self.connection is None:
            text.append("unavailable ", style="bold red")
            text.append(self.error, style="red")
            return text
        c = self.connection
        text.append(c.name, style="bold")
        text.append(f" · {c.kind} · ", style="dim")
        text.append(c.base_url)
        text.append(" · key ", style="dim")
        text.append(c.masked_key)
        if c.server is not None:
            text.append(" · server ", style="dim")
            text.append("● running", style="green")
        return text
