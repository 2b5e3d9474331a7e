"""The app on a local server with a real open-weight base (the tiny model registered in
config.toml's [local_server.base_models]), over loopback at 80x24: the server's base_models
route feeds Budget and the create form, the base's own tokenizer counts, training is free and
no duration is made up before a measurement."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from textual.widgets import Select

from tests.app.conftest import Attached
from tests.app.helpers import screen_text, wait_until
from tests.app.panes_support import choose
from tui.app import make_app
from tui.core.budget.counters import BaseModelInfo, ModelTokenizerCounter, counter_for
from tui.core.finetune.form import fetch_base_models
from tui.core.provider.config import config_path
from tui.screens.create_job import CreateJobScreen
from tui.server.inprocess import LocalServer, start_local_server
from tui.widgets.token_meter import TokenMeter

SIZE = (80, 24)


@pytest.fixture
def tiny_server(tiny_model_dir: Path, tmp_path: Path) -> Iterator[LocalServer]:
    """A local server whose only real base is the tiny model, named ``tiny``."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[local_server.base_models]\ntiny = "{tiny_model_dir}"\n',
                    encoding="utf-8")
    server = start_local_server(tmp_path / "server", speed="4")
    yield server
    server.stop()


def test_the_route_describes_the_base(tiny_server: LocalServer, tiny_model_dir: Path) -> None:
    client = openai.AsyncOpenAI(base_url=tiny_server.base_url, api_key=tiny_server.api_key)

    async def read() -> object:
        try:
            return await fetch_base_models(client)
        finally:
            await client.close()

    listed = asyncio.run(read())
    assert listed is not None
    (tiny,) = listed.models  # type: ignore[attr-defined]
    assert (tiny.id, tiny.kind, tiny.engine, tiny.device) == ("tiny", "folder", "lora", "cpu")
    assert tiny.source == str(tiny_model_dir) and tiny.folder == str(tiny_model_dir)
    assert tiny.tokens_per_second is None  # never trained here: nothing measured
    assert isinstance(counter_for("tiny", [tiny]), ModelTokenizerCounter)


async def test_budget_and_the_form_on_the_servers_real_base(tiny_server: LocalServer,
                                                             tiny_model_dir: Path,
                                                             tmp_path: Path) -> None:
    from tests.core.test_prepare import build_spider_folder

    attach = Attached(tiny_server.base_url, tiny_server.api_key)
    # the demo's schemas are longer than the tiny model's 1,024 tokens: a small Spider folder
    app = make_app(data=build_spider_folder(tmp_path / "spider"), start_local=attach)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        pane = app.pane("budget")
        assert isinstance(pane, TokenMeter)
        await wait_until(pilot, lambda: [b.id for b in pane.bases] == ["tiny"],
                         what="the server's bases")
        await wait_until(pilot, lambda: pane.budget is not None, what="the first count")
        await choose(pilot, pane.query_one("#budget-model", Select), "m", "tiny")
        await wait_until(pilot, lambda: pane.budget is not None and pane.budget.model == "tiny",
                         what="the tiny count")
        budget = pane.budget
        assert budget is not None
        assert budget.encoding == "tiny tokenizer" and budget.free
        base = BaseModelInfo("tiny", str(tiny_model_dir), kind="folder",
                             folder=str(tiny_model_dir))
        counter = counter_for("tiny", [base])
        assert pane.result is not None
        assert pane.result.tokens == [counter.count(m) for m in pane.result.messages]
        assert budget.kept == len(pane.result.tokens) > 0 and budget.over_context == 0
        # the server has measured nothing yet: Budget gives no duration, and says so
        assert "duration: no measurement yet on cpu" in " ".join(screen_text(app).split())

        await pilot.press("t")  # train this: export, upload, the form on the real base
        await wait_until(pilot, lambda: isinstance(app.screen, CreateJobScreen),
                         what="the form", timeout=30)
        form = app.screen
        await wait_until(pilot, lambda: form.is_mounted and form.query(
            "#create-model").results(Select) and form.query_one("#create-model", Select).value
            == "tiny", what="tiny preselected")
        await wait_until(pilot, lambda: "trained tokens" in screen_text(app),
                         what="the estimate")
        flat = " ".join(screen_text(app).replace("│", " ").split())
        assert f"≈ {budget.trained_tokens:,} trained tokens" in flat
        assert "free on the local server" in flat
        assert "over tiny's context" not in flat
        assert "duration: no measurement yet on cpu" in flat
        assert "CPU training suits small datasets" in flat
        await pilot.press("escape")


async def test_the_forms_estimate_is_what_the_server_trains(tiny_model_dir: Path,
                                                            tmp_path: Path) -> None:
    """A job on the real base, created from the form: the server's trained_tokens equal the
    form's estimate (one tokenizer, one chat template, one way of counting). The server runs
    as its own process, as the app's background service does (training spawns a worker)."""
    import re

    from tests.app.test_create_job_bases import training_file
    from tests.server.helpers import ServerProcess

    server = ServerProcess(tmp_path / "server", speed="max",
                           args=["--base-model", f"tiny={tiny_model_dir}"])
    sdk = server.client()
    try:
        with training_file(tmp_path).open("rb") as stream:
            uploaded = sdk.files.create(file=("singers.jsonl", stream), purpose="fine-tune")
        app = make_app(start_local=Attached(server.base_url, server.api_key))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("4", "n")
            await wait_until(pilot, lambda: isinstance(app.screen, CreateJobScreen),
                             what="the form")
            form = app.screen
            await wait_until(pilot, lambda: form.query_one("#create-training", Select).value
                             == uploaded.id, what="the training file preselected")
            await pilot.press("enter", *"tiny", "enter")  # the model list opens on enter
            await wait_until(pilot, lambda: form.query_one("#create-model", Select).value
                             == "tiny", what="tiny chosen")
            await pilot.press("tab", "tab", "tab", "tab", "ctrl+a", "ctrl+k", "1")
            await wait_until(pilot, lambda: "1 epochs ×" in screen_text(app), what="1 epoch")
            found = re.search(r"≈ ([\d,]+) trained tokens", screen_text(app))
            assert found is not None
            estimate = int(found.group(1).replace(",", ""))
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: sdk.fine_tuning.jobs.list().data, what="the job")
        job = sdk.fine_tuning.jobs.list().data[0]
        assert job.model == "tiny"
        for _ in range(1200):
            job = sdk.fine_tuning.jobs.retrieve(job.id)
            if job.status in ("succeeded", "failed", "cancelled"):
                break
            await asyncio.sleep(0.1)
        assert job.status == "succeeded", job.error
        assert job.trained_tokens == estimate
    finally:
        sdk.close()
        server.terminate()
