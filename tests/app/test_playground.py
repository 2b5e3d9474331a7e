"""Playground pane at 80x24 against the real local server: ask, run read-only, score, compare."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from textual.message import Message

from tests.app.playground_support import (
    BASE,
    SHIPPED,
    SIZE,
    Attached,
    Tuned,
    ask,
    demo_db,
    dev_gold,
    folder_state,
    open_playground,
    paste,
    pick_model,
    playground_app,
    readonly_rows,
    screen_text,
    settle,
    shown_rows,
    table_rows,
    train_job,
    type_text,
    verdict,
    wait_until,
)
from tui.app import make_app
from tui.core.data.prompts import COMPACT_TEMPLATE
from tui.core.history import History
from tui.core.inference.playground import QuestionHistory, pretty_sql
from tui.core.paths import demo_dir
from tui.messages import JobEnded
from tui.server.inprocess import LocalServer, start_local_server
from tui.widgets.playground.answer import AnswerView
from tui.widgets.playground.pickers import ChoicePicker, ModelPicker


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One local server at full speed for the module."""
    with start_local_server(tmp_path_factory.mktemp("pg-server"), speed="max") as server:
        yield server


@pytest.fixture(scope="module")
def tuned(pg_server: LocalServer) -> Tuned:
    """A model tuned on the demo training split, rendered with the compact template."""
    train = json.loads((demo_dir() / "train.json").read_text())
    with openai.OpenAI(base_url=pg_server.base_url, api_key=pg_server.api_key) as client:
        return train_job(client, train, "demo", COMPACT_TEMPLATE)


async def test_base_model_answers_with_figures_history_recalls_and_the_key_stays_hidden(
        pg_server: LocalServer, tuned: Tuned) -> None:
    answers: list[AnswerView.Answered] = []

    def hook(message: Message) -> None:
        if isinstance(message, AnswerView.Answered) and message not in answers:
            answers.append(message)  # the hook sees it at every node it bubbles through

    app = make_app(start_local=Attached(pg_server.base_url, pg_server.api_key))
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        pane = await open_playground(pilot)
        kinds = {choice.name: choice.kind for choice in pane.models}
        assert kinds[tuned.model] == "fine-tuned" and kinds[BASE] == "base"
        assert any(kind == "checkpoint" and name.startswith(tuned.model)
                   for name, kind in kinds.items())
        await pick_model(pilot, pane, BASE)
        await ask(pilot, pane, "How many authors are there?")
        side = pane.pair.a
        assert side.choice is not None and side.choice.name == BASE
        assert len(answers) == 1
        answer = answers[0].answer
        first_sql = side.editor.text
        assert first_sql == pretty_sql(answer.sql) and "COUNT(*)" in first_sql.upper()
        assert side.editor.language == "sql"
        db = demo_db("bookshop")
        assert pane.database is not None and pane.database.path == db
        assert table_rows(side) == shown_rows(readonly_rows(db, first_sql))
        status = side.status_text
        assert answer.prompt_tokens > 0 and answer.completion_tokens > 0
        for figure in (f"{answer.latency_s:.2f} s", f"{answer.prompt_tokens:,} prompt",
                       f"{answer.completion_tokens:,} completion", "$0", "1 row in"):
            assert figure in status
        shown = screen_text(app)
        assert f"{answer.prompt_tokens:,} prompt" in shown and "gold" not in status
        assert pg_server.api_key not in shown
        assert pg_server.api_key not in app.export_screenshot()
        # A second question, then recall the first from the history (newest first).
        await ask(pilot, pane, "List the titles of all books.")
        assert len(answers) == 2 and side.editor.text != first_sql
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoicePicker), "history")
        lines = screen_text(app)
        assert lines.index("List the titles of all books.") < lines.index(
            "How many authors are there?")
        await pilot.press("down", "enter")
        await pilot.pause()
        await settle(pilot, pane)
        assert pane.query_one("#pg-question").value == "How many authors are there?"  # type: ignore[attr-defined]
        assert side.editor.text == first_sql
        assert side.outcome is not None and side.outcome.sql == first_sql
        assert table_rows(side) == shown_rows(readonly_rows(db, first_sql))
        assert len(answers) == 2  # recalled and run again, not asked again
        # In the question field, up and down walk the history as a shell does.
        field_ = pane.query_one("#pg-question")
        assert app.focused is field_
        walked = []
        for key in ("up", "up", "up", "down", "down"):
            await pilot.press(key)
            walked.append(field_.value)  # type: ignore[attr-defined]
        assert walked == ["List the titles of all books.", "How many authors are there?",
                          "How many authors are there?", "List the titles of all books.",
                          "How many authors are there?"]  # the last one: the draft again
        # The model picker lists the tuned model and its checkpoint, never the key.
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPicker), "picker")
        assert tuned.model in screen_text(app) and pg_server.api_key not in screen_text(app)
        assert pg_server.api_key not in app.export_screenshot()
        await pilot.press("escape")
        # Every action is in the command palette too (entries come from the bindings).
        await pilot.press("ctrl+p")
        await paste(pilot, "Playground: History")
        await wait_until(pilot, lambda: "Playground: History" in screen_text(app), "palette")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoicePicker), "history")
        await pilot.press("escape")
    # The history outlives the app.
    assert [entry.question for entry in QuestionHistory().load()] == [
        "List the titles of all books.", "How many authors are there?"]


