"""What the playground's workers tell the pane."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from tui.core.inference.playground import Asked, ModelChoice, Workspace


@dataclass
class WorkspaceOpened(Message):
    """The dataset's databases and questions, and the question history, were read."""

    workspace: Workspace | None
    """None when the dataset has no databases."""
    error: str | None
    """Why there is no workspace."""
    history: list[Asked]
    """Earlier questions, newest first."""


@dataclass
class ModelsListed(Message):
    """The provider's models (and checkpoints) were listed."""

    models: list[ModelChoice]
    """Fine-tuned first, then checkpoints, then base models."""
    error: str | None = None
    """Why listing failed (models stays as it was)."""
