"""A job's events as lines that fit the log's width: wrapped, never cut, re-wrapped on resize."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.events import Resize
from textual.widgets import Log

if TYPE_CHECKING:
    from tui.core.finetune.jobs import JobEvent

FULL_STAMP_WIDTH = 100
"""From this width on, lines carry the full UTC timestamp and level, as ``sqltune watch``
prints them; below it, the time of day (and the level only when it is not ``info``)."""


def event_lines(event: JobEvent, width: int) -> list[str]:
    """One event as lines of at most ``width`` characters; continuation lines are indented
    under the message so the time column stays readable."""
    if width >= FULL_STAMP_WIDTH:
        head = f"{event.timestamp}  {event.level}  "
    else:
        clock = dt.datetime.fromtimestamp(event.created_at, tz=dt.UTC).strftime("%H:%M:%S")
        level = "" if event.level == "info" else f"{event.level}  "
        head = f"{clock}  {level}"
    indent = " " * min(len(head), max(0, width // 3))
    return textwrap.wrap(event.message or "", width=max(width, len(head) + 8),
                         initial_indent=head, subsequent_indent=indent,
                         break_long_words=True, break_on_hyphens=False) or [head.rstrip()]


class EventLog(Log):
    """The events delivered so far, oldest first, each wrapped to the width the log has."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, auto_scroll=True)
        self.events: list[JobEvent] = []
        """Oldest first, each once."""
        self._wrapped_at = 0

    def text_width(self) -> int:
        """Characters per line: the log's width, as if the vertical scrollbar were there (it
        appears once the log fills up)."""
        width = self.size.width - self.styles.scrollbar_size_vertical
        return width if width > 0 else 78

    def add_events(self, events: Iterable[JobEvent]) -> None:
        """Append events (already de-duplicated by the follower)."""
        fresh = list(events)
        self.events.extend(fresh)
        width = self.text_width()
        if width != self._wrapped_at and self._wrapped_at:
            self._rewrap()
            return
        self._wrapped_at = width
        self.write_lines([line for event in fresh for line in event_lines(event, width)])

    def clear_events(self) -> None:
        """Forget every event (another job is shown)."""
        self.events = []
        self._wrapped_at = 0
        self.clear()

    def _rewrap(self) -> None:
        width = self.text_width()
        self._wrapped_at = width
        self.clear()
        self.write_lines([line for event in self.events for line in event_lines(event, width)])

    def on_resize(self, event: Resize) -> None:
        if self.events and self.text_width() != self._wrapped_at:
            self._rewrap()
