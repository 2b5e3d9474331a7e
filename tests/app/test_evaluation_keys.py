"""Evaluate pane keys at 80x24 without a provider: the model picker draws ticks as [x] / [ ] and
enter uses them, answered hints go, and the report export writes into the exports folder (ctrl+s
works) and says where."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.message import Message
from textual.notifications import Notify
from textual.widgets import Label

from tests.app.helpers import keep_once, screen_text, wait_until
from tests.app.panes_support import no_local_server
from tui.app import SqltuneApp
from tui.core.evaluation.report import EvalReport, QuestionResult
from tui.core.paths import exports_dir
from tui.core.session import Session
from tui.screens.eval_models import ModelPicker
from tui.screens.export_dialog import ExportDialog, ExportRequest, ReportExportDialog
from tui.widgets.evaluation import EvaluationPane

BASE = "sqltune-local-base"
TUNED = "ft:sqltune-local-base:demo:ftjob-1a2b"


def evaluation_app() -> SqltuneApp:
    return SqltuneApp(Session(data=None, provider=None, start_local=no_local_server),
                      panes=[EvaluationPane])


def state(pane: EvaluationPane) -> str:
    return str(pane.query_one("#eval-state", Label).render())


async def models_listed(pilot: object, app: SqltuneApp) -> EvaluationPane:
    """The pane after its (failed) provider listing, then told a job just made TUNED."""
    pane = app.query_one(EvaluationPane)
    await wait_until(pilot, lambda: "models:" in state(pane), what="the failed listing")  # type: ignore[arg-type]
    pane._new_model = TUNED
    pane.post_message(EvaluationPane.ModelsListed([BASE, TUNED]))
    await wait_until(pilot, lambda: "m: choose it" in state(pane), what="the new-model hint")  # type: ignore[arg-type]
    return pane


async def test_picker_ticks_are_glyphs_enter_uses_them_and_old_hints_go() -> None:
    app = evaluation_app()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await models_listed(pilot, app)
        assert pane.run_bar.chosen == [TUNED]
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPicker), what="the picker")
        shown = screen_text(app)
        assert f"[ ] {BASE}" in shown and f"[x] {TUNED}" in shown, shown
        assert "enter or ctrl+s: use these" in shown
        await pilot.press("space")  # the cursor starts on the first model
        assert f"[x] {BASE}" in screen_text(app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, ModelPicker),
                         what="enter used the ticked models")
        assert set(pane.run_bar.chosen) == {BASE, TUNED}
        assert "m: choose it" not in state(pane) and "2 models chosen · r: run" in state(pane)


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory of the app, which exports must leave alone."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


async def test_report_export_goes_to_the_exports_folder_with_ctrl_s(elsewhere: Path) -> None:
    seen: list[Message] = []
    app = evaluation_app()
    async with app.run_test(size=(80, 24), message_hook=keep_once(seen)) as pilot:
        pane = app.query_one(EvaluationPane)
        sql = "SELECT count(*) FROM book"
        row = QuestionResult(index=0, db_id="bookshop", question="How many books?", gold=sql,
                             predicted=sql, hardness="easy", match=True)
        pane._show_report(EvalReport(rows=[row], model=BASE, split="dev", total=1), BASE)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, ReportExportDialog),
                         what="the export dialog")
        assert str(exports_dir()) in screen_text(app)
        await pilot.press("ctrl+s")
        written = [exports_dir() / f"sqltune-eval-{BASE}-dev.{ext}" for ext in ("csv", "json")]
        await wait_until(pilot, lambda: all(path.exists() for path in written),
                         what="the report files")
        await wait_until(pilot, lambda: any(isinstance(m, Notify) and "Wrote" in
                                            m.notification.message for m in seen),
                         what="the notification")
        note = next(m.notification.message for m in seen
                    if isinstance(m, Notify) and "Wrote" in m.notification.message)
        assert str(exports_dir()) in note and written[0].name in note
    assert list(elsewhere.iterdir()) == []


async def test_ctrl_s_writes_from_the_training_export_dialog_too(tmp_path: Path) -> None:
    app = evaluation_app()
    async with app.run_test(size=(80, 24)) as pilot:
        answers: list[ExportRequest | None] = []
        app.push_screen(ExportDialog(tmp_path / "train.jsonl", tmp_path / "valid.jsonl", 10, 2),
                        answers.append)
        await pilot.pause()
        await pilot.press("enter")  # enter on the training path moves to the validation path
        assert app.focused is app.screen.query_one("#export-validation")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: bool(answers), what="the dialog closed")
        assert answers == [ExportRequest(tmp_path / "train.jsonl", tmp_path / "valid.jsonl")]
