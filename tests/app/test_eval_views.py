"""Formatting of the Evaluate pane's comparison rows."""

from __future__ import annotations

from tui.widgets.evaluation.views import short_model


def test_long_model_names_keep_their_start_and_their_id() -> None:
    name = "ft:gpt-4.1-mini-2025-04-14:acme:spider:AbC123xy"
    short = short_model(name, 22)
    assert len(short) == 22 and short.startswith("ft:gpt") and short.endswith(":AbC123xy")
    assert "…" in short
    assert short_model("gpt-4.1-mini", 22) == "gpt-4.1-mini"
    assert short_model(name, len(name)) == name
