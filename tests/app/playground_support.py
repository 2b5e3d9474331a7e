"""Helpers of the playground Pilot tests: the app, keys and pastes, and SQLite's own view."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
from rich.console import Console
from textual import events
from textual.app import App
from textual.pilot import Pilot

from tests.demo_entries import demo_entries
from tui.app import SqltuneApp
from tui.core.data.prompts import DEFAULT_TEMPLATE, PromptTemplate, messages_for
from tui.core.data.schema import SchemaCache
from tui.core.paths import demo_dir
from tui.core.session import Session
from tui.core.sql.matching import order_matters, results_match
from tui.widgets.playground import PlaygroundPane
from tui.widgets.playground.answer import AnswerView, cell
from tui.widgets.playground.pickers import ModelPicker

SIZE = (80, 24)
BASE = "sqltune-local-base"
SHIPPED = "How many orders have not been shipped yet?"


@dataclass
class Attached:
    """The app's local-server starter: hands out the module's server and never stops it."""

    base_url: str
    api_key: str = field(repr=False)

    def __call__(self) -> Attached:
        return self

    def stop(self) -> None:
        """The module fixture owns the server."""


def demo_db(db_id: str) -> Path:
    return demo_dir() / "database" / db_id / f"{db_id}.sqlite"


@dataclass(frozen=True)
class Tuned:
    """A finished tuning job on the module's server."""

    model: str
    job_id: str
    training_file: str
    template: PromptTemplate


def train_job(client: openai.OpenAI, examples: list[dict[str, str]], suffix: str,
              template: PromptTemplate = DEFAULT_TEMPLATE) -> Tuned:
    """Tune the base model on demo examples (speed max: a couple of seconds)."""
    cache = SchemaCache()
    lines = [json.dumps({"messages": messages_for(template, cache, demo_db(e["db_id"]),
                                                  e["question"], e["query"])})
             for e in examples]
    upload = client.files.create(file=("train.jsonl", ("\n".join(lines) + "\n").encode()),
                                 purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model=BASE, training_file=upload.id, suffix=suffix,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}})
    deadline = time.monotonic() + 30
    while job.status not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, "the tuning job did not finish"
        time.sleep(0.05)
        job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded" and job.fine_tuned_model, job.error
    return Tuned(job.fine_tuned_model, job.id, upload.id, template)


def screen_text(app: App[Any]) -> str:
    """The terminal as plain text."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      record=True)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return console.export_text()


async def wait_until(pilot: Pilot[Any], condition: Callable[[], object],
                     what: str = "condition", timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{screen_text(pilot.app)}")
        await pilot.pause(0.02)


def playground_app(start_local: Callable[[], Any]) -> SqltuneApp:
    """The same app class and session with only this pane: the other panes' start-up work
    (token counts, file lists) is not what these tests are about, and costs seconds."""
    return SqltuneApp(Session(data=None, provider=None, start_local=start_local),
                      panes=[PlaygroundPane])


async def open_playground(pilot: Pilot[Any]) -> PlaygroundPane:
    """Show the pane by its number key and wait for its databases and the provider's models."""
    app: SqltuneApp = pilot.app  # type: ignore[assignment]
    await pilot.press(str(app.pane_classes().index(PlaygroundPane) + 1))
    pane = pilot.app.query_one(PlaygroundPane)
    await wait_until(pilot, lambda: pane.database is not None and pane.models_loaded,
                     "databases and models")
    return pane


async def settle(pilot: Pilot[Any], pane: PlaygroundPane) -> None:
    """Wait until no side is asking or running."""
    await wait_until(pilot, lambda: not any(v.busy for v in pane.query(AnswerView)),
                     "the sides to finish")
    await pilot.pause()  # let the screen catch up with the last update


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Key presses, one per character (for short text)."""
    await pilot.press(*text)


async def paste(pilot: Pilot[Any], text: str) -> None:
    """A terminal paste, as the driver delivers it (for long text: faster than keys)."""
    pilot.app.post_message(events.Paste(text))
    await pilot.pause()


async def ask(pilot: Pilot[Any], pane: PlaygroundPane, question: str) -> None:
    """Type a question in the field and press enter."""
    field_ = pane.query_one("#pg-question")
    field_.focus()
    await pilot.pause()
    field_.value = ""  # type: ignore[attr-defined]
    await paste(pilot, question)
    await pilot.press("enter")
    await pilot.pause()
    await settle(pilot, pane)


async def pick_model(pilot: Pilot[Any], pane: PlaygroundPane, name: str,
                     key: str = "ctrl+o") -> None:
    """Open the model picker and choose ``name`` with the arrow keys."""
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ModelPicker), "model picker")
    names = [choice.name for choice in pane.models]
    await pilot.press("home", *["down"] * names.index(name), "enter")
    await wait_until(pilot, lambda: not isinstance(pilot.app.screen, ModelPicker), "pick")


def readonly_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """What plain SQLite returns for ``sql`` (the test's own view of the result)."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def table_rows(view: AnswerView) -> list[list[str]]:
    table = view.table
    return [[str(value) for value in table.get_row_at(i)] for i in range(table.row_count)]


def shown_rows(rows: list[tuple[Any, ...]]) -> list[list[str]]:
    """Rows as the table shows them (floats as the sqlite3 shell prints them, NULL...)."""
    return [[str(cell(value)) for value in row] for row in rows]


def verdict(db: Path, gold: str, sql: str) -> bool:
    """EX computed here, independently of the pane."""
    try:
        predicted = readonly_rows(db, sql)
    except sqlite3.Error:
        return False
    return results_match(readonly_rows(db, gold), predicted, ordered=order_matters(gold))


def dev_gold(question: str) -> tuple[str, str]:
    """(db_id, gold SQL) of a demo dev question."""
    entry = next(e for e in demo_entries("dev") if e["question"] == question)
    return entry["db_id"], entry["query"]


def folder_state(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}
