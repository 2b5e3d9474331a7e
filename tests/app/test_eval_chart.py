"""The Evaluate pane's EX-by-hardness chart never misstates a figure: at 60x20 with four runs
(too few rows to draw bars true to the ticks) it gives the figures as text; at 80x24 and 160x48
it draws bars whose tops sit within a quarter tick of their values."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from tests.app.helpers import screen_text
from tests.app.panes_support import no_local_server, wait_until, workers_idle
from tests.app.test_evaluation_snapshots import record_runs
from tui.app import make_app
from tui.core.data.datasets import Example, load_dataset
from tui.core.evaluation.components import hardness
from tui.core.evaluation.evaluate import evaluate, predictions_predictor
from tui.core.evaluation.runs import save_run
from tui.core.paths import demo_dir
from tui.widgets.evaluation import EvaluationPane
from tui.widgets.evaluation.views import HardnessChart, RunsTable

WRONG = "SELECT count(*) FROM sqlite_master"
TICK = re.compile(r"^\s*(\d+)\s*[┤├┼│]")


def record_two_thirds_easy(model: str) -> None:
    """A run on the demo dev split: EX 8/12 = 66.7% on easy questions, 0% on the others."""
    dataset = load_dataset(demo_dir(), "dev")
    easy = [e for e in dataset.examples if hardness(e.query) == "easy"]
    assert len(easy) == 12
    right = set(easy[:8])
    sql = [e.query if e in right else WRONG for e in dataset.examples]

    def db_path_for(example: Example) -> Path | None:
        return dataset.db_path(example.db_id)

    predict = predictions_predictor(dataset.examples, sql)
    report = asyncio.run(evaluate(dataset.examples, db_path_for=db_path_for, model=model,
                                  split="dev", predict=predict))
    save_run(report, provider="local")


def chart_lines(app: Any, chart: HardnessChart) -> list[str]:
    region = chart.region
    return [line[region.x:region.right]
            for line in screen_text(app).splitlines()[region.y:region.bottom]]


@pytest.fixture
def recorded() -> None:
    """Four runs, scored before the app's event loop starts (tui.core.evaluation.evaluate runs
    its own): with four rows the runs table leaves the chart its minimum height at 60x20."""
    record_runs()
    record_two_thirds_easy("two-thirds")
    record_two_thirds_easy("two-thirds-again")


@pytest.mark.parametrize("size", [(60, 20), (80, 24), (160, 48)])
@pytest.mark.usefixtures("recorded")
async def test_a_two_thirds_bar_stays_below_the_100_tick(size: tuple[int, int]) -> None:
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=size) as pilot:
        ids = [pane.PANE_ID for pane in app.pane_classes()]
        await pilot.press(str(ids.index(EvaluationPane.PANE_ID) + 1))
        runs = app.query_one(RunsTable)
        await wait_until(pilot, lambda: runs.row_count == 4, what="the recorded runs")
        await workers_idle(pilot)
        await pilot.press(*["down"] * [run.model for run in runs.runs].index("two-thirds"))
        chart = app.query_one(HardnessChart)
        assert chart.series == {"two-thirds": [pytest.approx(200 / 3), 0.0, 0.0, 0.0]}
        await pilot.pause()
        lines = chart_lines(app, chart)
        text = "\n".join(lines)
        ticks = {int(m.group(1)): row for row, line in enumerate(lines)
                 if (m := TICK.match(line))}
        # The rows where the easy bar is drawn: the block under the middle of its label
        # (the legend's swatch, top left, is not under it).
        easy = lines[-1].find("easy") + 2
        bar_rows = [row for row, line in enumerate(lines[:-1])
                    if easy >= 2 and line[easy - 1:easy + 1] == "██"]
        if size[1] <= 20:
            # As in the issue, 66.7% was drawn up to the 100 tick: now the figures are text.
            assert not bar_rows, text
            assert "two-thirds" in text and "easy 66.7" in text, text
            return
        assert bar_rows, text
        assert {0, 50, 100} <= set(ticks), text
        rows_per_point = (ticks[0] - ticks[100]) / 100
        for value, row in ticks.items():
            assert ticks[0] - row == pytest.approx(value * rows_per_point), (value, text)
        step = min(b - a for a, b in zip(sorted(ticks), sorted(ticks)[1:], strict=False))
        top = min(bar_rows)
        assert top > ticks[100], f"a 66.7% bar reaches the 100 tick:\n{text}"
        shown = (ticks[0] - top) / rows_per_point
        assert abs(shown - 200 / 3) <= step / 4, (shown, step, text)
