"""The base of every tab in the app, and the session state the panes share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeGuard

from textual import on
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Select, TextArea

StartLocal = Callable[..., Any]
"""Finds (or starts) the local server; returns an object with base_url, api_key and stop()."""


class ProviderUnavailable(Exception):
    """No provider could be resolved or reached (the message never holds a key)."""


@dataclass
class Connection:
    """A resolved provider and its client, as the panes use it."""

    name: str
    """Profile name (``local`` for the embedded server)."""
    kind: str
    """openai, azure, compatible or local."""
    base_url: str
    """Where requests go."""
    masked_key: str
    """The API key, masked: the only form of it the UI ever holds."""
    client: Any = field(repr=False)
    """``openai.AsyncOpenAI`` (or Azure) client."""
    resolved: Any = field(default=None, repr=False)
    """The core ``ResolvedProvider`` behind it."""
    server: Any = field(default=None, repr=False)
    """The local server endpoint when the provider is local (its keep-alive ends on exit or
    switch; the background server itself goes on running jobs)."""

    @property
    def is_local(self) -> bool:
        """True for the embedded local server."""
        return self.kind == "local"

    def close(self) -> None:
        """Let go of the local server (its keep-alive; the server keeps running jobs)."""
        if self.resolved is not None:
            self.resolved.close()


def connect(name: str | None, start_local: StartLocal | None) -> Connection:
    """Resolve the provider and make its client (blocking: run it in a thread worker).

    Imports the openai SDK here, never at module level: it costs half a second of start-up.
    """
    from tui.core.providers import install_secret_redaction, make_async_client, resolve_provider

    install_secret_redaction()  # every key resolved below is masked in any log record
    resolved = resolve_provider(name, start_local=start_local)
    try:
        client = make_async_client(resolved)
    except Exception:
        resolved.close()
        raise
    follow = getattr(resolved.local, "on_moved", None)
    if follow is not None:  # the background server came back on another port: go there
        follow(lambda url: setattr(client, "base_url", url))
    where = resolved.base_url or resolved.profile.endpoint or ""
    return Connection(name=resolved.name, kind=resolved.kind, base_url=where,
                      masked_key=resolved.masked_key, client=client, resolved=resolved,
                      server=resolved.local)


class Session:
    """What every pane shares: the dataset to open and the provider connection."""

    def __init__(self, *, data: Path | None, provider: str | None,
                 start_local: StartLocal | None) -> None:
        self.data = data
        """--data: a Spider folder or a JSONL file (None: the demo data)."""
        self.provider_name = provider
        """--provider: the profile asked for (None: the default resolution)."""
        self.start_local = start_local
        """Starter of the embedded server, passed in by the CLI or a test."""
        self.connection: Connection | None = None
        """The provider in use, once connected."""
        self.error: str | None = None
        """Why the last connection attempt failed."""
        self.last_export: Path | None = None
        """The JSONL the token meter exported last (the upload default)."""
        self._settled = asyncio.Event()

    def settle(self, connection: Connection | None, error: str | None = None) -> None:
        """Record the outcome of a connection attempt and wake whoever waits for a client."""
        self.connection = connection
        self.error = error
        self._settled.set()

    def unsettle(self) -> None:
        """A new connection attempt started (provider switch): waiters block again."""
        self._settled = asyncio.Event()

    async def client(self) -> Any:
        """The provider's client, waiting for the connection; raises ProviderUnavailable."""
        await self._settled.wait()
        if self.connection is None:
            raise ProviderUnavailable(self.error or "no provider connected")
        return self.connection.client


def is_text_field(widget: Widget | None) -> TypeGuard[Input | TextArea]:
    """True for a widget that types what it is given (an Input, an editable TextArea)."""
    return isinstance(widget, Input) or (isinstance(widget, TextArea) and not widget.read_only)


class Pane(Vertical, can_focus=False):
    """One tab of the app. Subclasses set PANE_ID, PANE_TITLE and their BINDINGS."""

    PANE_ID: ClassVar[str] = "pane"
    """Stable id: the tab is ``tab-<PANE_ID>``; binding ids start with it."""
    PANE_TITLE: ClassVar[str] = "Pane"
    """Tab label."""
    MAIN_WIDGET: ClassVar[str | None] = None
    """Selector of the widget focus goes back to when a text field is left (escape, or enter
    in a one-line field). None: the first focusable widget that is not a form field."""

    def __init__(self, session: Session) -> None:
        super().__init__(id=f"pane-{self.PANE_ID}", classes="pane")
        self.session = session
        """Shared state: data path, provider connection, last export."""

    @classmethod
    def short_title(cls) -> str:
        """Tab label when the full labels do not fit the width (``Dataset`` -> ``Data``)."""
        return cls.PANE_TITLE if len(cls.PANE_TITLE) <= 6 else cls.PANE_TITLE[:4]

    @classmethod
    def pane_bindings(cls) -> Iterator[Binding]:
        """The pane's own bindings (for help and the command palette)."""
        for binding in cls.BINDINGS:
            if isinstance(binding, Binding):
                yield binding

    def focus_default(self) -> None:
        """Focus the pane's main widget when its tab is shown."""
        for widget in self.query("*"):
            if widget.focusable:
                widget.focus()
                return

    # ── text fields: typing stays in the field; escape (or enter in one line) leaves it ──

    def main_widget(self) -> Widget | None:
        """The widget focus goes back to when a text field is left (override for per-side
        targets)."""
        if self.MAIN_WIDGET is not None:
            return self.query_one(self.MAIN_WIDGET)
        fields = (Input, TextArea, Select)
        return next((w for w in self.query("*") if w.focusable and not isinstance(w, fields)
                     and not any(isinstance(a, Select) for a in w.ancestors)), None)

    def leave_field(self) -> None:
        """Leave the text field: focus the pane's main widget (nothing focused if it has none,
        so the pane keys 1-9 work again)."""
        target = self.main_widget()
        if target is not None and target.focusable:
            target.focus()
        else:
            self.screen.set_focus(None)

    def escape_is_mine(self) -> bool:
        """True while the pane's own escape action (stop what runs) comes before leaving a text
        field; the footer then shows that action on escape."""
        return False

    @on(Input.Submitted)
    def _field_committed(self, event: Input.Submitted) -> None:
        """Enter commits a one-line field and hands focus back to the pane's main widget.

        Runs after the subclass's own handler (which may call ``event.prevent_default()`` to keep
        the focus); a focus the subclass moved elsewhere (a dialog, the next field) is kept."""
        field = event.input

        def hand_back() -> None:
            if field.is_mounted and self.app.focused is field:
                self.leave_field()

        self.app.call_later(hand_back)

    def after_first_frame(self) -> None:
        """The app's first frame is on screen: start slow work here (override)."""

    def provider_changed(self) -> None:
        """The provider connection changed (override to reload provider data)."""

    def session_changed(self, fact: Message) -> None:
        """Another pane posted a cross-pane fact (tui.messages); override to react."""
