"""The sqltune Textual app: tabs of panes, a provider status line, help and a command palette."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import ActiveBinding, Binding
from textual.css.query import NoMatches
from textual.events import Resize
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import AwaitMount
from textual.widgets import Footer, Header, TabbedContent, TabPane, Tabs

from tui.core.provider.connection import Connection, StartLocal, open_connection
from tui.core.session import Session
from tui.messages import (
    DatasetExported,
    FileUploaded,
    JobCreated,
    JobEnded,
    ProviderConnected,
)
from tui.screens.help import HelpScreen
from tui.widgets.failures import ShowsWorkFailures, WorkFailed
from tui.widgets.lazy_pane import LazyPane, PaneKind, pane_class
from tui.widgets.palette import PaneCommands
from tui.widgets.pane import Pane, is_text_field
from tui.widgets.status_line import ProviderStatus

# ── Panes ────────────────────────────────────────────────────────────────────────────────
# Tab order is key order (1, 2, 3…). To add a pane: append a LazyPane naming its class, id and
# title. The first pane's module is imported for the first frame, the others' right after it.
PANES: list[PaneKind] = [
    LazyPane("tui.widgets.dataset_preview:DatasetPreview", "dataset", "Dataset"),
    LazyPane("tui.widgets.token_meter:TokenMeter", "budget", "Budget"),
    LazyPane("tui.widgets.file_list:FileList", "files", "Files"),
    LazyPane("tui.widgets.job_events:JobsPane", "jobs", "Jobs"),
    LazyPane("tui.widgets.playground:PlaygroundPane", "playground", "Playground"),
    LazyPane("tui.widgets.evaluation:EvaluationPane", "evaluation", "Evaluate"),
]
# ─────────────────────────────────────────────────────────────────────────────────────────

MAX_PANES = 9
"""Keys 1-9 switch panes; only as many as PANES holds are active."""


class PanesScreen(Screen[Any]):
    """The app's main screen: while a text field has focus the footer starts with how to leave
    it (the field types 1-9 and letters; escape hands the keys back)."""

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        bindings = super().active_bindings
        leave = bindings.get("escape")
        if leave is not None and leave.binding.action == "leave_field":
            return {"escape": leave, **bindings}
        return bindings


class SqltuneApp(App[int], ShowsWorkFailures):
    """The cockpit: dataset preview, token budget, files, jobs (and the panes added later)."""

    CSS_PATH = "app.tcss"
    TITLE = "sqltune"
    COMMANDS = App.COMMANDS | {PaneCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS: ClassVar[list[Any]] = [
        Binding("f1,question_mark", "help", "Help", id="app.help",
                tooltip="Every key of the app and its panes"),
        Binding("f2", "switch_provider", "Provider", id="app.provider",
                tooltip="Switch to another provider profile from config.toml"),
        Binding("escape", "leave_field", "Leave field", id="app.leave_field", priority=True,
                tooltip="Leave the text field (enter also does, after committing a one-line "
                        "field); the pane keys work again"),
        *(Binding(str(n), f"show_pane({n - 1})", f"Pane {n}", show=False,
                  id=f"app.pane_{n}", tooltip=f"Show pane {n}")
          for n in range(1, MAX_PANES + 1)),
    ]

    def __init__(self, session: Session, panes: Sequence[PaneKind] | None = None) -> None:
        super().__init__()
        self.session = session
        """Data path, provider connection and last export, shared with every pane."""
        self._panes = list(PANES if panes is None else panes)
        self._retired: list[Any] = []
        """Clients of providers switched away from, closed once the panes have moved on."""
        self._mounting: dict[int, AwaitMount] = {}
        """Pane widgets by tab index, mounted or on their way (only the first is composed
        before the first frame)."""

    # ── layout ──────────────────────────────────────────────────────────────────────────

    def get_default_screen(self) -> Screen[Any]:
        return PanesScreen(id="_default")

    def compose(self) -> ComposeResult:
        yield Header(icon="◆")
        with TabbedContent(id="panes"):
            for index, pane in enumerate(self._panes):
                with TabPane(f"{index + 1} {pane.PANE_TITLE}", id=f"tab-{pane.PANE_ID}"):
                    if index == 0:  # the others are mounted after the first frame (on_ready)
                        yield pane(self.session)
        yield ProviderStatus(id="provider-status")
        yield Footer(id="footer")

    def on_mount(self) -> None:
        self._fit_tab_labels(self.size.width)
        self.sub_title = self._data_label()
        # Keys 1-9 switch tabs: the tab strip stays out of the focus chain.
        self.query_one("#panes > Tabs", Tabs).can_focus = False
        if self._panes:
            self.pane(self._panes[0].PANE_ID).focus_default()

    async def on_ready(self) -> None:
        """The first frame is on screen: now the slow work (provider, datasets, token counts),
        and the panes in the tabs behind the first."""
        self.connect_provider(self.session.provider_name)
        if self._panes:
            self.pane(self._panes[0].PANE_ID).after_first_frame()
        try:
            await self._mount_panes()
        finally:
            if not gc.isenabled():  # tui.cli.main kept the collector off until now
                gc.freeze()  # what start-up built lives as long as the app: never scan it
                gc.enable()
        for pane in self.panes()[1:]:
            pane.after_first_frame()

    def on_resize(self, event: Resize) -> None:
        self._fit_tab_labels(event.size.width)

    def _fit_tab_labels(self, width: int) -> None:
        """Full tab labels when they all fit, else short ones (``1 Data  2 Budget  5 Play``):
        a narrow terminal never shows a tab cut at its start."""
        full = [f"{i + 1} {pane.PANE_TITLE}" for i, pane in enumerate(self._panes)]
        fits = sum(len(label) + 2 for label in full) <= width  # a tab pads its label by 1+1
        labels = full if fits else [f"{i + 1} {pane.short_title()}"
                                    for i, pane in enumerate(self._panes)]
        tabs = self.query_one(TabbedContent)
        for pane, label in zip(self._panes, labels, strict=True):
            tab = tabs.get_tab(f"tab-{pane.PANE_ID}")
            if tab.label_text != label:
                tab.label = label

    def _data_label(self) -> str:
        data = self.session.data
        return "demo data" if data is None else str(data)

    def pane_classes(self) -> list[type[Pane]]:
        """The pane classes in tab order (for the palette and help)."""
        return [pane_class(pane) for pane in self._panes]

    def panes(self) -> list[Pane]:
        """The mounted pane widgets, in tab order."""
        return list(self.query(Pane))

    def pane(self, pane_id: str) -> Pane:
        """The pane with this PANE_ID (mounted now if the first frame left it out)."""
        index = next((i for i, pane in enumerate(self._panes) if pane_id == pane.PANE_ID), None)
        if index is not None:
            self._mount_pane(index)
        return self.query_one(f"#pane-{pane_id}", Pane)

    def _mount_pane(self, index: int) -> AwaitMount:
        """Mount the pane at ``index`` in its tab unless it is there; what to await for it."""
        if index not in self._mounting:
            pane = self._panes[index]
            tab = self.query_one(f"#tab-{pane.PANE_ID}", TabPane)
            found = [child for child in tab.children if isinstance(child, Pane)]
            if not (found or tab.is_attached):
                return AwaitMount(tab, [])  # the app is closing: nothing more to mount
            self._mounting[index] = AwaitMount(tab, found) if found else tab.mount(
                pane(self.session))
        return self._mounting[index]

    async def _mount_panes(self) -> None:
        """Mount every pane the first frame left out, and wait until they are."""
        lazy = [pane for pane in self._panes if isinstance(pane, LazyPane)]
        await asyncio.to_thread(lambda: [pane.load() for pane in lazy])  # off the event loop
        try:
            for mounting in [self._mount_pane(index) for index in range(len(self._panes))]:
                await mounting
        except NoMatches:  # the app closed while the modules were imported: its tabs are gone
            return

    # ── actions ─────────────────────────────────────────────────────────────────────────

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":
            pane = self._pane_of_text_field()
            return pane is not None and not pane.escape_is_mine()
        if action == "show_pane" and parameters:
            index = parameters[0]
            return isinstance(index, int) and index < len(self._panes)
        return True

    def action_show_pane(self, index: int) -> None:
        """Show the pane at ``index`` and focus its main widget."""
        if 0 <= index < len(self._panes):
            self.query_one(TabbedContent).active = f"tab-{self._panes[index].PANE_ID}"
            mounting = self._mount_pane(index)
            pane = self.pane(self._panes[index].PANE_ID)
            if pane.is_mounted:
                pane.focus_default()
                return

            async def focus_when_mounted() -> None:  # shown before the first frame was out
                await mounting
                pane.focus_default()

            self.call_later(focus_when_mounted)

    def _pane_of_text_field(self) -> Pane | None:
        """The pane holding the focused text field (None in a dialog or outside a field)."""
        focused = self.focused
        if not is_text_field(focused) or not isinstance(self.screen, PanesScreen):
            return None
        return next((node for node in focused.ancestors if isinstance(node, Pane)), None)

    def action_leave_field(self) -> None:
        """Leave the text field for the pane's main widget."""
        pane = self._pane_of_text_field()
        if pane is not None:
            pane.leave_field()

    async def run_pane_action(self, pane_id: str, action: str) -> None:
        """Show a pane, then run one of its actions (the palette's entries)."""
        index = next(i for i, p in enumerate(self._panes) if pane_id == p.PANE_ID)
        self.action_show_pane(index)
        await self.pane(pane_id).run_action(action)

    def action_help(self) -> None:
        """Show every key of the app and of each pane."""
        titles = ", ".join(f"{i + 1} {p.PANE_TITLE}" for i, p in enumerate(self._panes))
        app_keys = [
            Binding(f"1-{len(self._panes)}", "", "Switch pane", tooltip=titles),
            *(b for b in self.BINDINGS
              if isinstance(b, Binding) and not (b.id or "").startswith("app.pane_")),
            Binding("ctrl+p", "", "Command palette", tooltip="Every action by name"),
            Binding("ctrl+q", "", "Quit", tooltip="Jobs go on in the local server"),
        ]
        sections = [("App", app_keys)]
        sections += [(p.PANE_TITLE, list(p.pane_bindings())) for p in self._panes]
        self.push_screen(HelpScreen(sections, dict(self._keymap)))

    def action_switch_provider(self) -> None:
        """Pick another provider profile (keys stay masked)."""
        from tui.screens.provider_switcher import ProviderSwitcher

        current = self.session.connection.name if self.session.connection else None
        self.push_screen(ProviderSwitcher(current), self._switch_provider_to)

    def _switch_provider_to(self, name: str | None) -> None:
        if name is None:
            return
        old = self.session.connection
        if old is not None:
            self._retired.append(old.client)
        self.session.unsettle()
        self.query_one(ProviderStatus).state = "connecting"
        self.connect_provider(name, old)

    def get_system_commands(self, screen: Screen[Any]) -> Any:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help: keys", "Every key of the app and its panes", self.action_help)
        yield SystemCommand("Switch provider", "Pick a provider profile from config.toml",
                            self.action_switch_provider)

    # ── provider ────────────────────────────────────────────────────────────────────────

    @work(exclusive=True, group="provider", exit_on_error=False)
    async def connect_provider(self, name: str | None, old: Connection | None = None) -> None:
        """Resolve the provider (maybe starting the embedded server) off the event loop: a
        later switch or quitting cancels the wait at once; a failure reaches show_failure."""
        if old is not None:
            await asyncio.to_thread(old.close)  # ends its keep-alive thread (a join)
        self.post_message(ProviderConnected(await open_connection(name,
                                                                  self.session.start_local)))

    def on_provider_connected(self, message: ProviderConnected) -> None:
        connection: Connection = message.connection
        self.session.settle(connection)
        for status in self.query(ProviderStatus):  # none once the app is shutting down
            status.connection, status.state = connection, "connected"
        for pane in self.panes():
            pane.provider_changed()
        self._close_retired()

    def show_failure(self, failure: WorkFailed) -> None:
        if failure.operation != "connect_provider":
            super().show_failure(failure)
            return
        self.session.settle(None, failure.error)
        for status in self.query(ProviderStatus):  # none once the app is shutting down
            status.connection, status.error, status.state = None, failure.error, "failed"
        self.notify(failure.error, title="Provider unavailable", severity="error", markup=False)
        for pane in self.panes():
            pane.provider_changed()
        self._close_retired()

    def _close_retired(self) -> None:
        """Close the old provider's HTTP client (its connections) after the panes let go."""
        retired, self._retired = self._retired, []

        async def close() -> None:
            for client in retired:
                with contextlib.suppress(Exception):
                    await client.close()

        if retired:
            self.run_worker(close(), group="provider-close", exit_on_error=False)

    async def on_unmount(self) -> None:
        connection, self.session.connection = self.session.connection, None
        if connection is not None:
            await connection.aclose()

    # ── cross-pane facts ────────────────────────────────────────────────────────────────

    @on(DatasetExported)
    @on(FileUploaded)
    @on(JobCreated)
    @on(JobEnded)
    def _relay_fact(self, message: Message) -> None:
        """One pane posted a fact; record it, then tell every pane (data down, events up)."""
        if isinstance(message, DatasetExported):
            self.session.last_export = message.train
        if isinstance(message, JobEnded):
            self._ring_for_job(message)
        for pane in self.panes():
            pane.session_changed(message)

    def _ring_for_job(self, message: JobEnded) -> None:
        self.bell()
        severity: SeverityLevel = "information" if message.status == "succeeded" else "warning"
        model = f": {message.fine_tuned_model}" if message.fine_tuned_model else ""
        self.notify(f"{message.job_id} {message.status}{model}", title="Job ended",
                    severity=severity, timeout=10)


def make_app(*, data: Path | None = None, provider: str | None = None,
             start_local: StartLocal | None = None) -> SqltuneApp:
    """The app as the CLI and the tests build it (nothing slow happens before the first frame)."""
    return SqltuneApp(Session(data=data, provider=provider, start_local=start_local))
