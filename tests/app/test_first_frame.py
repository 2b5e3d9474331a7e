"""First paint: only the first pane is built (and imported) before the first frame; the others
are mounted right after it, and every pane is there before a key is handled."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from textual.app import App

from tests.app.panes_support import no_local_server
from tui.app import PANES, SqltuneApp, make_app
from tui.core.session import Session
from tui.widgets.lazy_pane import LazyPane
from tui.widgets.pane import Pane

LATER = ("tui.widgets.token_meter", "tui.widgets.file_list", "tui.widgets.job_events",
         "tui.widgets.playground", "tui.widgets.evaluation", "textual_plotext", "openai")


def test_starting_the_app_imports_no_later_pane() -> None:
    code = ("import sys, tui.cli; tui.cli._app_arguments([]); import tui.app, tui.launch; "
            "print(' '.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert not [name for name in loaded if name.startswith(LATER)]


def test_every_lazy_pane_names_its_class() -> None:
    for lazy in PANES:
        assert isinstance(lazy, LazyPane)
        pane = lazy.load()
        assert issubclass(pane, Pane) and pane.__name__ == lazy.__name__
        assert (pane.PANE_ID, pane.PANE_TITLE) == (lazy.PANE_ID, lazy.PANE_TITLE)
        assert list(lazy.pane_bindings()) == list(pane.pane_bindings())


def test_a_lazy_pane_that_misnames_its_class_says_so() -> None:
    wrong = LazyPane("tui.widgets.file_list:FileList", "files", "Uploads")
    with pytest.raises(TypeError, match="'files' titled 'Files', not 'files' titled 'Uploads'"):
        wrong.load()


async def test_the_first_frame_holds_the_first_pane_and_the_rest_follow(
        monkeypatch: pytest.MonkeyPatch) -> None:
    at_first_frame: list[list[str]] = []
    display = App._display

    def first_display(app: App[Any], screen: Any, renderable: Any) -> None:
        if renderable is not None and not at_first_frame:
            at_first_frame.append([pane.PANE_ID for pane in app.query(Pane)])
        display(app, screen, renderable)

    monkeypatch.setattr(App, "_display", first_display)
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")  # handled once the other panes are mounted
        await pilot.pause()
        assert app.focused is not None and app.pane("jobs") in app.focused.ancestors_with_self
        assert [pane.PANE_ID for pane in app.panes()] == [pane.PANE_ID for pane in PANES]
    assert at_first_frame == [["dataset"]]


async def test_a_pane_asked_for_before_the_others_are_mounted_is_mounted_then() -> None:
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=(80, 24)) as pilot:
        app.action_show_pane(5)  # called directly, as tests and the palette do
        pane = app.pane("evaluation")
        await pilot.pause()
        assert pane.is_mounted and app.query_one("#panes").active == "tab-evaluation"
        assert len(app.panes()) == len(PANES)


async def test_quitting_while_a_later_pane_is_imported_is_quiet() -> None:
    slow = LazyPane("tests.app.slow_pane:SlowPane", "slow", "Slow")  # imports in 0.5 s
    app = SqltuneApp(Session(data=None, provider=None, start_local=no_local_server),
                     panes=[PANES[0], slow])
    async with app.run_test(size=(80, 24)):
        app.exit()  # the first frame is out, the slow module is being imported
    assert app.return_code in (None, 0)
