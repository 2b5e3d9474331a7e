"""The training-engine contract the local server drives: data in, metrics per step, a model out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tui.core.budget.fit import resolve_epochs

MAX_EPOCHS = 50
MAX_BATCH_SIZE = 256


class EngineError(Exception):
    """An engine could not train or load a model (bad state blob, no usable examples)."""


class HyperparameterError(EngineError, ValueError):
    """A requested hyperparameter is out of range; ``param`` names it as OpenAI errors do."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        """Dotted name of the offending field, e.g. ``hyperparameters.n_epochs``."""


@dataclass
class ChatExample:
    """One training line: the chat messages exactly as uploaded (system, user, assistant...)."""

    messages: list[dict[str, Any]]
    """OpenAI chat messages; the assistant turns are what the model learns."""


@dataclass
class Hyperparameters:
    """Resolved hyperparameters (no ``auto`` left), echoed back on the job object."""

    n_epochs: int
    """Passes over the training file."""
    batch_size: int
    """Examples per step."""
    learning_rate_multiplier: float
    """Scales how strongly each step updates the model (engine-specific, documented there)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of OpenAI's ``hyperparameters`` object."""
        return asdict(self)


@dataclass
class StepMetrics:
    """What one training step measured; every number is computed on the uploaded data."""

    step: int
    """1-based step number."""
    total_steps: int
    """Steps in the whole job."""
    epoch: int
    """1-based epoch the step belongs to."""
    train_loss: float
    """Mean per-token cross-entropy (nats) of the batch's assistant tokens, before learning them."""
    train_mean_token_accuracy: float
    """Top-1 next-token accuracy on the same tokens, in [0, 1]."""
    valid_loss: float | None = None
    """Same loss on a sampled validation batch (None without a validation file)."""
    valid_mean_token_accuracy: float | None = None
    """Same accuracy on that validation batch."""
    full_valid_loss: float | None = None
    """Loss on the whole validation set, at epoch ends only."""
    full_valid_mean_token_accuracy: float | None = None
    """Accuracy on the whole validation set, at epoch ends only."""
    epoch_end: bool = False
    """True on the last step of an epoch (the server writes a checkpoint there)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (None values kept)."""
        return asdict(self)


@dataclass
class Completion:
    """A chat completion's text and its token usage."""

    text: str
    """The assistant message content."""
    prompt_tokens: int
    """Tokens in the prompt, chat overhead included."""
    completion_tokens: int
    """Tokens in ``text``."""
    finish_reason: str = "stop"
    """``stop``, or ``length`` when ``max_tokens`` cut the answer."""


@dataclass
class ModelTokens:
    """How a real base model counts an example: its own tokenizer and chat template."""

    model: str
    """The base model's name."""
    count: Callable[[list[dict[str, Any]]], int]
    """Tokens of one example's messages, as training feeds them to the model."""
    context_length: int
    """The model's context; a longer example is an error (it cannot be trained on whole)."""


@runtime_checkable
class ChatModel(Protocol):
    """Anything that answers a chat (a base model or a tuned checkpoint)."""

    def complete(self, messages: list[dict[str, Any]], *, max_tokens: int | None = None,
                 temperature: float = 0.0) -> Completion:
        """Answer the last user turn; ``max_tokens`` truncates the answer's tokens."""
        ...


class TrainingRun(Protocol):
    """A job's training in progress; the server calls ``step`` while steps_done < total_steps."""

    total_steps: int
    steps_done: int

    @property
    def peak_memory_mb(self) -> float | None:
        """Peak memory the training took so far (MB), None when not measured."""
        ...

    def step(self) -> StepMetrics:
        """Run one batch: evaluate it with the current model, then learn it."""
        ...

    def state(self) -> bytes:
        """Serialised state: a checkpoint to load, or to resume this run after a restart."""
        ...

    def abort(self) -> None:
        """Stop at once (cancel), from any thread: a ``step`` in flight raises EngineError."""
        ...

    def close(self) -> None:
        """Release what the run holds (the server calls it when the run ends or is paused)."""
        ...