async def test_dev_question_gold_verdict_edit_rerun_and_refused_writes(
        pg_server: LocalServer) -> None:
    app = playground_app(Attached(pg_server.base_url, pg_server.api_key))
    db_id, gold = dev_gold(SHIPPED)
    db = demo_db(db_id)
    before = folder_state(db.parent)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_playground(pilot)
        await pick_model(pilot, pane, BASE)
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoicePicker), "questions")
        await paste(pilot, "shipped")
        await pilot.press("enter")
        await pilot.pause()
        await settle(pilot, pane)
        side = pane.pair.a
        assert pane.database is not None and pane.database.db_id == db_id
        assert pane.current_gold() == gold
        assert f"gold {gold}" in screen_text(app)
        first = side.editor.text
        expected = verdict(db, gold, first)
        assert side.outcome is not None and side.outcome.match is expected
        assert ("✓ matches gold" if expected else "✗ differs from gold") in side.status_text
        # Edit the SQL from the keyboard and run it again.
        await pilot.press("tab")
        assert app.focused is side.editor
        side.editor.select_all()
        fixed = "SELECT count(order_id) FROM orders WHERE shipped_date IS NULL"
        assert fixed != gold
        await paste(pilot, fixed)
        await pilot.press("ctrl+r")
        await pilot.pause()
        await settle(pilot, pane)
        assert side.editor.text == fixed and side.outcome is not None
        assert side.outcome.sql == fixed
        assert table_rows(side) == shown_rows(readonly_rows(db, fixed))
        assert side.outcome.match is verdict(db, gold, fixed) is True
        assert "✓ matches gold" in screen_text(app)
        # Statements that write are refused; the database folder stays byte-identical.
        writes = ["DELETE FROM orders", "DROP TABLE author", "UPDATE book SET price = 0",
                  f"ATTACH DATABASE '{db.parent / 'evil.sqlite'}' AS evil",
                  "SELECT 1; DELETE FROM orders", "PRAGMA journal_mode=DELETE"]
        for index, sql in enumerate(writes):
            side.editor.select_all()
            await (type_text if index == 0 else paste)(pilot, sql)
            await pilot.press("ctrl+r")
            await pilot.pause()
            await settle(pilot, pane)
            assert side.outcome is not None and side.outcome.sql == sql
            assert side.outcome.error is not None, sql
            assert side.outcome.error.type == "not_allowed", (sql, side.outcome.error)
            assert "SQL not allowed" in side.status_text and side.table.row_count == 0
        assert "SQL not allowed" in screen_text(app)
        side.editor.load_text("SELEC title FROM book")
        await pilot.press("ctrl+r")
        await pilot.pause()
        await settle(pilot, pane)
        assert "SQL syntax error" in side.status_text and side.table.row_count == 0
        # A runaway query stops at its deadline and says so.
        side.sql_timeout = 0.3
        side.editor.load_text("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)"
                              " SELECT count(*) FROM c")
        await pilot.press("ctrl+r")
        await pilot.pause()
        await settle(pilot, pane)
        assert side.outcome is not None and side.outcome.error is not None
        assert side.outcome.error.type == "timeout" and "SQL timeout" in side.status_text
        # escape cancels a query that is running; the next one runs normally.
        side.sql_timeout = 60.0
        await pilot.press("ctrl+r")
        await pilot.pause(0.2)
        assert side.busy and app.screen.active_bindings["escape"].enabled
        started = time.monotonic()
        await pilot.press("escape")
        await settle(pilot, pane)
        assert time.monotonic() - started < 5 and "cancelled" in side.status_text
        side.editor.load_text("SELECT 1 AS one")
        await pilot.press("ctrl+r")
        await pilot.pause()
        await settle(pilot, pane)
        assert table_rows(side) == [["1"]] and "1 row in" in side.status_text
    assert folder_state(db.parent) == before


