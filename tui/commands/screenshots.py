"""``sqltune screenshots`` (hidden): the README's pictures, one SVG per pane, made by the app."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import html
import os
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tui.app import SqltuneApp, make_app
from tui.core.finetune.status import TERMINAL_STATUSES
from tui.launch import AttachedServer
from tui.widgets.pane import Pane
from tui.widgets.status_line import ProviderStatus

SIZE = (100, 30)
"""Terminal size of the pictures (columns, rows)."""
HIDDEN_KEY = "hidden"
"""What the status line shows in place of the (masked) key in a screenshot."""
ISOLATED_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY",
                "AZURE_OPENAI_ENDPOINT", "SQLTUNE_SERVER_KEY", "SQLTUNE_LOCAL_URL",
                "SQLTUNE_LOCAL_KEY")
"""Variables that would point the app at a real provider: unset while shooting."""
SETTLE_TIMEOUT = 90.0
"""Seconds a pane may take to finish its work before its picture is taken."""


class ScreenshotError(Exception):
    """The demo could not be staged, a pane never settled, or a picture would leak a key."""


@dataclass
class Stage:
    """The demo world the pictures show: a local server with one finished fine-tuning job."""

    server: Any
    """The in-process local server (tui.server.inprocess.LocalServer)."""
    train_file_id: str
    """The uploaded training file."""
    job_id: str
    """The finished demo job."""
    fine_tuned_model: str
    """The model it produced."""
    dev_question: str
    """A question of the demo's dev split (asked in the playground)."""
    secrets: list[str] = field(default_factory=list, repr=False)
    """Strings no picture may contain: the key and its masked form."""


# ── the demo world ──────────────────────────────────────────────────────────────────────

@contextlib.contextmanager
def isolated_home() -> Iterator[Path]:
    """Fresh config and data folders, and no provider variables, for the duration."""
    saved = {name: os.environ.get(name)
             for name in (*ISOLATED_ENV, "SQLTUNE_CONFIG_DIR", "SQLTUNE_DATA_DIR")}
    with tempfile.TemporaryDirectory(prefix="sqltune-screenshots-") as folder:
        home = Path(folder)
        for name in ISOLATED_ENV:
            os.environ.pop(name, None)
        os.environ["SQLTUNE_CONFIG_DIR"] = str(home / "config")
        os.environ["SQLTUNE_DATA_DIR"] = str(home / "data")
        try:
            yield home
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


async def stage_demo(server: Any, home: Path, timeout: float = 300.0) -> Stage:
    """Prepare the demo data, upload it, fine-tune on it to the end, as the app would record it."""

    import openai

    from tui.core.data.datasets import load_dataset
    from tui.core.data.prepare import PrepareOptions, prepare
    from tui.core.finetune.files import FileService
    from tui.core.finetune.jobs import JobService, JobSpec
    from tui.core.finetune.lineage import (
        prompt_for,
        record_job,
        record_prepared,
        record_upload,
        spec_with_template,
    )
    from tui.core.paths import demo_dir
    from tui.core.provider.config import mask_key
    from tui.server.engines import BASE_MODEL

    exports = home / "data" / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    result = await asyncio.to_thread(prepare, demo_dir(), PrepareOptions(validation_fraction=0.1))
    written = await asyncio.to_thread(result.write, exports / "demo-train.jsonl",
                                      exports / "demo-validation.jsonl")
    await asyncio.to_thread(record_prepared, result, written)
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key) as client:
        files = FileService(client)
        train = await files.upload(written.path)
        assert written.validation_path is not None
        valid = await files.upload(written.validation_path)
        jobs = JobService(client)
        await asyncio.to_thread(record_upload, "local", train.id, written.path)
        await asyncio.to_thread(record_upload, "local", valid.id, written.validation_path)
        spec = await asyncio.to_thread(spec_with_template, JobSpec(
            model=BASE_MODEL, training_file=train.id, validation_file=valid.id, suffix="demo",
            seed=7), "local")
        job = await jobs.create(spec)
        await asyncio.to_thread(record_job, "local", job)
        deadline = time.monotonic() + timeout
        while job.status not in TERMINAL_STATUSES:
            if time.monotonic() > deadline:
                raise ScreenshotError(f"the demo job {job.id} did not finish in {timeout:.0f} s")
            await asyncio.sleep(0.2)
            job = await jobs.retrieve(job.id)
        if job.status != "succeeded" or not job.fine_tuned_model:
            raise ScreenshotError(f"the demo job {job.id} ended {job.status}")
        await asyncio.to_thread(record_job, "local", job)
        # The playground picture shows the tuned model asked with its own training prompt.
        prompt = await prompt_for(job.fine_tuned_model, "local", client=client)
        if not prompt.known:
            raise ScreenshotError(f"the demo model's template is not known: {prompt.warning}")
    dev = load_dataset(demo_dir(), "dev").examples
    return Stage(server=server, train_file_id=train.id, job_id=job.id,
                 fine_tuned_model=job.fine_tuned_model, dev_question=dev[0].question,
                 secrets=[server.api_key, mask_key(server.api_key)])