class TrainingEngine(Protocol):
    """A pluggable trainer: the n-gram + retrieval stand-in, and ``lora`` on real base models."""

    name: str

    @property
    def max_concurrent_jobs(self) -> int | None:
        """Jobs this engine trains at once (None: no cap of its own); later ones wait queued."""
        ...

    @property
    def snapshot_every_s(self) -> float:
        """Wall time between resume snapshots while a job runs."""
        ...

    @property
    def release_paused_jobs(self) -> bool:
        """True: a paused job is snapshotted and its run closed (freeing its slot); resuming
        queues it again. False: a paused run waits in memory."""
        ...

    def resolve_hyperparameters(self, n_examples: int,
                                requested: dict[str, Any]) -> Hyperparameters:
        """Fill ``auto``/missing values as OpenAI does; raise HyperparameterError when invalid."""
        ...

    def prepare(self, base_model: str,
                progress: Callable[[str], None] | None = None) -> Path | None:
        """Make ``base_model`` ready to train (download or convert it once), reporting progress;
        its folder, or None for an engine without one. EngineError when it cannot be had."""
        ...

    def token_counter(self, base_model: str) -> ModelTokens | None:
        """The base model's own token count, or None to count with tiktoken (EngineError when
        its tokenizer cannot be loaded)."""
        ...

    def step_seconds(self, base_model: str, tokens_per_step: float) -> float | None:
        """Expected wall time of a step of ``tokens_per_step`` tokens on ``base_model``, from
        the throughput measured here; None when there is no record (no guess)."""
        ...

    def start(self, train: list[ChatExample], valid: list[ChatExample] | None,
              hp: Hyperparameters, seed: int, resume_state: bytes | None = None, *,
              base_model: str) -> TrainingRun:
        """Begin (or, given ``resume_state`` from ``TrainingRun.state``, continue) a run on
        ``base_model`` (the job's ``model``)."""
        ...

    def model_blob(self, state: bytes) -> bytes:
        """What a checkpoint or a finished model stores of a run state (``load`` reads it)."""
        ...

    def load(self, state: bytes) -> ChatModel:
        """The model a run's state describes; raise EngineError on an unreadable blob."""
        ...


def auto_epochs(n_examples: int) -> int:
    """OpenAI's default epochs (the data foundation's rule: 3, at least 100, at most 25,000
    example-passes, 1-25 epochs)."""
    return resolve_epochs("auto", n_examples)


def auto_batch_size(n_examples: int) -> int:
    """About 0.2% of the training examples, clamped to 1..256 (OpenAI's observed default)."""
    return max(1, min(MAX_BATCH_SIZE, round(n_examples * 0.002)))


def auto_learning_rate_multiplier(n_examples: int) -> float:
    """A larger multiplier for small files, as OpenAI's auto values show (1.8 small, 1.0 large)."""
    return 1.8 if n_examples < 1000 else 1.0


def _is_auto(value: Any) -> bool:
    return value is None or value == "auto"


def resolve_openai_hyperparameters(n_examples: int,
                                   requested: dict[str, Any]) -> Hyperparameters:
    """Resolve ``auto`` and check ranges the way OpenAI's fine-tuning API does."""
    raw_epochs = requested.get("n_epochs")
    raw_batch = requested.get("batch_size")
    raw_lr = requested.get("learning_rate_multiplier")
    if _is_auto(raw_epochs):
        n_epochs = auto_epochs(n_examples)
    elif isinstance(raw_epochs, int) and not isinstance(raw_epochs, bool) \
            and 1 <= raw_epochs <= MAX_EPOCHS:
        n_epochs = raw_epochs
    else:
        raise HyperparameterError("hyperparameters.n_epochs",
                                  f"n_epochs must be 'auto' or an integer 1-{MAX_EPOCHS}, "
                                  f"got {raw_epochs!r}")
    if _is_auto(raw_batch):
        batch_size = auto_batch_size(n_examples)
    elif isinstance(raw_batch, int) and not isinstance(raw_batch, bool) \
            and 1 <= raw_batch <= MAX_BATCH_SIZE:
        batch_size = raw_batch
    else:
        raise HyperparameterError("hyperparameters.batch_size",
                                  f"batch_size must be 'auto' or an integer 1-{MAX_BATCH_SIZE}, "
                                  f"got {raw_batch!r}")
    if _is_auto(raw_lr):
        lr = auto_learning_rate_multiplier(n_examples)
    elif isinstance(raw_lr, int | float) and not isinstance(raw_lr, bool) and 0 < raw_lr <= 10:
        lr = float(raw_lr)
    else:
        raise HyperparameterError("hyperparameters.learning_rate_multiplier",
                                  "learning_rate_multiplier must be 'auto' or a number in (0, 10], "
                                  f"got {raw_lr!r}")
    return Hyperparameters(n_epochs=n_epochs, batch_size=batch_size,
                           learning_rate_multiplier=lr)
