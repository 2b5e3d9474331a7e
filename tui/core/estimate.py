"""What a fine-tuning job will train and cost, from the validator's count of its training file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tui.core.budget import Epochs, resolve_epochs
from tui.core.pricing import training_cost


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
