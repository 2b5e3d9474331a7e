"""Where to write exports: the training JSONL (and its validation file), an evaluation report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

ResultT = TypeVar("ResultT")



@dataclass(frozen=True)
class ExportRequest:
    """The paths the user confirmed."""

    train: Path
    """Training JSONL."""
    validation: Path | None
    """Validation JSONL (None: no validation file)."""


class _PathsDialog(ModalScreen[ResultT | None]):
    """What both export dialogs share: a title, path fields, Export and Cancel buttons; the
    first field has the focus, escape backs out."""

    FIRST_FIELD: ClassVar[str]
    """The id of the Input focused on mount."""

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield from self.compose_fields()
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export (ctrl+s)", variant="primary", id="export", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def compose_fields(self) -> ComposeResult:
        """The labels and inputs above the buttons."""
        raise NotImplementedError

    def on_mount(self) -> None:
        self.query_one(f"#{self.FIRST_FIELD}", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "export":
            self.action_export()
        else:
            self.action_cancel()

    def action_export(self) -> None:
        """Confirm what the fields say."""
        raise NotImplementedError

    def action_cancel(self) -> None:
        """Close without writing."""
        self.dismiss(None)


class ExportDialog(_PathsDialog[ExportRequest]):
    """Two paths and a confirm: enter on the last field (or ctrl+s) exports, escape backs out."""

    BINDINGS = [
        Binding("escape", "cancel", "Back", id="export.back", tooltip="Close without writing"),
        Binding("ctrl+s", "export", "Export", id="export.confirm", tooltip="Write the files"),
    ]

    FIRST_FIELD = "export-train"

    def __init__(self, train: Path, validation: Path | None, kept: int, held_out: int) -> None:
        super().__init__()
        self.train = train
        """Suggested training path."""
        self.validation = validation
        """Suggested validation path (None when nothing is held out)."""
        self.kept = kept
        """Examples that will be written to the training file."""
        self.held_out = held_out
        """Examples that will be written to the validation file."""

    def compose_fields(self) -> ComposeResult:
        yield Label(f"Export {self.kept:,} examples as chat JSONL", classes="dialog-question")
        yield Label("training file")
        yield Input(str(self.train), id="export-train", compact=True)
        if self.validation is not None:
            yield Label(f"validation file ({self.held_out:,} examples; empty: none)")
            yield Input(str(self.validation), id="export-validation", compact=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "export-train" and self.validation is not None:
            self.query_one("#export-validation", Input).focus()
        else:
            self.action_export()

    def action_export(self) -> None:
        """Confirm the paths."""
        train = self.query_one("#export-train", Input).value.strip()
        if not train:
            self.notify("A training file path is needed", severity="warning")
            return
        validation: Path | None = None
        if self.validation is not None:
            text = self.query_one("#export-validation", Input).value.strip()
            validation = Path(text).expanduser() if text else None
        self.dismiss(ExportRequest(Path(train).expanduser(), validation))


class ReportExportDialog(_PathsDialog[Path]):
    """Where to write an evaluation report: a name in the exports folder (or any path); enter or
    ctrl+s writes, escape backs out."""

    BINDINGS = [
        Binding("escape", "cancel", "Back", id="export_report.back",
                tooltip="Close without writing"),
        Binding("ctrl+s", "export", "Export", id="export_report.confirm",
                tooltip="Write PATH.csv and PATH.json"),
    ]

    FIRST_FIELD = "export-report-path"

    def __init__(self, name: str, folder: Path) -> None:
        super().__init__()
        self.name_text = name
        """Suggested file name (without .csv / .json)."""
        self.folder = folder
        """Where a name without a folder is written."""

    def compose_fields(self) -> ComposeResult:
        yield Label("Export the report", classes="dialog-question")
        yield Label(f"into {self.folder}", id="export-report-folder")
        yield Input(self.name_text, id="export-report-path", compact=True)
        yield Label("Writes NAME.csv (per question) and NAME.json (summary + questions); "
                    "a path with a folder goes there.", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_export()

    def target(self) -> Path | None:
        """The typed path: a bare name (or a relative path) lands in the exports folder."""
        text = self.query_one("#export-report-path", Input).value.strip()
        if not text:
            return None
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.folder / path

    def action_export(self) -> None:
        """Write the report where the field says."""
        target = self.target()
        if target is None:
            self.notify("A file name is needed", severity="warning")
            return
        self.dismiss(target)
