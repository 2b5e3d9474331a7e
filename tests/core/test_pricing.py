"""The shipped price table: provenance, name resolution, costs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui.core.budget.pricing import (
    PricingError,
    inference_cost,
    load_table,
    price_for,
    priced_models,
    training_cost,
)

REQUIRED = ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo")


def test_table_has_date_source_and_the_required_models() -> None:
    table = load_table()
    assert table.as_of[:4].isdigit() and table.source.startswith("https://")
    assert "check" in table.note
    for model in REQUIRED:
        assert model in priced_models()


@pytest.mark.parametrize(("model", "base", "training"), [
    ("gpt-4.1-2025-04-14", "gpt-4.1", 25.0),
    ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini", 5.0),
    ("gpt-4.1-nano", "gpt-4.1-nano", 1.5),
    ("gpt-4o-2024-08-06", "gpt-4o", 25.0),
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini", 3.0),
    ("gpt-3.5-turbo-0125", "gpt-3.5-turbo", 8.0),
    ("ft:gpt-4.1-mini-2025-04-14:org::abc", "gpt-4.1-mini", 5.0),
    ("ft:gpt-4o-mini-2024-07-18:org:sql:abc:ckpt-step-90", "gpt-4o-mini", 3.0),
    ("ft:gpt-3.5-turbo-0125:org::abc", "gpt-3.5-turbo", 8.0),
])
def test_names_resolve_to_their_base(model: str, base: str, training: float) -> None:
    price = price_for(model)
    assert price is not None and price.model == base and price.training == training


def test_local_models_are_free_and_unknown_ones_unpriced() -> None:
    local = price_for("ft:sqltune-local-base:local::job1")
    assert local is not None and local.local and local.training == 0.0
    assert training_cost("sqltune-local-base", 10**9) == 0.0
    assert price_for("llama-3.1-8b") is None
    assert training_cost("llama-3.1-8b", 1000) is None
    assert inference_cost("llama-3.1-8b", 10, 10) is None


def test_costs() -> None:
    assert training_cost("gpt-4.1-mini-2025-04-14", 18_000_000) == pytest.approx(90.0)
    assert training_cost("ft:gpt-4o-mini-2024-07-18:o::i", 1_000_000) == pytest.approx(3.0)
    # fine-tuned gpt-4.1-mini: $0.80 in, $3.20 out per 1M
    assert inference_cost("ft:gpt-4.1-mini-2025-04-14:o::i", 1000, 100) == pytest.approx(
        (1000 * 0.8 + 100 * 3.2) / 1e6)


def test_a_broken_table_raises(tmp_path: Path) -> None:
    path = tmp_path / "pricing.json"
    path.write_text(json.dumps({"as_of": "2025-01-01", "source": "x",
                                "models": {"m": {"training": "cheap", "input": 1, "output": 1}}}))
    with pytest.raises(PricingError, match="unusable"):
        load_table(path)
    with pytest.raises(PricingError):
        load_table(tmp_path / "missing.json")


def test_a_custom_table(tmp_path: Path) -> None:
    path = tmp_path / "pricing.json"
    path.write_text(json.dumps({"as_of": "2030-01-01", "source": "s", "local_prefixes": ["mine"],
                                "models": {"x-1": {"training": 2, "input": 1, "output": 3}}}))
    table = load_table(path)
    assert training_cost("ft:x-1-2030-01-01:o::i", 500_000, table) == pytest.approx(1.0)
    assert training_cost("mine-model", 500_000, table) == 0.0
