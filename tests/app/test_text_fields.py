"""Text fields app-wide: they type every key (1-9 too), escape leaves them and the footer says so,
enter in a one-line field commits and hands focus back; dialogs keep their own escape."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import ComposeResult
from textual.widgets import DataTable, Input, TabbedContent, TextArea

from tests.app.helpers import screen_text, wait_until
from tests.app.panes_support import no_local_server
from tui.app import SqltuneApp
from tui.core.session import Session
from tui.screens.prompt import PromptScreen
from tui.widgets.dataset_preview import DatasetPreview
from tui.widgets.pane import Pane
from tui.widgets.playground import PlaygroundPane


class FormPane(Pane):
    """A pane with a one-line field, a text area and its main widget, a table."""

    PANE_ID = "form"
    PANE_TITLE = "Form"

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self.committed: list[str] = []
        """Values enter committed."""

    def compose(self) -> ComposeResult:
        yield Input(id="form-name", compact=True)
        yield TextArea(id="form-notes")
        yield DataTable(id="form-table")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.committed.append(event.value)


def app_with(*panes: type[Pane]) -> SqltuneApp:
    return SqltuneApp(Session(data=None, provider=None, start_local=no_local_server),
                      panes=list(panes))


def footer(app: SqltuneApp) -> str:
    return screen_text(app).splitlines()[-1]


async def test_escape_and_enter_leave_text_fields_and_the_footer_says_how() -> None:
    app = app_with(DatasetPreview, FormPane)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        pane = app.query_one(FormPane)
        name, notes = pane.query_one("#form-name", Input), pane.query_one(TextArea)
        table = pane.query_one(DataTable)
        name.focus()
        await pilot.pause()
        assert footer(app).lstrip().startswith("esc Leave field")
        await pilot.press("1", "2", "x")
        assert name.value == "12x" and app.query_one(TabbedContent).active == "tab-form"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.focused is table, what="focus back on the table")
        assert pane.committed == ["12x"] and "Leave field" not in footer(app)
        notes.focus()
        await pilot.press("3", "enter", "4")
        assert notes.text == "3\n4" and app.focused is notes
        assert footer(app).lstrip().startswith("esc Leave field")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.focused is table, what="escape out of the text area")
        await pilot.press("1")
        assert app.query_one(TabbedContent).active == "tab-dataset"


async def test_a_dialog_field_keeps_escape_for_closing_the_dialog() -> None:
    app = app_with(FormPane)
    async with app.run_test(size=(80, 24)) as pilot:
        answers: list[str | None] = []
        app.push_screen(PromptScreen("Name"), answers.append)
        await pilot.pause()
        assert isinstance(app.focused, Input)
        await pilot.press("escape")
        await wait_until(pilot, lambda: answers == [None], what="the dialog closed")


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_playground_question_types_digits_and_escape_leaves_it(
        size: tuple[int, int]) -> None:
    app = app_with(DatasetPreview, PlaygroundPane)
    async with app.run_test(size=size) as pilot:
        await pilot.press("2")
        pane = app.query_one(PlaygroundPane)
        question = pane.query_one("#pg-question", Input)
        assert app.focused is question
        await pilot.press("enter")  # nothing to ask: a warning, and the field keeps the focus
        await pilot.pause()
        assert app.focused is question
        await pilot.press("1", "2", "slash", "3")
        assert question.value == "12/3"
        assert app.query_one(TabbedContent).active == "tab-playground"
        assert footer(app).lstrip().startswith("esc Leave field"), footer(app)
        assert "/ Question" not in footer(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.focused is pane.pair.a.table,
                         what="the rows table focused")
        assert question.value == "12/3" and "Leave field" not in footer(app)
        assert footer(app).lstrip().startswith("/ Question"), footer(app)
        await pilot.press("slash")
        assert app.focused is question
        await pilot.press("escape", "1")
        assert app.query_one(TabbedContent).active == "tab-dataset"
