"""sqltune: a terminal cockpit for fine-tuning text-to-SQL models."""

from __future__ import annotations

__version__ = "0.1.0"
