"""The real engine: LoRA fine-tuning and serving of open-weight chat models (the train extra)."""

from __future__ import annotations

import importlib.util

TRAIN_EXTRA_MODULES = ("torch", "transformers", "peft", "safetensors", "huggingface_hub")
"""What the real engine imports; all come with ``pip install 'sqltune[train]'``."""
INSTALL_HINT = "pip install -e '.[train]' in a checkout, or pip install 'sqltune[train]'"
"""How to get the train extra."""


def train_extra_missing() -> str | None:
    """Why real training is unavailable here (with the pip command), or None when it is.

    Looks the modules up without importing them, so the server starts as fast as before; a
    module that is present but broken fails later, when a job or a chat first loads it.
    """
    missing = [name for name in TRAIN_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (f"Real fine-tuning (the lora engine) needs {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: {INSTALL_HINT}")
