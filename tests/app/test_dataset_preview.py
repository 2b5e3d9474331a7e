"""Pilot tests of the dataset preview pane at 80x24, keyboard only."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from textual.coordinate import Coordinate
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import DataTable, Label, Select, Static

from tests.app.helpers import screen_text
from tests.app.panes_support import (
    NO_SERVER,
    chat_line,
    choose,
    expected_examples,
    no_local_server,
    static_text,
    wait_until,
    workers_idle,
    write_chat_file,
)
from tui.app import SqltuneApp, make_app
from tui.core.data.jsonl import validate_jsonl
from tui.core.paths import demo_dir
from tui.server.inprocess import LocalServer, start_local_server
from tui.widgets.dataset_preview import PAGE_SIZE, DatasetPreview
from tui.widgets.failures import WorkFailed
from tui.widgets.status_line import ProviderStatus

MALFORMED = Path(__file__).resolve().parent.parent / "core" / "malformed"
SIZE = (80, 24)


def preview(app: SqltuneApp) -> DatasetPreview:
    pane = app.pane("dataset")
    assert isinstance(pane, DatasetPreview)
    return pane


def table(app: SqltuneApp) -> DataTable[Any]:
    return preview(app).query_one("#dataset-table", DataTable)


def shown_indices(app: SqltuneApp) -> list[int]:
    """Example positions of the table's rows, top to bottom."""
    grid = table(app)
    return [int(str(grid.coordinate_to_cell_key(Coordinate(r, 0)).row_key.value))
            for r in range(grid.row_count)]


def position_label(app: SqltuneApp) -> str:
    return str(preview(app).query_one("#dataset-position", Label).render())


def cursor_index(app: SqltuneApp) -> int:
    grid = table(app)
    return int(str(grid.coordinate_to_cell_key(Coordinate(grid.cursor_row, 0)).row_key.value))


def settled(app: SqltuneApp) -> bool:
    """Opened, problem scan done, every row of the page counted (or found uncountable)."""
    pane = preview(app)
    grid = table(app)
    return (pane.source is not None and pane.problems is not None and grid.row_count > 0
            and all(str(grid.get_row_at(r)[3]) != "…" for r in range(grid.row_count)))


async def wait_settled(pilot: Pilot[Any], app: SqltuneApp) -> None:
    await wait_until(pilot, lambda: settled(app), what="the preview to settle")
    await workers_idle(pilot)
    await pilot.pause()


async def test_opens_on_the_demo_data_by_default_without_any_provider() -> None:
    seen: list[Message] = []
    expected = expected_examples()
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_settled(pilot, app)
        pane = preview(app)
        assert pane.source is not None and pane.source.root == demo_dir()
        assert app.sub_title == "demo data"
        assert shown_indices(app) == list(range(PAGE_SIZE))
        grid = table(app)
        for row in range(PAGE_SIZE):
            number, db_id, question, tokens, _ = grid.get_row_at(row)
            want = expected[row]
            assert (number, db_id, tokens) == (str(row + 1), want.db_id, str(want.tokens))
            assert want.question.startswith(str(question).rstrip("…"))
        assert position_label(app) == f"demo · train 1/{len(expected)} p1/2 · 0 problems"
        # The demo data has no problem: n says so instead of moving.
        await pilot.press("n")
        assert cursor_index(app) == 0
        # The provider failed fast (none is needed here): the status line says why.
        assert any(isinstance(m, WorkFailed) and m.node is app and m.operation == "connect_provider"
                   and m.error for m in seen)
        await wait_until(pilot, lambda: NO_SERVER in screen_text(app), what="the status line")
        assert preview(app).source is not None


async def test_pages_forward_and_back_with_the_keyboard() -> None:
    expected = expected_examples()
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_settled(pilot, app)
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: preview(app).page == 1, what="page 2")
        await wait_settled(pilot, app)
        assert shown_indices(app) == list(range(PAGE_SIZE, len(expected)))
        assert position_label(app).startswith(f"demo · train {PAGE_SIZE + 1}/{len(expected)} p2/2")
        tokens = [str(table(app).get_row_at(r)[3]) for r in range(table(app).row_count)]
        assert tokens == [str(e.tokens) for e in expected[PAGE_SIZE:]]
        # There is no third page: ] stays put.
        await pilot.press("right_square_bracket")
        await pilot.pause(0.2)
        assert preview(app).page == 1
        await pilot.press("down", "down")
        assert position_label(app).startswith(f"demo · train {PAGE_SIZE + 3}/")
        await pilot.press("left_square_bracket")
        await wait_until(pilot, lambda: preview(app).page == 0, what="page 1")
        assert shown_indices(app) == list(range(PAGE_SIZE))
        await pilot.press("left_square_bracket")
        await pilot.pause(0.2)
        assert preview(app).page == 0