# ── settling and checking ───────────────────────────────────────────────────────────────

def _busy_workers(app: SqltuneApp, pane: Pane) -> list[str]:
    """Names of the running workers started by the pane or a widget inside it."""
    busy = []
    for worker in app.workers:
        node = worker.node
        inside = node is pane or (hasattr(node, "ancestors") and pane in node.ancestors)
        if worker.is_running and inside:
            busy.append(worker.name or worker.group)
    return busy


async def settle(pilot: Pilot[int], pane: Pane, timeout: float = SETTLE_TIMEOUT) -> None:
    """Wait until the pane's workers are done and the screen stays the same for a moment."""
    app = pilot.app
    assert isinstance(app, SqltuneApp)
    deadline = time.monotonic() + timeout
    last, calm = "", 0
    while calm < 3:
        await pilot.pause(0.1)
        busy = _busy_workers(app, pane)
        frame = app.export_screenshot()
        calm = calm + 1 if not busy and frame == last else 0
        last = frame
        if time.monotonic() > deadline:
            raise ScreenshotError(f"the {pane.PANE_TITLE} pane did not settle in {timeout:.0f} s"
                                  f" (still running: {', '.join(busy) or 'nothing'})")


async def wait_for(pilot: Pilot[int], condition: Callable[[], object], what: str,
                   timeout: float = SETTLE_TIMEOUT) -> None:
    """Let the app run until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ScreenshotError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.1)


def svg_text(svg: str) -> str:
    """The visible text of an exported SVG (tags stripped, entities and nbsp undone)."""
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


def leaked_secrets(svg: str, secrets: Sequence[str]) -> list[str]:
    """Which secrets (described by their length, never shown) appear in the SVG."""
    text = svg_text(svg)
    return [f"a {len(s)}-character secret" for s in secrets
            if s and (s in svg or s in text)]


def hide_key(app: SqltuneApp) -> None:
    """Screenshot mode: the status line says the key is hidden instead of masking it."""
    status = app.query_one(ProviderStatus)
    if status.connection is not None:
        status.connection = dataclasses.replace(status.connection, masked_key=HIDDEN_KEY)


# ── what each pane shows ────────────────────────────────────────────────────────────────

Scene = Callable[[Pilot[int], Pane, Stage], Awaitable[None]]


async def _dataset(pilot: Pilot[int], pane: Pane, stage: Stage) -> None:
    # A multi-table question: its prompt shows the schema with foreign keys.
    await pilot.press(*["down"] * 12)


async def _budget(pilot: Pilot[int], pane: Pane, stage: Stage) -> None:
    # Hold out a tenth of the examples for validation, as the staged job did.
    await pilot.press("v", "end", "backspace", *"0.1", "enter")
    await settle(pilot, pane)
    await pilot.press("escape")


async def _files(pilot: Pilot[int], pane: Pane, stage: Stage) -> None:
    from textual.coordinate import Coordinate
    from textual.widgets import DataTable

    table = pane.query_one(DataTable)
    await wait_for(pilot, lambda: stage.train_file_id in table.rows, "the training file listed")

    def highlighted() -> object:
        cell = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0))
        return cell.row_key.value

    for _ in range(table.row_count):
        if highlighted() == stage.train_file_id:
            break
        await pilot.press("down")
    await pilot.press("v")  # the head of the training file


async def _jobs(pilot: Pilot[int], pane: Pane, stage: Stage) -> None:
    from textual.widgets import ContentSwitcher, DataTable

    table = pane.query_one("#jobs-table", DataTable)
    await wait_for(pilot, lambda: stage.job_id in table.rows, f"job {stage.job_id} listed")
    await pilot.press("enter")  # the finished job's detail
    switcher = pane.query_one(ContentSwitcher)
    await wait_for(pilot, lambda: switcher.current == "jobs-detail", "the job detail to open")
    await settle(pilot, pane)
    await pilot.press("l")  # its loss chart


async def _playground(pilot: Pilot[int], pane: Pane, stage: Stage) -> None:
    await settle(pilot, pane)
    await pilot.press(*stage.dev_question, "enter")


async def _evaluation(pilot: Pilot[int], pane: Pane, stage: Stage) -> None:
    await settle(pilot, pane)
    # The comparison the loop is for: the tuned model against its base, on the demo dev split.
    base = stage.fine_tuned_model.split(":")[1]
    pane.run_bar.choose([stage.fine_tuned_model, base])  # type: ignore[attr-defined]
    await pilot.press("r")
    await settle(pilot, pane)
    await pilot.press("space", "down", "space")  # both models in the hardness chart


SCENES: dict[str, Scene] = {
    "dataset": _dataset,
    "budget": _budget,
    "files": _files,
    "jobs": _jobs,
    "playground": _playground,
    "evaluation": _evaluation,
}
"""The action shown in each known pane (a pane without one is shown as it opens)."""


async def shoot(app: SqltuneApp, stage: Stage, out: Path, *, panes: Sequence[str] | None = None,
                size: tuple[int, int] = SIZE, log: Callable[[str], object] = print) -> list[Path]:
    """Visit every pane (or those named), run its scene, save ``<out>/<pane id>.svg``."""
    out.mkdir(parents=True, exist_ok=True)
    known = [pane.PANE_ID for pane in app.pane_classes()]
    unknown = sorted(set(panes or ()) - set(known))
    if unknown:
        raise ScreenshotError(f"no pane {', '.join(unknown)}; the panes are {', '.join(known)}")
    saved: list[Path] = []
    async with app.run_test(size=size) as pilot:
        app.animation_level = "none"  # still pictures: no pulsing bars or spinners
        status = app.query_one(ProviderStatus)
        await wait_for(pilot, lambda: status.state != "connecting", "the provider")
        if status.state != "connected":
            raise ScreenshotError(f"the app could not reach the local server: {status.error}")
        hide_key(app)
        for index, pane_id in enumerate(known):
            if panes and pane_id not in panes:
                continue
            app.action_show_pane(index)
            pane = app.pane(pane_id)
            await settle(pilot, pane)
            scene = SCENES.get(pane_id)
            if scene is None:
                log(f"{pane_id}: no scene for this pane; showing it as it opens")
            else:
                await scene(pilot, pane, stage)
                await settle(pilot, pane)
            app.clear_notifications()
            await pilot.pause(0.2)
            path = Path(app.save_screenshot(filename=f"{pane_id}.svg", path=str(out)))
            if leaked := leaked_secrets(path.read_text(encoding="utf-8"), stage.secrets):
                path.unlink()
                raise ScreenshotError(f"the {pane_id} picture showed {', '.join(leaked)}; "
                                      f"{path} was deleted")
            saved.append(path)
            log(f"{pane_id}: {path}")
    return saved


async def take_screenshots(out: Path, *, panes: Sequence[str] | None = None,
                           size: tuple[int, int] = SIZE, speed: str = "max",
                           log: Callable[[str], object] = print) -> list[Path]:
    """Stage the demo on a private local server, then picture the panes with the app."""
    from tui.server.inprocess import start_local_server

    with isolated_home() as home:
        server = start_local_server(home / "data" / "server", speed=speed)
        try:
            stage = await stage_demo(server, home)
            log(f"demo job {stage.job_id} succeeded: {stage.fine_tuned_model}")
            app = make_app(start_local=lambda: AttachedServer(server.base_url, server.api_key))
            return await shoot(app, stage, out, panes=panes, size=size, log=log)
        finally:
            server.stop()


def parse_size(value: str) -> tuple[int, int]:
    """``100x30`` as (columns, rows)."""
    columns, _, rows = value.partition("x")
    try:
        size = (int(columns), int(rows))
    except ValueError:
        raise ScreenshotError(f"size is COLUMNSxROWS, e.g. 100x30, not {value!r}") from None
    if size[0] < 40 or size[1] < 12:
        raise ScreenshotError(f"size must be at least 40x12, not {value!r}")
    return size


def run(args: argparse.Namespace) -> int:
    """Write one SVG per pane; exit 1 with the reason when a picture cannot be made safely."""
    panes = [name.strip() for name in args.panes.split(",") if name.strip()] or None
    try:
        asyncio.run(take_screenshots(args.out, panes=panes, size=parse_size(args.size)))
    except ScreenshotError as error:
        print(f"sqltune screenshots: {error}", file=sys.stderr)
        return 1
    return 0
