"""What a fine-tuning job will train and cost, from the validator's count of its training file."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tui.core.budget.fit import Epochs, resolve_epochs
from tui.core.budget.pricing import training_cost

if TYPE_CHECKING:
    from tui.core.budget.counters import BaseModelInfo, ChatCounter


@dataclass(frozen=True)
class JobEstimate:
    """Trained tokens and price of a job, labelled with whose price it is."""

    model: str
    """Base model of the job."""
    examples: int
    """Training examples (the validator's count)."""
    epochs: int
    """Epochs the job runs (``auto`` resolved as the provider does)."""
    tokens_per_epoch: int
    """Billable tokens of one pass over the file."""
    provider_kind: str
    """openai, azure, compatible or local: whose bill this speaks of."""
    list_price_usd: float | None
    """OpenAI's list price for these tokens; None when the model is not in the table."""
    note: str | None = None
    """About the counts (a fallback encoding), when they are a guess."""

    @property
    def trained_tokens(self) -> int:
        """tokens_per_epoch × epochs: what the job is billed for."""
        return self.tokens_per_epoch * self.epochs

    @property
    def price_label(self) -> str:
        """``$1.79``, ``free on the local server (...)`` or ``cost unknown``."""
        cost = self.list_price_usd
        if self.provider_kind == "local":
            return "free on the local server" + (
                f" (OpenAI's list price: ${cost:,.2f})" if cost else "")
        if cost is None:
            return "cost unknown"
        if self.provider_kind == "openai":
            return f"${cost:,.2f}"
        return f"${cost:,.2f} at OpenAI's list price (this provider bills by its own)"

    def line(self) -> str:
        """``≈ 358,332 trained tokens (3 epochs × 119,444, 1,000 examples) · $1.79``."""
        return (f"≈ {self.trained_tokens:,} trained tokens ({self.epochs} epochs × "
                f"{self.tokens_per_epoch:,}, {self.examples:,} examples) · {self.price_label}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"model": self.model, "examples": self.examples, "epochs": self.epochs,
                "tokens_per_epoch": self.tokens_per_epoch,
                "trained_tokens": self.trained_tokens, "provider_kind": self.provider_kind,
                "list_price_usd": self.list_price_usd, "note": self.note}


def estimate_job(report: Any, model: str, epochs: Epochs,
                 provider_kind: str = "openai") -> JobEstimate:
    """The estimate of a job on ``model`` for a valid ValidationReport of its training file."""
    per_epoch = int(report.total_tokens or 0)
    n_epochs = resolve_epochs(epochs, report.examples)
    return JobEstimate(model=model, examples=int(report.examples), epochs=n_epochs,
                       tokens_per_epoch=per_epoch, provider_kind=provider_kind,
                       list_price_usd=training_cost(model, per_epoch * n_epochs),
                       note=getattr(report, "note", None))


@dataclass(frozen=True)
class RealBase:
    """A real open-weight base of a sqltune server, with the counter of its own tokenizer."""

    info: BaseModelInfo
    """What the server says about it (device, context, measured throughput)."""
    counter: ChatCounter
    """Counts examples as its training does (tiktoken, marked approximate, when unavailable)."""


async def real_base(client: Any, provider_kind: str, model: str) -> RealBase | None:
    """``model`` when it is a real base of a sqltune server (kind ``local``), else None.

    Errors reading the server's route (connection, auth) propagate as the SDK's."""
    if provider_kind != "local":
        return None
    from tui.core.budget.counters import base_counter
    from tui.core.finetune.form import fetch_base_models

    listed = await fetch_base_models(client)
    info = next((base for base in listed.models if base.id == model), None) if listed else None
    if info is None:
        return None
    return RealBase(info, await asyncio.to_thread(base_counter, info))


def duration_lines(estimate: JobEstimate, base: RealBase | None) -> list[str]:
    """How long a real base would train (measured throughput only), what a CPU suits, and
    why the count is approximate; nothing for other models."""
    if base is None:
        return []
    from tui.core.finetune.form import CPU_NOTE, training_duration

    duration = training_duration(estimate.trained_tokens, base.info)
    lines = [duration.text()]
    if duration.cpu:
        lines.append(CPU_NOTE)
    if base.counter.note:
        lines.append(base.counter.note)
    return lines
