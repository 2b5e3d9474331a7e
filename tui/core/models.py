"""The model sqltune counts, prices and fine-tunes for when none is named."""

from __future__ import annotations

DEFAULT_MODEL = "gpt-4.1-mini-2025-04-14"
"""A dated snapshot: the default of every ``--model`` and the first choice of the panes."""
