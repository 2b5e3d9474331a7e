"""The file list pane: files on the provider, upload with progress and cancel, content, delete."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable, Label, ProgressBar, Select, Static

from tui.core.elide import elide_middle
from tui.core.finetune.files import human_size
from tui.messages import DatasetExported, FileUploaded
from tui.widgets.pane import Pane

if TYPE_CHECKING:
    from tui.core.finetune.files import FileInfo, FileService
    from tui.core.session import Session
    from tui.widgets.failures import WorkFailed

PURPOSES = ("fine-tune", "fine-tune-results", "batch", "assistants", "user_data", "evals")
"""Purposes offered by the filter."""
WIDE = 120
"""From this table width on, purposes and creation dates are shown in full."""


def created_text(created_at: int, *, year: bool = True) -> str:
    """UTC creation time to the second (two uploads a minute apart, or less, differ)."""
    when = dt.datetime.fromtimestamp(created_at, tz=dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S" if year else "%m-%d %H:%M:%S")


COLUMNS = ("name", "id", "purpose", "size", "created", "status")
"""The table's columns, in order."""
KEEP_FIRST = ("created", "status", "purpose", "size")
"""Besides the name and the id, which columns a narrow table keeps first (whole, never cut)."""


def file_columns(width: int, longest_id: int = 29) -> dict[str, int]:
    """Column widths for a table ``width`` cells wide, in table order: the columns that fit
    whole, then the name and the id share the rest (the id up to its full length)."""
    wide = width >= WIDE
    wanted = {"purpose": 17 if wide else 9, "size": 8, "created": 19 if wide else 14,
              "status": 9}

    def free(kept: dict[str, int]) -> int:  # cell padding (1+1 each), a scrollbar (2)
        return width - 2 * (len(kept) + 2) - sum(kept.values()) - 2

    kept: dict[str, int] = {}
    for key in KEEP_FIRST:
        if free({**kept, key: wanted[key]}) >= 22:  # room for a 12-cell name, a 10-cell id
            kept[key] = wanted[key]
    rest = free(kept)
    id_width = min(longest_id, max(10, rest * 2 // 5))
    widths = {"name": max(12, rest - id_width), "id": id_width, **kept}
    return {key: widths[key] for key in COLUMNS if key in widths}


class FileList(Pane):
    """Files with name, purpose, size, created and status."""

    PANE_ID = "files"
    PANE_TITLE = "Files"
    BINDINGS: ClassVar[list[Any]] = [
        Binding("u", "upload", "Upload", id="files.upload",
                tooltip="Validate, then upload a JSONL (default: the last export)"),
        Binding("v,enter", "view", "View", id="files.view",
                tooltip="Show the first lines of the highlighted file"),
        Binding("delete,D", "delete", "Delete", id="files.delete", key_display="del",
                tooltip="Delete the highlighted file (asks first)"),
        Binding("f", "filter_purpose", "Purpose", id="files.purpose",
                tooltip="Show only files of one purpose"),
        Binding("r", "refresh", "Refresh", id="files.refresh", tooltip="Reload the list"),
        Binding("c", "cancel_upload", "Cancel upload", id="files.cancel",
                tooltip="Stop the upload in progress"),
    ]

    @dataclass
    class Listed(Message):
        """The provider's files were listed."""

        files: list[FileInfo]
        """Newest first."""

    @dataclass
    class UploadProgressed(Message):
        """Bytes sent so far (frequent: a newer one replaces an unhandled older one)."""

        sent: int
        """Bytes sent."""
        total: int
        """File size."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, FileList.UploadProgressed)

    @dataclass
    class UploadRefused(Message):
        """Validation refused the file before upload."""

        path: Path
        """The file."""
        errors: list[str]
        """One line per error."""

    @dataclass
    class UploadEnded(Message):
        """The upload finished, failed or was cancelled."""

        outcome: str
        """done, failed or cancelled."""
        error: str | None = None
        """Why it failed (never holds a key); None when refused by validation or not failed."""

    @dataclass
    class ContentRead(Message):
        """The first lines of a file."""

        file_id: str
        """The file."""
        lines: list[str]
        """Its first lines."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.files: list[FileInfo] = []
        """Files as last listed."""
        self._widths: dict[str, int] = {}
        self._cancel: asyncio.Event | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="filters"):
            yield Select[str]([(p, p) for p in PURPOSES], prompt="all purposes",
                              id="files-purpose", compact=True)
            yield Label("connecting…", id="files-state")
        table: DataTable[Any] = DataTable(id="files-table", cursor_type="row")
        yield table
        with Horizontal(id="files-upload", classes="filters"):
            yield Label("", id="files-upload-label")
            yield ProgressBar(id="files-progress", show_eta=False)
        with VerticalScroll(id="files-content", can_focus=True):
            yield Static("", id="files-content-text")

    def on_mount(self) -> None:
        self._lay_out_columns()
        self.query_one("#files-upload").display = False

    def on_resize(self) -> None:
        self._lay_out_columns()

    def _lay_out_columns(self) -> None:
        """Size the columns to the table's width (again when it changes), then fill the rows."""
        longest_id = max((len(info.id) for info in self.files), default=29)
        widths = file_columns(self.size.width or 80, longest_id)
        if widths == self._widths:
            return
        self._widths = widths
        keep = self._highlighted_id()
        table = self.query_one("#files-table", DataTable)
        table.clear(columns=True)
        for key, column_width in widths.items():
            label = "created (UTC)" if key == "created" else key
            table.add_column(label, key=key, width=column_width)
        self._fill_rows(keep)

    def focus_default(self) -> None:
        self.query_one("#files-table").focus()

    def provider_changed(self) -> None:
        # Rows of the old provider must not pass for the new one's while the list reloads.
        self.files = []
        self.query_one("#files-table", DataTable).clear()
        self.query_one("#files-content-text", Static).update("")
        self.action_refresh()

    def session_changed(self, fact: Message) -> None:
        if isinstance(fact, DatasetExported):
            self._set_state(f"last export: {fact.train.name} (u uploads it)")

    def _set_state(self, text: str, style: str = "") -> None:
        self.query_one("#files-state", Label).update(Text(text, style=style))

    async def _service(self) -> FileService:
        from tui.core.finetune.files import FileService

        client = await self.session.client()
        connection = self.session.connection
        capabilities = connection.resolved.capabilities if connection and connection.resolved \
            else None
        return FileService(client, capabilities=capabilities)

    # ── list ────────────────────────────────────────────────────────────────────────────

    def action_refresh(self) -> None:
        """Reload the list."""
        value = self.query_one("#files-purpose", Select).value
        self.list_files(value if isinstance(value, str) else None)

    @on(Select.Changed, "#files-purpose")
    def _purpose_changed(self) -> None:
        self.action_refresh()

    @work(exclusive=True, group="files-list", exit_on_error=False)
    async def list_files(self, purpose: str | None) -> None:
        """List the provider's files (an async worker on the openai SDK)."""
        files = await (await self._service()).list(purpose)
        self.post_message(self.Listed(files))

    def on_file_list_listed(self, message: Listed) -> None:
        self.files = message.files
        self._widths = {}
        self._lay_out_columns()
        count = len(message.files)
        self._set_state(f"{count} file{'s' if count != 1 else ''}")

    def _fill_rows(self, key: str | None) -> None:
        """One row per file (what tells two uploads of one file apart, id and time, included);
        the cursor stays on file ``key``."""
        table = self.query_one("#files-table", DataTable)
        table.clear()
        widths, year = self._widths, self._widths.get("created", 0) >= 19
        for info in self.files:
            status = info.status or "—"
            cells: dict[str, str | Text] = {
                "name": elide_middle(info.filename, widths["name"]),
                "id": elide_middle(info.id, widths["id"]),
                "purpose": elide_middle(info.purpose, widths.get("purpose", 0)),
                "size": human_size(info.bytes),
                "created": created_text(info.created_at, year=year),
                "status": Text(status, style="red" if status == "error" else "")}
            table.add_row(*(cells[column] for column in widths), key=info.id)
        if key is not None and key in table.rows:
            table.move_cursor(row=table.get_row_index(key), animate=False)

    def show_failure(self, failure: WorkFailed) -> None:
        self._set_state(failure.error, "bold red")
        super().show_failure(failure)

    def action_filter_purpose(self) -> None:
        """Open the purpose filter."""
        select = self.query_one("#files-purpose", Select)
        select.focus()
        select.expanded = True

    def _highlighted_id(self) -> str | None:
        table = self.query_one("#files-table", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value

    # ── upload ──────────────────────────────────────────────────────────────────────────

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_upload":
            return self._cancel is not None
        if action == "upload":
            return self._cancel is None
        return True

    def action_upload(self) -> None:
        """Ask for the file (default: the last export), then validate and upload it."""
        from tui.screens.prompt import PromptScreen

        def chosen(path: str | None) -> None:
            if path:
                self.upload(Path(path).expanduser())

        default = str(self.session.last_export or "")
        self.app.push_screen(PromptScreen(
            "Upload a fine-tuning JSONL", value=default, placeholder="path/to/train.jsonl",
            hint="Validated first: an invalid file is refused and its errors listed."), chosen)

    @work(exclusive=True, group="files-upload", exit_on_error=False)
    async def upload(self, path: Path) -> None:
        """Validate, then stream the file to the provider with progress; cancellable."""
        from tui.core.finetune.files import InvalidFileError, UploadCancelled

        self._cancel = asyncio.Event()
        self.refresh_bindings()
        self._show_upload(f"validating {path.name}…", 0, path.stat().st_size
                          if path.is_file() else 1)
        try:
            service = await self._service()
            info = await service.upload(
                path, cancel=self._cancel,
                progress=lambda p: self.post_message(self.UploadProgressed(p.sent, p.total)))
        except InvalidFileError as error:
            self.post_message(self.UploadRefused(path, error.errors))
            self.post_message(self.UploadEnded("failed"))
            return
        except UploadCancelled:
            self.post_message(self.UploadEnded("cancelled"))
            return
        except Exception as error:
            self.post_message(self.UploadEnded("failed", str(error)))
            return
        warning = await asyncio.to_thread(self._record_upload, path, info.id)
        if warning:
            self.notify(warning, title="History", severity="warning")
        self.post_message(FileUploaded(info.id, info.filename))
        self.post_message(self.UploadEnded("done"))

    def _record_upload(self, path: Path, file_id: str) -> str | None:
        """Remember which local file became which file id (a thread: SQLite and sha256)."""
        from tui.core.finetune.lineage import record_upload

        connection = self.session.connection
        try:
            record_upload(connection.name if connection else "?", file_id, path)
        except Exception as error:
            return f"history not updated: {error}"
        return None

    def _show_upload(self, label: str, sent: int, total: int) -> None:
        self.query_one("#files-upload").display = True
        self.query_one("#files-upload-label", Label).update(label)
        bar = self.query_one("#files-progress", ProgressBar)
        bar.update(total=max(1, total), progress=sent)

    def on_file_list_upload_progressed(self, message: UploadProgressed) -> None:
        self._show_upload(f"uploading {human_size(message.sent)}", message.sent, message.total)

    def on_file_list_upload_refused(self, message: UploadRefused) -> None:
        text = Text(f"{message.path.name} is not a valid fine-tuning file; not uploaded:\n",
                    style="bold red")
        for line in message.errors:
            text.append(f"  {line}\n")
        self.query_one("#files-content-text", Static).update(text)
        self.notify(f"{message.path.name}: {len(message.errors)} errors", title="Upload refused",
                    severity="error")

    def on_file_list_upload_ended(self, message: UploadEnded) -> None:
        self._cancel = None
        self.refresh_bindings()
        self.query_one("#files-upload").display = False
        if message.outcome == "cancelled":
            self.notify("Upload cancelled", title="Files")
        if message.error is not None:
            # Kept in the content area: the list refresh below rewrites the state line.
            self.query_one("#files-content-text", Static).update(
                Text(f"Upload failed: {message.error}", style="bold red"))
            self.notify(message.error, title="Upload failed", severity="error")
        self.action_refresh()

    def on_file_uploaded(self, message: FileUploaded) -> None:
        self.notify(f"{message.filename} → {message.file_id}", title="Uploaded")

    def action_cancel_upload(self) -> None:
        """Stop the upload in progress."""
        if self._cancel is not None:
            self._cancel.set()

    # ── content and delete ──────────────────────────────────────────────────────────────

    @on(DataTable.RowSelected, "#files-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        # The table's own enter binding wins over the pane's: enter on a row shows its head.
        event.stop()
        if event.row_key.value is not None:
            self.read_head(event.row_key.value)

    def action_view(self) -> None:
        """Show the first lines of the highlighted file."""
        file_id = self._highlighted_id()
        if file_id is not None:
            self.read_head(file_id)

    @work(exclusive=True, group="files-content", exit_on_error=False)
    async def read_head(self, file_id: str) -> None:
        """Read the first lines of a file."""
        lines = await (await self._service()).content_head(file_id, lines=20)
        self.post_message(self.ContentRead(file_id, lines))

    def on_file_list_content_read(self, message: ContentRead) -> None:
        text = Text(f"{message.file_id} — first {len(message.lines)} lines\n", style="bold")
        for line in message.lines:
            text.append(line[:400] + ("…" if len(line) > 400 else "") + "\n")
        self.query_one("#files-content-text", Static).update(text)

    def action_delete(self) -> None:
        """Delete the highlighted file after a confirmation."""
        from tui.screens.confirm import ConfirmScreen

        file_id = self._highlighted_id()
        if file_id is None:
            return
        name = next((f.filename for f in self.files if f.id == file_id), file_id)

        def answered(yes: bool | None) -> None:
            if yes:
                self.delete_file(file_id)

        self.app.push_screen(ConfirmScreen(f"Delete {name} ({file_id})?", yes="Delete"),
                             answered)

    @work(exclusive=True, group="files-delete", exit_on_error=False)
    async def delete_file(self, file_id: str) -> None:
        """Delete one file, then reload the list."""
        await (await self._service()).delete(file_id)
        self.notify(f"{file_id} deleted", title="Files")
        self.action_refresh()
