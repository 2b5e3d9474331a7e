"""Worker failures take one path: a worker raises, the one handler (tui.widgets.failures) hands
the described error to the show_failure of the widget that ran it, which puts it on its status
line and in a notification; nothing else catches it, and no key is ever in the text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.widgets import Label

from tests.app.helpers import keep_once, wait_until
from tests.app.panes_support import NO_SERVER, no_local_server, workers_idle
from tui.app import SqltuneApp
from tui.core.evaluation.report import EvalReport
from tui.core.provider.providers import register_secret
from tui.core.session import Session
from tui.widgets.evaluation import EvaluationPane
from tui.widgets.failures import WorkFailed, failure_text
from tui.widgets.file_list import FileList
from tui.widgets.pane import Pane

SIZE = (100, 24)


class NotesPane(Pane):
    """A pane whose one worker reads the file the session names (missing in these tests)."""

    PANE_ID = "notes"
    PANE_TITLE = "Notes"

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.shown: list[WorkFailed] = []
        """Every failure show_failure was given."""

    def compose(self) -> ComposeResult:
        yield Label("", id="notes-state")

    def after_first_frame(self) -> None:
        self.read_notes()

    @work(thread=True, exit_on_error=False)
    def read_notes(self) -> None:
        """Read the notes (raises: nothing here catches)."""
        assert self.session.data is not None
        self.session.data.read_text()

    def show_failure(self, failure: WorkFailed) -> None:
        self.shown.append(failure)
        self.query_one("#notes-state", Label).update(failure.error)
        super().show_failure(failure)


def app_with(pane: type[Pane], data: Path | None = None) -> SqltuneApp:
    return SqltuneApp(Session(data=data, provider=None, start_local=no_local_server),
                      panes=[pane])


def errors(app: SqltuneApp) -> list[tuple[str, str]]:
    return [(n.title, n.message) for n in app._notifications if n.severity == "error"]


async def test_a_pane_worker_that_raises_is_shown_once_through_the_one_handler(
        tmp_path: Path) -> None:
    missing = tmp_path / "notes.txt"
    seen: list[Any] = []
    app = app_with(NotesPane, missing)
    async with app.run_test(size=SIZE, message_hook=keep_once(seen)) as pilot:
        pane = app.query_one(NotesPane)
        await wait_until(pilot, lambda: pane.shown, what="the failure")
        await workers_idle(pilot)
        await pilot.pause()
        text = f"No such file or directory ({missing})"
        assert [(f.node, f.operation, f.error) for f in pane.shown] == [
            (pane, "read_notes", text)]
        assert str(pane.query_one("#notes-state", Label).render()) == text
        assert ("Notes", text) in errors(app)
        # The app's own worker (the provider) failed through the same path, shown by the app.
        failures = [m for m in seen if isinstance(m, WorkFailed)]
        assert sorted((f.operation, f.node is app) for f in failures) == [
            ("connect_provider", True), ("read_notes", False)]
        assert any(title == "Provider unavailable" and NO_SERVER in message
                   for title, message in errors(app))


async def test_the_files_pane_shows_a_failed_listing_on_its_state_line() -> None:
    seen: list[Any] = []
    app = app_with(FileList)
    async with app.run_test(size=SIZE, message_hook=keep_once(seen)) as pilot:
        pane = app.query_one(FileList)
        state = pane.query_one("#files-state", Label)
        await wait_until(pilot, lambda: NO_SERVER in str(state.render()), what="the state line")
        listing = [m for m in seen if isinstance(m, WorkFailed) and m.node is pane]
        assert [m.operation for m in listing] == ["list_files"]
        assert NO_SERVER in listing[0].error
        assert ("Files", listing[0].error) in errors(app)


def test_failure_text_describes_and_never_holds_a_key(tmp_path: Path) -> None:
    key = "sk-failure-test-0123456789abcdef"
    register_secret(key)
    assert failure_text(RuntimeError(f"refused {key}")) == "refused sk-…cdef"
    denied = PermissionError(13, "Permission denied", str(tmp_path / "results.csv"))
    assert failure_text(denied) == f"Permission denied ({tmp_path / 'results.csv'})"
    error = ValueError("no checkpoints")
    error.add_note("the job itself succeeded")
    assert failure_text(error) == "no checkpoints (the job itself succeeded)"
    assert failure_text(KeyError()) == "KeyError"


async def test_a_report_that_cannot_be_written_is_named_in_one_notification(
        tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the export folder would go")
    target = blocker / "report.csv"
    seen: list[Any] = []
    app = app_with(EvaluationPane)
    async with app.run_test(size=SIZE, message_hook=keep_once(seen)) as pilot:
        pane = app.query_one(EvaluationPane)
        pane.export_report(EvalReport(rows=[], model="m", total=0), [target])
        await wait_until(pilot, lambda: any(title == "Export" for title, _ in errors(app)),
                         what="the export's failure")
        failures = [m for m in seen if isinstance(m, WorkFailed) and m.node is pane]
        assert [m.operation for m in failures if m.operation == "export_report"] == [
            "export_report"]
        assert ("Export", f"Cannot write: File exists ({blocker})") in errors(app)
        assert not target.exists() and not any(isinstance(m, EvaluationPane.Exported)
                                               for m in seen)
