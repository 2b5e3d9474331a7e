"""Snapshots of the evaluation pane at 80x24 and 160x48, from runs recorded before start.

Deterministic by construction: the runs are scored by tui.core.evaluation.evaluate from predictions
files (gold SQL, and a constant query), so no latency, port or key appears; the provider
fails fast and its toasts are cleared; images are taken once every worker has finished.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tests.app.panes_support import no_local_server, wait_until, workers_idle
from tui.app import make_app
from tui.core.data.datasets import Example, load_dataset
from tui.core.evaluation.evaluate import evaluate, predictions_predictor
from tui.core.evaluation.runs import save_run
from tui.core.paths import demo_dir
from tui.widgets.evaluation import EvaluationPane
from tui.widgets.evaluation.views import RunsTable


def record_runs() -> None:
    """Two recorded runs on the demo dev split: the gold SQL itself, and one constant query."""
    dataset = load_dataset(demo_dir(), "dev")

    def db_path_for(example: Example) -> Path | None:
        return dataset.db_path(example.db_id)

    async def score(model: str, sql: list[str]) -> None:
        report = await evaluate(dataset.examples, db_path_for=db_path_for, model=model,
                                split="dev", predict=predictions_predictor(dataset.examples, sql))
        save_run(report, provider="local")

    asyncio.run(score("count-star", ["SELECT count(*) FROM sqlite_master"] * len(
        dataset.examples)))
    asyncio.run(score("gold-sql", [example.query for example in dataset.examples]))


async def show_pane(pilot: Pilot[Any]) -> None:
    app: Any = pilot.app
    ids = [pane.PANE_ID for pane in app.pane_classes()]
    await pilot.press(str(ids.index(EvaluationPane.PANE_ID) + 1))
    table = app.pane("evaluation").query_one(RunsTable)
    await wait_until(pilot, lambda: table.row_count == 2 and app.session.error is not None,
                     what="the recorded runs")
    await workers_idle(pilot)


async def steady(pilot: Pilot[Any]) -> None:
    await workers_idle(pilot)
    pilot.app.clear_notifications()
    await pilot.pause()


def test_two_models_compared_with_the_hardness_chart(snap_compare: Any) -> None:
    record_runs()

    async def run_before(pilot: Pilot[Any]) -> None:
        await show_pane(pilot)
        await pilot.press("space", "down", "space")
        await steady(pilot)

    assert snap_compare(make_app(start_local=no_local_server), terminal_size=(80, 24),
                        run_before=run_before)


def test_two_models_compared_at_a_wide_size(snap_compare: Any) -> None:
    record_runs()

    async def run_before(pilot: Pilot[Any]) -> None:
        await show_pane(pilot)
        await pilot.press("space", "down", "space")
        await steady(pilot)

    assert snap_compare(make_app(start_local=no_local_server), terminal_size=(160, 48),
                        run_before=run_before)


def test_the_questions_of_a_run(snap_compare: Any) -> None:
    record_runs()

    async def run_before(pilot: Pilot[Any]) -> None:
        await show_pane(pilot)
        await pilot.press("enter", "down", "down", "down")
        await steady(pilot)

    assert snap_compare(make_app(start_local=no_local_server), terminal_size=(80, 24),
                        run_before=run_before)
