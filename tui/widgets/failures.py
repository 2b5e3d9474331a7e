"""Worker failures in one place: a worker raises, its widget's one handler shows what went wrong."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import ClassVar

from textual.dom import DOMNode
from textual.message import Message
from textual.worker import Worker, WorkerState


def failure_text(error: BaseException) -> str:
    """What went wrong, in words and never with a key: an SDK error as the provider put it
    (tui.core.provider.retries.describe_error), any other error as its own message, each note added
    to it (``error.add_note(...)``) in brackets after it."""
    from tui.core.provider.providers import redact

    sdk = sys.modules.get("openai")  # not imported: the error is none of its (and it stays out)
    if sdk is not None and isinstance(error, sdk.APIError):
        from tui.core.provider.retries import describe_error

        text = describe_error(error)
    elif isinstance(error, OSError) and error.strerror:  # not "[Errno 13] ...: '/path'"
        text = redact(error.strerror + (f" ({error.filename})" if error.filename else ""))
    else:
        text = redact(str(error)) or type(error).__name__
    notes = [redact(str(note)) for note in getattr(error, "__notes__", ())]
    return " ".join([text, *(f"({note})" for note in notes)])


@dataclass
class WorkFailed(Message):
    """A worker raised: which one, and what went wrong (bubbles from the node that ran it)."""

    node: DOMNode
    """The widget (or the app) whose worker failed; its show_failure shows the error."""
    operation: str
    """The worker's name: the method that ran (``list_files``, ``follow``, ``connect_provider``)."""
    error: str
    """What went wrong, described by failure_text (never holds a key)."""


class ShowsWorkFailures(DOMNode):
    """A node whose workers raise on failure instead of posting a failure message of their own.

    Its workers run with ``exit_on_error=False``; one that raises ends in the ERROR state, which
    this turns into a WorkFailed message, and one handler hands that to show_failure (override
    it to put the error where the node shows such things: a status line, a header).

    List it after the widget (or App) base: Textual takes a class's CSS from its first base.
    """

    FAILURE_TITLE: ClassVar[str] = "sqltune"
    """Title of the notification that tells of a failure."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        error = event.worker.error
        if event.state is WorkerState.ERROR and error is not None:
            self.post_message(WorkFailed(self, event.worker.name, failure_text(error)))

    def on_work_failed(self, failure: WorkFailed) -> None:
        """The one handler of a failed worker (a failure from a child widget bubbles on)."""
        if failure.node is self:
            self.show_failure(failure)

    def failure_title(self) -> str:
        """Title of the notification that tells of a failure."""
        return self.FAILURE_TITLE

    def show_failure(self, failure: WorkFailed) -> None:
        """Show the failure (default: an error notification)."""
        self.app.notify(failure.error, title=self.failure_title(), severity="error", markup=False)