async def test_filters_by_database_then_by_text_and_clears() -> None:
    expected = expected_examples()
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_settled(pilot, app)
        select = preview(app).query_one("#dataset-db", Select)
        names = sorted({e.db_id for e in expected})
        assert [str(option[0]) for option in select._options[1:]] == names
        # d opens the list (the blank "all databases" entry comes first).
        await choose(pilot, select, "d", "clinic")
        clinic = [i for i, e in enumerate(expected) if e.db_id == "clinic"]
        await wait_until(pilot, lambda: shown_indices(app) == clinic, what="clinic rows")
        assert position_label(app).startswith(f"demo · train 1/{len(clinic)} p1/1")
        # / then text narrows within the database (question or SQL, any case).
        await pilot.press("slash")
        await pilot.press(*"DOCTOR", "enter")
        both = [i for i in clinic if "doctor" in expected[i].question.casefold()
                or "doctor" in expected[i].sql.casefold()]
        assert 0 < len(both) < len(clinic)
        await wait_until(pilot, lambda: shown_indices(app) == both, what="clinic ∩ doctor")
        assert app.focused is table(app)
        # escape clears both filters and returns to every example.
        await pilot.press("escape")
        await wait_until(pilot, lambda: shown_indices(app) == list(range(PAGE_SIZE)),
                         what="all rows back")
        assert select.is_blank() and preview(app).view is None


async def test_text_filter_alone_matches_the_sql_too() -> None:
    expected = expected_examples()
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_settled(pilot, app)
        await pilot.press("slash", *"having", "enter")
        wanted = [i for i, e in enumerate(expected)
                  if "having" in e.question.casefold() or "having" in e.sql.casefold()]
        assert wanted and all("having" in expected[i].sql.casefold() for i in wanted)
        await wait_until(pilot, lambda: shown_indices(app) == wanted, what="HAVING rows")
        await pilot.press("slash", "end", "ctrl+u", *"no such words anywhere", "enter")
        await wait_until(pilot, lambda: table(app).row_count == 0, what="no rows")
        assert " 0/0 p1/1" in position_label(app)


async def test_detail_shows_the_core_rendering_and_token_count() -> None:
    seen: list[Message] = []
    expected = expected_examples()
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_settled(pilot, app)
        await pilot.press(*["down"] * 41)
        target = 41
        assert expected[target].db_id != expected[0].db_id  # a second database's schema

        def rendered() -> DatasetPreview.DetailRendered | None:
            return next((m for m in reversed(seen)
                         if isinstance(m, DatasetPreview.DetailRendered)
                         and m.row.index == target), None)

        await wait_until(pilot, lambda: rendered() is not None, what="the detail")
        await pilot.pause()
        message = rendered()
        assert message is not None
        want = expected[target]
        assert message.messages == want.messages
        assert message.tokens == want.tokens
        assert [m["role"] for m in message.messages] == ["system", "user", "assistant"]
        assert "CREATE TABLE" in message.messages[0]["content"]
        detail = detail_text(app)
        assert f"#{target + 1} {want.db_id} · train.json #{target}" in detail
        assert f"{want.tokens:,} tokens" in detail
        assert want.messages[0]["content"].splitlines()[-1] in detail
        assert want.messages[2]["content"] in detail
        assert str(table(app).get_row_at(table(app).cursor_row)[3]) == str(want.tokens)