async def test_compare_two_models_side_by_side_and_a_new_model_appears(
        pg_server: LocalServer, tuned: Tuned) -> None:
    with History() as history:  # as the jobs pane records a job it created, with its template
        history.record_job("local", tuned.job_id, BASE, tuned.training_file,
                           template=tuned.template.to_dict())
        history.record_job_status("local", tuned.job_id, "succeeded", tuned.model)
    app = playground_app(Attached(pg_server.base_url, pg_server.api_key))
    db_id, gold = dev_gold(SHIPPED)
    db = demo_db(db_id)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_playground(pilot)
        left, right = pane.pair.a, pane.pair.b
        assert left.choice is not None and left.choice.kind == "fine-tuned"
        assert not right.display or not pane.pair.comparing
        await pick_model(pilot, pane, tuned.model)
        await pick_model(pilot, pane, BASE, key="ctrl+t")
        assert pane.pair.comparing and right.choice is not None and right.choice.name == BASE
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoicePicker), "questions")
        await paste(pilot, "shipped")
        await pilot.press("enter")
        await pilot.pause()
        await settle(pilot, pane)
        shown = screen_text(app)
        # the tuned model's title keeps its start and its end (cut in the middle)
        assert tuned.model[:12] in shown and tuned.model[-6:] in shown and BASE in shown
        for side in (left, right):
            assert side.outcome is not None and side.outcome.result is not None
            assert side.answer is not None and side.outcome.gold == gold
            assert side.outcome.match is verdict(db, gold, side.editor.text)
            assert table_rows(side) == shown_rows(readonly_rows(db, side.editor.text))
        # The demo-tuned model gets this one right; the schema-only base model does not.
        assert (left.outcome.match, right.outcome.match) == (True, False)  # type: ignore[union-attr]
        assert "✓ matches gold" in shown and "✗ differs from gold" in shown
        # Each model saw the prompt it was trained with: the compact one is shorter.
        assert "its training prompt" in left.status_text
        assert "default prompt" in right.status_text
        assert left.answer.prompt_tokens < right.answer.prompt_tokens  # type: ignore[union-attr]
        await pilot.press("ctrl+t")  # hide the comparison again
        assert not pane.pair.comparing
        # A job ending elsewhere (the jobs pane posts JobEnded) brings its model into the list.
        few = json.loads((demo_dir() / "train.json").read_text())[:20]
        with openai.OpenAI(base_url=pg_server.base_url, api_key=pg_server.api_key) as client:
            fresh = train_job(client, few, "fresh").model
        assert fresh not in [choice.name for choice in pane.models]
        app.post_message(JobEnded("ftjob-any", "succeeded", fresh))
        await wait_until(pilot, lambda: fresh in [c.name for c in pane.models], "new model")
        assert left.choice is not None and left.choice.name == tuned.model  # the user's pick stays


