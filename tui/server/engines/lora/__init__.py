"""The real engine: LoRA fine-tuning and serving of open-weight chat models (the train extra)."""

from __future__ import annotations

from tui.core.finetune.form import TRAIN_MODULES, train_extra_missing

__all__ = ["TRAIN_MODULES", "engine_unavailable", "train_extra_missing"]


def engine_unavailable(name: str, missing: str | None) -> str:
    """How the server words an engine it does not have, with ``train_extra_missing()``'s reason
    (the same words the create form and the CLI show)."""
    return f"this server has no {name!r} training engine" + (f": {missing}" if missing else "")