async def test_jumps_between_validation_problems_of_a_chat_jsonl() -> None:
    path = MALFORMED / "several_errors.jsonl"
    report = validate_jsonl(path)
    lines = sorted({issue.line for issue in [*report.errors, *report.warnings]})
    assert lines == [3, 14]
    app = make_app(data=path, start_local=no_local_server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: preview(app).problems is not None, what="the scan")
        await wait_settled(pilot, app)
        assert set(preview(app).problems or {}) == {line - 1 for line in lines}
        assert position_label(app) == "several_errors.jsonl 1/14 p1/1 · 2 problems"
        flags = [str(table(app).get_row_at(r)[4]) for r in range(14)]
        assert [r + 1 for r, flag in enumerate(flags) if flag == "!"] == lines
        # Line 14 is not JSON: nothing to count, and the cell says so once counting is done.
        assert str(table(app).get_row_at(13)[3]) == "—"
        assert str(table(app).get_row_at(2)[3]).isdigit()
        await pilot.press("n")
        await wait_until(pilot, lambda: cursor_index(app) == 2, what="line 3")
        role_issue = next(i for i in report.errors if i.line == 3)
        await wait_until(pilot, lambda: role_issue.message in detail_text(app),
                         what="the problem in the detail")
        assert f"! {role_issue.field}: {role_issue.message}" in detail_text(app)
        await pilot.press("n")
        await wait_until(pilot, lambda: cursor_index(app) == 13, what="line 14")
        await pilot.press("n")  # none further: the cursor stays
        await pilot.pause(0.2)
        assert cursor_index(app) == 13
        await pilot.press("N")
        await wait_until(pilot, lambda: cursor_index(app) == 2, what="back to line 3")


def detail_text(app: SqltuneApp) -> str:
    return static_text(preview(app).query_one("#dataset-detail-text", Static))


async def test_problem_jumps_cross_pages_of_a_long_file(tmp_path: Path) -> None:
    broken = {40: '{"messages": [{"role": "user", "content": "no answer"}]}',
              190: "{truncated",
              230: chat_line("fine", "SELECT 1").replace('"user"', '"robot"')}
    path = write_chat_file(tmp_path / "long.jsonl", 250, broken)
    report = validate_jsonl(path)
    assert sorted({i.line for i in report.errors}) == sorted(broken)
    app = make_app(data=path, start_local=no_local_server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_settled(pilot, app)
        assert position_label(app).endswith("p1/3 · 3 problems")
        await pilot.press("n")
        await wait_until(pilot, lambda: cursor_index(app) == 39, what="line 40")
        await pilot.press("n")
        await wait_until(pilot, lambda: preview(app).page == 1 and cursor_index(app) == 189,
                         what="line 190 on page 2")
        assert "{truncated" in detail_text(app) or "line 190" in detail_text(app)
        await pilot.press("n")
        await wait_until(pilot, lambda: preview(app).page == 2 and cursor_index(app) == 229,
                         what="line 230 on page 3")
        await pilot.press("N", "N")
        await wait_until(pilot, lambda: preview(app).page == 0 and cursor_index(app) == 39,
                         what="back to line 40")
        # Paging still works on a lazily indexed file.
        await pilot.press("right_square_bracket", "right_square_bracket")
        await wait_until(pilot, lambda: shown_indices(app) == list(range(200, 250)),
                         what="page 3")


async def test_palette_runs_pane_actions_and_help_lists_them() -> None:
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_settled(pilot, app)
        await pilot.press("f1")
        await wait_until(pilot, lambda: "Keys" in screen_text(app), what="help")
        help_text = "\n".join(static_text(s) for s in app.screen.query(Static))
        for binding in DatasetPreview.pane_bindings():
            assert binding.description in help_text, binding.description
            assert (binding.tooltip or "") in help_text
        await pilot.press("escape")
        await wait_until(pilot, lambda: "Keys" not in screen_text(app), what="help closed")
        await pilot.press("ctrl+p")
        await pilot.press(*"Dataset: Next page")
        await wait_until(pilot, lambda: "Dataset: Next page" in screen_text(app),
                         what="palette hit")
        await pilot.press("enter")
        await wait_until(pilot, lambda: preview(app).page == 1, what="page 2 from the palette")


async def test_real_local_server_is_shown_masked_and_stopped_on_exit(tmp_path: Path) -> None:
    started: list[LocalServer] = []

    def start_local() -> LocalServer:
        started.append(start_local_server(tmp_path / "server", speed="max"))
        return started[-1]

    app = make_app(start_local=start_local)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.session.connection is not None, what="connected")
        server = started[0]
        status = app.query_one(ProviderStatus)
        await wait_until(pilot, lambda: server.base_url in str(status.render()), what="status")
        line = str(status.render())
        assert line.startswith("provider local · local · ") and "● running" in line
        assert server.api_key not in line and server.api_key not in screen_text(app)
        await wait_settled(pilot, app)
        assert shown_indices(app) == list(range(PAGE_SIZE))
    # The app stopped the server it started: nothing listens on its port any more.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
