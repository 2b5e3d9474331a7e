"""The create form's estimate names whose bill it is: OpenAI's prices are only OpenAI's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.core.budget.pricing import training_cost
from tui.core.data.jsonl import validate_jsonl
from tui.screens.create_job import estimate_text

MODEL = "gpt-4.1-mini-2025-04-14"


@pytest.fixture
def report(tmp_path: Path) -> object:
    path = tmp_path / "train.jsonl"
    lines = [
        '{"messages": [{"role": "system", "content": "CREATE TABLE t (id INTEGER);"}, '
        f'{{"role": "user", "content": "How many rows {n}?"}}, '
        '{"role": "assistant", "content": "SELECT count(*) FROM t"}]}'
        for n in range(12)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    checked = validate_jsonl(path, MODEL)
    assert checked.ok
    return checked


@pytest.mark.parametrize(("kind", "expected"), [
    ("openai", "· ${cost}"),
    ("azure", "${cost} at OpenAI's list price (this provider bills by its own)"),
    ("compatible", "${cost} at OpenAI's list price (this provider bills by its own)"),
    ("local", "free on the local server (OpenAI's list price: ${cost})"),
])
def test_estimate_names_whose_price_it_is(report: object, kind: str, expected: str) -> None:
    text = estimate_text(report, MODEL, 3, kind).plain
    trained = 3 * report.total_tokens  # type: ignore[attr-defined]
    cost = training_cost(MODEL, trained)
    assert cost is not None and cost > 0
    assert f"≈ {trained:,} trained tokens (3 epochs" in text
    assert expected.replace("{cost}", f"{cost:,.2f}") in text
