"""Fine-tuning job statuses (OpenAI's contract): which are still going and which are final."""

from __future__ import annotations

ACTIVE_STATUSES = frozenset({"validating_files", "queued", "running", "paused"})
"""A job in one of these may still change: it can be cancelled, and events may follow."""
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
"""Final: no new events, nothing left to cancel."""
