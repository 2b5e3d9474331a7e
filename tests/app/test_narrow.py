"""Widths: the tab bar stays readable at 60 columns, and the Evaluate tables show whole columns
(never one cut at the edge) at 60x20, 80x24 and 160x48."""

from __future__ import annotations

import re
from typing import Any

import pytest
from textual.widget import Widget

from tests.app.helpers import screen_text
from tests.app.panes_support import no_local_server, wait_until, workers_idle
from tests.app.test_evaluation_snapshots import record_runs
from tui.app import PANES, SqltuneApp, make_app
from tui.core.inference.playground import ModelChoice
from tui.core.session import Session
from tui.widgets.evaluation import EvaluationPane
from tui.widgets.evaluation.views import RUN_COLUMNS, QuestionTable, RunsTable
from tui.widgets.playground import PlaygroundPane
from tui.widgets.playground.pickers import ModelPicker


def cells(line: str) -> list[str]:
    """A table line's cells (columns are two or more spaces apart)."""
    return [cell for cell in re.split(r"\s{2,}", line.strip()) if cell]


def table_lines(app: Any, table: Widget) -> list[str]:
    """The lines of the screen inside ``table``'s region."""
    region = table.region
    return [line[region.x:region.right]
            for line in screen_text(app).splitlines()[region.y:region.bottom]]


@pytest.mark.parametrize("size", [(60, 20), (80, 24)])
async def test_every_tab_label_starts_whole_whichever_pane_is_shown(
        size: tuple[int, int]) -> None:
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=size) as pilot:
        for index in range(len(PANES)):
            app.action_show_pane(index)
            await pilot.pause()
            bar = screen_text(app).splitlines()[1]
            labels = cells(bar)
            assert [label.split()[0] for label in labels] == [
                str(n + 1) for n in range(len(PANES))], bar
            for n, (label, shown) in enumerate(zip(PANES, labels, strict=True)):
                assert label.PANE_TITLE.startswith(shown.split(" ", 1)[1]), (n, bar)
            if size[0] >= 80:
                assert labels == [f"{n + 1} {p.PANE_TITLE}" for n, p in enumerate(PANES)]


@pytest.fixture
def recorded() -> None:
    """Two runs in history (scored from predictions: no provider needed)."""
    record_runs()


@pytest.mark.parametrize("size", [(60, 20), (80, 24), (160, 48)])
@pytest.mark.usefixtures("recorded")
async def test_evaluate_tables_show_whole_columns(size: tuple[int, int]) -> None:
    app = SqltuneApp(Session(data=None, provider=None, start_local=no_local_server),
                     panes=[EvaluationPane])
    async with app.run_test(size=size) as pilot:
        await pilot.press("1")
        runs = app.query_one(RunsTable)
        await wait_until(pilot, lambda: runs.row_count == 2, what="the recorded runs")
        await workers_idle(pilot)
        header, *rows = table_lines(app, runs)
        labels = {label for _, label, _ in RUN_COLUMNS}
        shown = cells(header)
        assert shown[0] == "model" and set(shown) <= labels, header
        if size[0] == 160:
            assert set(shown) == labels
        assert len(rows) >= 2 and all(len(cells(row)) == len(shown) for row in rows[:2]), rows
        await pilot.press("enter")
        questions = app.query_one(QuestionTable)
        await wait_until(pilot, lambda: app.focused is questions, what="the questions")
        await pilot.pause()
        assert "f: failures only" in screen_text(app)  # the title's hint is not cut
        table = table_lines(app, questions)
        assert cells(table[0]) == ["#", "level", "EX", "database", "question"], table[0]
        for result, line in zip(questions.results, table[1:4], strict=False):
            shown_question = cells(line)[-1]
            assert shown_question == result.question or (
                shown_question.endswith("…")
                and result.question.startswith(shown_question[:-1])), (line, result.question)


async def test_long_model_names_fit_the_playground_picker_at_60_columns() -> None:
    tuned = "ft:sqltune-local-base:spider-train-demo:ftjob-9f8e7d6c5b4a"
    models = [ModelChoice(tuned, "fine-tuned"),
              ModelChoice(f"{tuned}:ckpt-step-120", "checkpoint"),
              ModelChoice("sqltune-local-base", "base")]
    app = SqltuneApp(Session(data=None, provider=None, start_local=no_local_server),
                     panes=[EvaluationPane])
    async with app.run_test(size=(60, 20)) as pilot:
        app.push_screen(ModelPicker("Model for the left side", models, None))
        await pilot.pause()
        lines = screen_text(app).splitlines()
        for kind, end in (("fine-tuned", "9f8e7d6c5b4a"), ("checkpoint", "ckpt-step-120"),
                          ("base", "sqltune-local-base")):
            line = next(line for line in lines if f" {kind} " in line)
            assert (f"{end} " in line and "ft:sqltune" in line) or kind == "base", line


@pytest.mark.parametrize("size", [(60, 20), (80, 24)])
async def test_two_tuned_models_side_by_side_keep_their_job_ids(size: tuple[int, int]) -> None:
    base = "ft:sqltune-local-base:spider-train-demo:ftjob-"
    app = SqltuneApp(Session(data=None, provider=None, start_local=no_local_server),
                     panes=[PlaygroundPane])
    async with app.run_test(size=size) as pilot:
        pane = app.query_one(PlaygroundPane)
        await wait_until(pilot, lambda: pane.models_loaded, what="the (failed) model listing")
        pane.pair.a.set_choice(ModelChoice(f"{base}9f8e7d6c5b4a", "fine-tuned"))
        pane.pair.b.set_choice(ModelChoice(f"{base}0a1b2c3d4e5f", "fine-tuned"))
        pane.pair.set_comparing(True)
        await pilot.pause()
        await pilot.pause()
        titles = next(line for line in screen_text(app).splitlines() if "╭─" in line)
        assert "d6c5b4a " in titles and "d4e5f " in titles, titles
