"""Budget to a filled-in create form at 80x24, keyboard only, over loopback to the local server:
the form picks the newest TRAINING file and its validation pair (not the newest upload) and
carries Budget's model and epochs; "train this" does export, both uploads and the form in one
key; "Valid %" takes 10 or 0.1; a missing --data folder is named, not counted forever."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
from textual.css.query import NoMatches
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Input, Select

from tests.app.conftest import Attached
from tests.app.helpers import keep_once, screen_text, wait_for_text, wait_until
from tests.app.panes_support import clear_input, no_local_server
from tui.app import SqltuneApp, make_app
from tui.core.data.prompts import DEFAULT_TEMPLATE
from tui.core.finetune.lineage import METADATA_FINGERPRINT, METADATA_NAME
from tui.messages import DatasetExported, FileUploaded
from tui.screens.create_job import CreateJobScreen
from tui.widgets.token_meter import BudgetBar, TokenMeter

SIZE = (80, 24)


def meter(app: SqltuneApp) -> TokenMeter:
    pane = app.pane("budget")
    assert isinstance(pane, TokenMeter)
    return pane


async def budget_with_validation(pilot: Pilot[Any], app: SqltuneApp) -> None:
    """On Budget: 10 (%) held out, 2 epochs; waits for the recount."""
    await pilot.press("2")
    pane = meter(app)
    await wait_until(pilot, lambda: pane.budget is not None, what="the first count")
    await pilot.press("v")
    await clear_input(pilot)
    await pilot.press("1", "0", "enter")
    await wait_until(pilot, lambda: pane.result is not None and len(pane.result.validation) > 0,
                     what="the recount with 10% held out")
    assert pane.result.options.validation_fraction == 0.1
    usable = len(pane.result.examples) + len(pane.result.validation)
    assert len(pane.result.validation) == round(usable * 0.1)
    await pilot.press("e")
    await clear_input(pilot)
    await pilot.press("2", "enter")
    await wait_until(pilot, lambda: pane.budget is not None and pane.budget.epochs_setting == 2,
                     what="2 epochs")


async def wait_for_form(pilot: Pilot[Any], app: SqltuneApp, timeout: float = 25.0) -> None:
    """Until the create form is up with its choices mounted (a training file selected)."""
    def ready() -> bool:
        try:
            return form_values(app)[0] != Select.NULL
        except (AssertionError, NoMatches):  # not pushed, or not composed yet
            return False

    await wait_until(pilot, ready, what="the create form", timeout=timeout)


def form_values(app: SqltuneApp) -> tuple[object, object, object, str]:
    screen = app.screen
    assert isinstance(screen, CreateJobScreen)
    return (screen.query_one("#create-training", Select).value,
            screen.query_one("#create-validation", Select).value,
            screen.query_one("#create-model", Select).value,
            screen.query_one("#create-epochs", Input).value)


async def test_form_picks_the_training_file_and_its_validation_pair(
        attach: Attached, sdk: openai.OpenAI) -> None:
    seen: list[Message] = []
    app = make_app(start_local=attach)
    async with app.run_test(size=SIZE, message_hook=keep_once(seen)) as pilot:
        await wait_for_text(pilot, "provider local")
        await budget_with_validation(pilot, app)
        # enter committed the field and handed the keys back to the cost table
        assert app.focused is meter(app).query_one("#budget-costs")
        await pilot.press("x")
        await wait_for_text(pilot, "Export")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: any(isinstance(m, DatasetExported) for m in seen),
                         what="the export")
        exported = next(m for m in seen if isinstance(m, DatasetExported))
        assert exported.validation is not None
        # upload the training file, then its validation file (the newest upload)
        await pilot.press("3")
        for path in (exported.train, exported.validation):
            uploads = sum(isinstance(m, FileUploaded) for m in seen)
            await pilot.press("u")
            await wait_for_text(pilot, "Upload a fine-tuning JSONL")
            await clear_input(pilot)
            await pilot.press(*str(path), "enter")
            await wait_until(pilot, lambda n=uploads: sum(  # type: ignore[misc]
                isinstance(m, FileUploaded) for m in seen) == n + 1, what=f"{path.name} up")
        ids = {m.filename: m.file_id for m in seen if isinstance(m, FileUploaded)}
        await pilot.press("4", "n")
        await wait_for_form(pilot, app)
        assert form_values(app) == (ids[exported.train.name], ids[exported.validation.name],
                                    "gpt-4.1-mini-2025-04-14", "2")
        screen = await wait_for_text(pilot, "trained tokens (")
        assert "2 epochs ×" in screen
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: sdk.fine_tuning.jobs.list().data, what="the job")
        job = sdk.fine_tuning.jobs.list().data[0]
        assert (job.training_file, job.validation_file) == (ids[exported.train.name],
                                                            ids[exported.validation.name])
        # The job names the template its file was rendered with, for any machine to find.
        assert job.metadata is not None
        assert job.metadata[METADATA_FINGERPRINT] == DEFAULT_TEMPLATE.fingerprint()
        assert job.metadata[METADATA_NAME] == "default"


async def test_train_this_exports_uploads_both_and_fills_the_form(
        attach: Attached, sdk: openai.OpenAI) -> None:
    app = make_app(start_local=attach)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_text(pilot, "provider local")
        await budget_with_validation(pilot, app)
        pane = meter(app)
        assert pane.result is not None and pane.budget is not None
        kept, held = pane.budget.kept, len(pane.result.validation)
        await pilot.press("t")
        await wait_for_form(pilot, app, timeout=30)
        files = {f.filename: f for f in sdk.files.list().data}
        assert len(files) == 2
        train = next(f for name, f in files.items() if not name.endswith("-validation.jsonl"))
        valid = next(f for name, f in files.items() if name.endswith("-validation.jsonl"))
        assert len(sdk.files.content(train.id).text.splitlines()) == kept
        assert len(sdk.files.content(valid.id).text.splitlines()) == held
        assert form_values(app) == (train.id, valid.id, "gpt-4.1-mini-2025-04-14", "2")
        await wait_for_text(pilot, "trained tokens (")
        assert app.query_one("#panes").active == "tab-jobs"  # type: ignore[attr-defined]
        await pilot.press("escape")


async def test_train_this_is_in_the_command_palette() -> None:
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"train this")
        await wait_for_text(pilot, "Train this")


async def test_a_missing_data_folder_is_named_not_counted_forever(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-spider"
    app = make_app(data=missing, start_local=no_local_server)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        bar = meter(app).query_one(BudgetBar)
        await wait_until(pilot, lambda: bar.error is not None, what="the failure")
        screen = screen_text(app)
        assert "counting tokens" not in screen
        joined = "".join(line.strip() for line in screen.splitlines())
        assert f"dataset folder not found:{missing}" in joined  # the whole path, wrapped
