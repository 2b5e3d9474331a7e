"""Cross-pane facts: a pane posts one, the app records it and tells the other panes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from tui.core.provider.connection import Connection


@dataclass
class DatasetExported(Message):
    """The token meter wrote the kept examples as chat JSONL."""

    train: Path
    """The training JSONL that was written."""
    validation: Path | None
    """The validation JSONL, when a split was asked for."""
    examples: int
    """Examples written to the training file."""
    model: str
    """Base model the budget was computed for."""


@dataclass
class FileUploaded(Message):
    """A file reached the provider (the jobs form offers it next)."""

    file_id: str
    """The provider's id of the new file."""
    filename: str
    """Its name."""


@dataclass
class JobCreated(Message):
    """A fine-tuning job was created from the jobs form."""

    job_id: str
    """The provider's id of the new job."""


@dataclass
class JobEnded(Message):
    """A followed job reached a terminal status (succeeded, failed or cancelled)."""

    job_id: str
    """The job that ended."""
    status: str
    """Its terminal status."""
    fine_tuned_model: str | None
    """The tuned model's name when it succeeded."""


@dataclass
class ProviderConnected(Message):
    """A provider was resolved and a client made for it."""

    connection: Connection
    """The provider now in use."""
