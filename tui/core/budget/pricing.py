"""Fine-tuning and inference prices from the dated table shipped in assets/pricing.json."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.core.budget.tokens import base_model, undated
from tui.core.paths import assets_dir

PER_MILLION = 1_000_000


class PricingError(RuntimeError):
    """The pricing table is missing or malformed."""


@dataclass(frozen=True)
class ModelPrice:
    """Prices of one base model in US dollars per 1M tokens."""

    model: str
    """Canonical base model name of the table (``gpt-4.1-mini``)."""
    training: float | None
    """Per trained token (tokens per epoch times epochs); None when not priced per token."""
    input: float
    """Prompt tokens sent to the fine-tuned model."""
    output: float
    """Completion tokens produced by the fine-tuned model."""
    cached_input: float | None = None
    """Prompt tokens served from the provider's cache, where priced."""
    local: bool = False
    """A model of sqltune's local server (free)."""
    snapshot: str | None = None
    """The dated snapshot to fine-tune (``gpt-4.1-mini-2025-04-14``), where the table has one."""


@dataclass(frozen=True)
class PriceTable:
    """The whole table with its provenance."""

    as_of: str
    """Date the prices were taken from the source."""
    source: str
    """Where the prices come from."""
    note: str
    """Caveat shown with any estimate."""
    prices: dict[str, ModelPrice]
    """Base model name -> prices."""
    local_prefixes: tuple[str, ...]
    """Model names of the local server start with one of these."""


def load_table(path: Path | None = None) -> PriceTable:
    """Read a pricing table (default: the shipped assets/pricing.json)."""
    if path is None:
        return _shipped_table()
    return _parse(path)


@functools.cache
def _shipped_table() -> PriceTable:
    return _parse(assets_dir() / "pricing.json")


def _parse(path: Path) -> PriceTable:
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        prices = {
            name.lower(): ModelPrice(
                model=name.lower(),
                training=_number(entry.get("training")),
                input=float(entry["input"]),
                output=float(entry["output"]),
                cached_input=_number(entry.get("cached_input")),
                snapshot=entry.get("snapshot"),
            )
            for name, entry in raw["models"].items()
        }
        return PriceTable(
            as_of=str(raw["as_of"]),
            source=str(raw["source"]),
            note=str(raw.get("note", "")),
            prices=prices,
            local_prefixes=tuple(str(p).lower() for p in raw.get("local_prefixes", ())),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise PricingError(f"pricing table {path} is unusable: {error}") from None


def _number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"price {value!r} is not a number")


def price_for(model: str, table: PriceTable | None = None) -> ModelPrice | None:
    """Prices of a model; ``ft:`` names and dated snapshots resolve to their base.

    Local-server models cost 0; a model the table does not know gives None.
    """
    table = table or _shipped_table()
    base = base_model(model)
    if any(base.startswith(prefix) for prefix in table.local_prefixes):
        return ModelPrice(model=base, training=0.0, input=0.0, output=0.0, cached_input=0.0,
                          local=True)
    return table.prices.get(base) or table.prices.get(undated(base))


def training_cost(model: str, trained_tokens: int, table: PriceTable | None = None) -> float | None:
    """Dollars to train on ``trained_tokens`` (already multiplied by epochs); None if unpriced."""
    price = price_for(model, table)
    if price is None or price.training is None:
        return None
    return trained_tokens * price.training / PER_MILLION


def inference_cost(
    model: str, prompt_tokens: int, completion_tokens: int, table: PriceTable | None = None
) -> float | None:
    """Dollars for one call of a (fine-tuned) model; None if unpriced."""
    price = price_for(model, table)
    if price is None:
        return None
    return (prompt_tokens * price.input + completion_tokens * price.output) / PER_MILLION


def priced_models(table: PriceTable | None = None) -> list[str]:
    """Base models with a per-token training price, in table order."""
    table = table or _shipped_table()
    return [name for name, price in table.prices.items() if price.training is not None]