async def test_a_model_of_unknown_template_is_asked_with_a_visible_warning(
        pg_server: LocalServer, tuned: Tuned) -> None:
    """This test's history is empty and the job (made through the SDK) names no template."""
    app = playground_app(Attached(pg_server.base_url, pg_server.api_key))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_playground(pilot)
        await pick_model(pilot, pane, tuned.model)
        await ask(pilot, pane, "How many authors are there?")
        side = pane.pair.a
        assert side.answer is not None
        assert "⚠ default prompt" in side.status_text
        assert "no sqltune template fingerprint" in side.status_text


async def test_a_model_just_tuned_is_asked_next_when_none_was_picked(
        pg_server: LocalServer, tuned: Tuned) -> None:
    app = playground_app(Attached(pg_server.base_url, pg_server.api_key))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_playground(pilot)
        side = pane.pair.a
        assert side.choice is not None  # chosen by the pane: the first model listed
        few = json.loads((demo_dir() / "train.json").read_text())[20:40]
        with openai.OpenAI(base_url=pg_server.base_url, api_key=pg_server.api_key) as client:
            fresh = train_job(client, few, "newest").model
        app.post_message(JobEnded("ftjob-newest", "succeeded", fresh))
        await wait_until(pilot, lambda: side.choice is not None and side.choice.name == fresh,
                         "the new model on the left side")
        assert fresh in screen_text(app)


async def test_provider_down_is_shown_and_another_endpoint_still_answers(
        pg_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_server() -> Any:
        raise RuntimeError("the local server could not start (test)")

    monkeypatch.setenv("PG_ENDPOINT_KEY", pg_server.api_key)
    app = playground_app(no_server)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_playground(pilot)
        assert pane.models == []
        side = pane.pair.a
        assert "cannot list models" in side.status_text
        assert "could not start (test)" in side.status_text
        await ask(pilot, pane, "How many authors are there?")  # no model yet: the picker opens
        assert isinstance(app.screen, ModelPicker)
        assert "cannot list the provider's models" in screen_text(app)
        await paste(pilot, BASE)
        await pilot.press("enter")
        await pilot.pause()
        await settle(pilot, pane)
        assert "model call failed" in side.status_text
        assert "could not start (test)" in side.status_text
        # The same model on another OpenAI-compatible endpoint, its key from a variable.
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPicker), "picker")
        assert app.screen.query_one("#model-name").value == BASE  # type: ignore[attr-defined]
        await pilot.press("tab")
        await paste(pilot, pg_server.base_url)
        await pilot.press("tab")
        await paste(pilot, "PG_ENDPOINT_KEY")
        await pilot.press("enter")
        await pilot.pause()
        assert side.choice is not None and side.choice.base_url == pg_server.base_url
        await pilot.press("ctrl+n")
        await pilot.pause()
        await settle(pilot, pane)
        assert side.outcome is not None and side.outcome.result is not None
        assert "COUNT(*)" in side.editor.text.upper() and side.table.row_count == 1
        assert pg_server.base_url in screen_text(app)
        assert pg_server.api_key not in screen_text(app)
        assert pg_server.api_key not in app.export_screenshot()
        # Another database: the question is asked about it and the SQL runs there.
        await pilot.press("ctrl+b")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoicePicker), "databases")
        await paste(pilot, "clinic")
        await pilot.press("enter")
        await pilot.pause()
        assert pane.database is not None and pane.database.db_id == "clinic"
        assert side.database == pane.database and "clinic" in screen_text(app)
        await ask(pilot, pane, "How many patients are registered?")
        assert side.outcome is not None and side.outcome.result is not None
        assert table_rows(side) == shown_rows(readonly_rows(demo_db("clinic"), side.editor.text))
        # An endpoint nobody listens on: a clear connection error, no crash.
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPicker), "picker")
        url = app.screen.query_one("#model-url")
        url.value = ""  # type: ignore[attr-defined]
        url.focus()
        await paste(pilot, "http://127.0.0.1:9/v1")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("ctrl+n")
        await pilot.pause()
        await settle(pilot, pane)
        assert "model call failed" in side.status_text and "connection" in side.status_text
