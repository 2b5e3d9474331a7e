"""The server's real base models by name: where each comes from, its folder and its tokenizer."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from tui.server.engines.base import EngineError
from tui.server.engines.lora.sources import (
    BaseModelSpec,
    Progress,
    cached_folder,
    materialize,
)

CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")
"""config.json fields that hold a model's context length."""
SANE_CONTEXT = 10_000_000
"""Larger ``model_max_length`` values mean "no limit set" (transformers' 1e30 default)."""


def preferred_device() -> str:
    """``cuda`` when a CUDA GPU is visible to torch, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class BaseRegistry:
    """Named base models; folders materialized and tokenizers loaded once, thread-safely."""

    def __init__(self, specs: list[BaseModelSpec], cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        """Where converted GGUF models are kept (``<server data dir>/bases``)."""
        self._specs = {spec.name: spec for spec in specs}
        self._folders: dict[str, Path] = {}
        self._tokenizers: dict[str, Any] = {}
        self.tokenizer_loads: Counter[str] = Counter()
        """Tokenizers loaded from disk per base: 1 each, shared by token counts and serving."""
        self._locks = {name: threading.Lock() for name in self._specs}

    def names(self) -> list[str]:
        """Base model names, in the order they were configured."""
        return list(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def spec(self, name: str) -> BaseModelSpec:
        """The spec registered as ``name`` (EngineError for an unknown name)."""
        try:
            return self._specs[name]
        except KeyError:
            raise EngineError(f"unknown base model {name!r}; known: "
                              f"{', '.join(self._specs) or 'none'}") from None

    def folder(self, name: str, progress: Progress | None = None) -> Path:
        """A folder ``from_pretrained`` loads; downloaded or dequantized once (else EngineError)."""
        spec = self.spec(name)
        with self._locks[name]:
            found = self._folders.get(name)
            if found is None:
                found = materialize(spec, self.cache_dir, progress)
                self._folders[name] = found
            return found

    def cached_folder(self, name: str) -> Path | None:
        """The folder when it is ready without a download or a conversion, else None."""
        spec = self.spec(name)
        found = self._folders.get(name)
        if found is not None:
            return found
        try:
            return cached_folder(spec, self.cache_dir)
        except OSError:
            return None

    def tokenizer(self, name: str) -> Any:
        """The base's tokenizer (loaded once; it carries the model's chat template)."""
        folder = self.folder(name)
        with self._locks[name]:
            found = self._tokenizers.get(name)
            if found is None:
                from transformers import AutoTokenizer

                try:
                    found = AutoTokenizer.from_pretrained(folder)
                except Exception as error:
                    raise EngineError(f"base model {name!r}: cannot load its tokenizer from "
                                      f"{folder}: {type(error).__name__}: {error}") from None
                self._tokenizers[name] = found
                self.tokenizer_loads[name] += 1
            return found

    def context_length(self, name: str) -> int:
        """Tokens the model reads at once (materializes the folder when needed)."""
        length = folder_context_length(self.folder(name))
        if length is None:
            raise EngineError(f"base model {name!r}: its config.json states no context length")
        return length

    def known_context_length(self, name: str) -> int | None:
        """The context length when the folder is already there, else None (never downloads)."""
        folder = self.cached_folder(name)
        return folder_context_length(folder) if folder is not None else None


def folder_context_length(folder: Path) -> int | None:
    """The context length a model folder's config.json (and tokenizer config) states."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    sections = [config, config.get("text_config") or {}]
    length = next((int(section[key]) for section in sections for key in CONTEXT_KEYS
                   if isinstance(section.get(key), int)), None)
    try:
        tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text("utf-8"))
        limit = tokenizer_config.get("model_max_length")
    except (OSError, ValueError):
        limit = None
    if isinstance(limit, int | float) and 0 < limit < SANE_CONTEXT:
        length = int(limit) if length is None else min(length, int(limit))
    return length
