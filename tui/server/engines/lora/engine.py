"""The ``lora`` engine: LoRA fine-tuning of the server's real base models in a worker process.

Hyperparameters resolve like OpenAI's (``auto`` epochs, batch size and multiplier); the
multiplier scales the trainer's documented base learning rate (2e-4, see ``trainer.py``).
Training runs in a spawned worker (``worker.py``), so the server stays responsive and a
cancelled job's worker is killed at once. A state, checkpoint or model blob is the tar of
``artifacts.py``; ``load`` unpacks its adapter once under ``<data dir>/adapters/<sha256>/``
and serves it on the one shared base model of that name.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.server.engines.base import (
    ChatExample,
    ChatModel,
    EngineError,
    Hyperparameters,
    ModelTokens,
    StepMetrics,
    resolve_openai_hyperparameters,
)
from tui.server.engines.lora import artifacts, throughput
from tui.server.engines.lora.worker import WorkerRun

if TYPE_CHECKING:
    from tui.server.engines.lora.registry import BaseRegistry
    from tui.server.engines.lora.serving import Serving

SNAPSHOT_EVERY_S = 60.0
"""Resume snapshots between epoch ends (a lora state is tens of MB on a real model)."""


class LoraRun(WorkerRun):
    """A lora TrainingRun: the worker, plus the throughput record when the last step is done."""

    def __init__(self, engine: LoraEngine, folder: Path, base_model: str,
                 train: list[list[dict[str, Any]]], valid: list[list[dict[str, Any]]] | None,
                 hp: Hyperparameters, seed: int, resume_state: bytes | None) -> None:
        super().__init__(folder, base_model, train, valid, hp, seed, resume_state,
                         dict(engine.settings))
        self._data_dir = engine.data_dir

    def step(self) -> StepMetrics:
        """One step; the last one records the measured throughput for the next estimate."""
        metrics = super().step()
        if self.steps_done >= self.total_steps:
            measured = self.tokens_per_second()
            if measured is not None:
                throughput.record(self._data_dir, self.base_model, self.device, measured)
        return metrics


class LoraEngine:
    """The real engine: one per server, over its base-model registry and serving."""

    name = "lora"
    snapshot_every_s = SNAPSHOT_EVERY_S
    """Wall time between resume snapshots (the JobDriver reads it)."""
    max_concurrent_jobs = 1
    """Jobs trained at once (each worker holds a whole model; later jobs wait queued)."""
    release_paused_jobs = True
    """A paused job is snapshotted and its worker stopped, so a queued job can take the slot."""

    def __init__(self, registry: BaseRegistry, serving: Serving, data_dir: Path,
                 settings: dict[str, Any] | None = None) -> None:
        self.registry = registry
        """The server's base models."""
        self.serving = serving
        """The shared in-memory bases that answer chats."""
        self.data_dir = Path(data_dir)
        """The server's folder (adapters/ and throughput.json live there)."""
        self.settings = settings or {}
        """LoraSettings overrides (field -> value) for every run; empty: the defaults."""

    def resolve_hyperparameters(self, n_examples: int,
                                requested: dict[str, Any]) -> Hyperparameters:
        """OpenAI's rules for ``auto`` and ranges."""
        return resolve_openai_hyperparameters(n_examples, requested)

    def prepare(self, base_model: str, progress: Callable[[str], None] | None = None) -> Path:
        """Materialize the base model's folder (download or dequantize once), reporting progress."""
        return self.registry.folder(base_model, progress)

    def tokens_per_second(self, base_model: str) -> float | None:
        """The training throughput last measured for this base on this server's device."""
        from tui.server.engines.lora.registry import preferred_device

        return throughput.lookup(self.data_dir, base_model, preferred_device())

    def step_seconds(self, base_model: str, tokens_per_step: float) -> float | None:
        """A step's expected time from the throughput on record (None before the first job)."""
        measured = self.tokens_per_second(base_model)
        return tokens_per_step / measured if measured else None

    def token_counter(self, base_model: str) -> ModelTokens:
        """The base's own tokenizer and chat template, as training counts (EngineError when the
        model or its tokenizer cannot be had)."""
        from tui.server.engines.lora.chat import count_tokens

        tokenizer = self.registry.tokenizer(base_model)
        context = self.registry.context_length(base_model)
        return ModelTokens(base_model, lambda messages: count_tokens(tokenizer, messages),
                           context)

    def start(self, train: list[ChatExample], valid: list[ChatExample] | None,
              hp: Hyperparameters, seed: int, resume_state: bytes | None = None, *,
              base_model: str) -> LoraRun:
        """Spawn the worker, load the base and (given a state) resume where it stopped."""
        folder = self.prepare(base_model)
        return LoraRun(self, folder, base_model, [e.messages for e in train],
                       [e.messages for e in valid] if valid else None, hp, seed, resume_state)

    def model_blob(self, state: bytes) -> bytes:
        """What a checkpoint or a finished model stores: the adapter, not the optimizer."""
        return artifacts.adapter_only(state)

    def adapter_dir(self, blob: bytes) -> tuple[artifacts.AdapterMeta, Path]:
        """The blob's adapter folder under ``adapters/<sha256>/`` (unpacked the first time)."""
        meta = artifacts.read_meta(blob)
        dest = self.data_dir / "adapters" / hashlib.sha256(blob).hexdigest()
        if not (dest / "adapter_model.safetensors").is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
            try:
                artifacts.unpack_adapter(blob, staging)
                try:
                    staging.rename(dest)
                except OSError:  # another request unpacked the same blob first
                    if not (dest / "adapter_model.safetensors").is_file():
                        raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return meta, dest

    def load(self, state: bytes) -> ChatModel:
        """The tuned model a blob describes, served on its shared base."""
        meta, folder = self.adapter_dir(state)
        if meta.base_model not in self.registry:
            raise EngineError(f"this model was trained on base model {meta.base_model!r}, which "
                              "this server does not have; start it with "
                              f"--base-model {meta.base_model}=SOURCE")
        model: ChatModel = self.serving.chat_model(meta.base_model, folder)
        return model
