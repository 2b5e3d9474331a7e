"""Snapshots of the dataset preview and the token meter at 80x24.

Deterministic by construction: the provider fails fast (the status line shows a fixed
reason, no URL, port or key), the images are taken once every worker has finished, and the
toasts of the provider failure are cleared first (they time out on their own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Select

from tests.app.panes_support import (
    choose,
    clear_input,
    no_local_server,
    wait_until,
    workers_idle,
)
from tui.app import make_app

ROOT = Path(__file__).resolve().parents[2]
SIZE = (80, 24)


async def _steady(pilot: Pilot[Any]) -> None:
    """Every pane has settled: the provider attempt is over and no worker runs."""
    app = pilot.app
    await wait_until(pilot, lambda: app.session.error is not None, what="the provider")  # type: ignore[attr-defined]
    await workers_idle(pilot)
    app.clear_notifications()
    await pilot.pause()


async def _preview_ready(pilot: Pilot[Any]) -> None:
    pane = pilot.app.pane("dataset")  # type: ignore[attr-defined]
    await wait_until(pilot, lambda: pane.problems is not None and pane.source is not None,
                     what="the preview")
    await _steady(pilot)


async def _budget_ready(pilot: Pilot[Any]) -> None:
    pane = pilot.app.pane("budget")  # type: ignore[attr-defined]
    await wait_until(pilot, lambda: pane.budget is not None, what="the budget")
    await _steady(pilot)


def test_dataset_preview_on_the_demo_data(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _preview_ready(pilot)
        await pilot.press("down", "down")
        await _steady(pilot)

    assert snap_compare(make_app(start_local=no_local_server), terminal_size=SIZE,
                        run_before=run_before)


def test_dataset_preview_on_a_validation_problem(snap_compare: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the header shows the --data path as given
    data = Path("tests/core/malformed/several_errors.jsonl")

    async def run_before(pilot: Pilot[Any]) -> None:
        await _preview_ready(pilot)
        await pilot.press("n")
        await _steady(pilot)

    assert snap_compare(make_app(data=data, start_local=no_local_server), terminal_size=SIZE,
                        run_before=run_before)


def test_dataset_preview_filtered_by_database(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _preview_ready(pilot)
        select = pilot.app.query_one("#dataset-db", Select)
        await choose(pilot, select, "d", "university")
        await _steady(pilot)

    assert snap_compare(make_app(start_local=no_local_server), terminal_size=SIZE,
                        run_before=run_before)


def test_token_meter_on_the_demo_data(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("2")
        await _budget_ready(pilot)

    assert snap_compare(make_app(start_local=no_local_server), terminal_size=SIZE,
                        run_before=run_before)


def test_token_meter_over_a_tight_limit(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("2")
        await _budget_ready(pilot)
        pane = pilot.app.pane("budget")  # type: ignore[attr-defined]
        await pilot.press("e")
        await clear_input(pilot)
        await pilot.press("2", "escape", "l")
        await clear_input(pilot)
        await pilot.press(*"150000", "escape")
        await choose(pilot, pilot.app.query_one("#budget-strategy", Select), "s", "shortest")
        await wait_until(pilot, lambda: pane.budget is not None
                         and (pane.budget.token_limit, pane.budget.strategy,
                              pane.budget.epochs) == (150_000, "shortest", 2),
                         what="the tight budget")
        await pilot.press("escape")
        await _steady(pilot)

    assert snap_compare(make_app(start_local=no_local_server), terminal_size=SIZE,
                        run_before=run_before)
