"""A known API key never shows: in screenshots, logs, messages, errors or files the app wrote."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import openai
import pytest
import textual.constants
from textual.message import Message
from textual.widgets import OptionList

from tests.app.conftest import ServerFactory
from tests.app.helpers import screen_text, wait_for_text, wait_until
from tests.server.conftest import PAIRS, chat_lines
from tui.app import SqltuneApp, make_app
from tui.core.paths import data_dir
from tui.core.provider.config import config_path, mask_key

KEY = "sk-sqltune-KNOWNsecret0123456789abcdefXYZW"
"""The local server's key (SQLTUNE_SERVER_KEY), reached through config profiles."""
WRONG = "sk-stale-WRONGsecret9876543210fedcbaQRST"
"""A stale key the server refuses."""

PROFILES = """default = "lab"

[profiles.lab]
kind = "compatible"
base_url = "{url}"
api_key_env = "SQLTUNE_LAB_KEY"

[profiles.stale]
kind = "compatible"
base_url = "{url}"
api_key_env = "SQLTUNE_STALE_KEY"

[profiles.pinned]
kind = "local"
base_url = "{url}"
"""


class Evidence:
    """Everything the app showed or said: screenshots, screens, messages, notifications, logs."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        """(where, text) pairs to search."""

    def add(self, where: str, text: str) -> None:
        """Keep one piece of evidence."""
        self.texts.append((where, text))

    def snap(self, app: SqltuneApp, where: str) -> None:
        """The SVG screenshot and the plain screen text, now."""
        self.add(f"screenshot {where}", app.export_screenshot())
        self.add(f"screen {where}", screen_text(app))

    def leaks(self, *secrets: str) -> list[str]:
        """Where any secret (or a long slice of one) appears."""
        found = []
        for where, text in self.texts:
            for secret in secrets:
                if secret in text or secret[6:-4] in text:
                    found.append(where)
        return found


async def switch_to(pilot: Any, app: SqltuneApp, name: str) -> None:
    """Pick a profile in the provider switcher with the arrow keys."""
    await pilot.press("f2")
    await wait_for_text(pilot, "Switch provider")
    options = app.screen.query_one(OptionList)
    await wait_until(pilot, lambda: options.option_count >= 4, what="the profiles")
    await pilot.press("home")
    for _ in range(options.option_count):
        index = options.highlighted
        if index is not None and options.get_option_at_index(index).id == name:
            break
        await pilot.press("down")
    await pilot.press("enter")
    await wait_for_text(pilot, f"provider {name}")


async def test_the_key_never_shows(
        start_server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SQLTUNE_SERVER_KEY", KEY)
    server = start_server()
    assert server.api_key == KEY
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PROFILES.format(url=server.base_url), encoding="utf-8")
    monkeypatch.setenv("SQLTUNE_LAB_KEY", KEY)
    monkeypatch.setenv("SQLTUNE_STALE_KEY", WRONG)
    with openai.OpenAI(base_url=server.base_url, api_key=KEY) as sdk:
        train = sdk.files.create(file=("train.jsonl", chat_lines(PAIRS)), purpose="fine-tune")
        job = sdk.fine_tuning.jobs.create(model="sqltune-local-base", training_file=train.id)
    caplog.set_level(logging.DEBUG)
    textual_log = tmp_path / "textual.log"
    monkeypatch.setattr(textual.constants, "LOG_FILE", str(textual_log))  # as TEXTUAL_LOG=…
    evidence = Evidence()
    seen: list[Message] = []
    app = make_app()
    async with app.run_test(size=(80, 24), notifications=True,
                            message_hook=seen.append) as pilot:
        screen = await wait_for_text(pilot, "provider lab")
        assert f"key {mask_key(KEY)}" in screen  # the masked form is what shows
        # the safety net: a log line that carries the key (a careless library) is masked
        logging.getLogger("some.library").debug("request with Bearer %s", KEY)
        assert f"request with Bearer {mask_key(KEY)}" in caplog.messages
        for index, pane in enumerate(app.pane_classes()):
            app.action_show_pane(index)  # not a digit key: some panes focus an input
            await pilot.pause(0.5)
            evidence.snap(app, f"{pane.PANE_TITLE} (lab)")
        app.action_show_pane(0)
        await pilot.press("4")
        await wait_for_text(pilot, job.id)
        await pilot.press("enter")
        await wait_for_text(pilot, "● succeeded", timeout=30)
        evidence.snap(app, "job detail")
        # the switcher lists every profile with its key masked
        await pilot.press("f2")
        await wait_for_text(pilot, "stale")
        evidence.snap(app, "switcher")
        await pilot.press("escape")
        # a refused key: 401s on screen, in toasts and state lines, and neither key in them
        await switch_to(pilot, app, "stale")
        await pilot.press("3")
        await wait_for_text(pilot, "(HTTP 401)")
        evidence.snap(app, "files 401")
        await pilot.press("4")
        await wait_for_text(pilot, "listing jobs failed")
        evidence.snap(app, "jobs 401")
        await pilot.press("a", *job.id, "enter")
        await wait_until(pilot, lambda: "401" in screen_text(app), what="the detail's 401")
        evidence.snap(app, "detail 401")
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert any("refused the API key (HTTP 401)" in e for e in errors), errors
        # a local profile with a fixed URL takes SQLTUNE_SERVER_KEY
        await pilot.press("escape")
        await switch_to(pilot, app, "pinned")
        await pilot.press("4")
        await wait_for_text(pilot, job.id)
        evidence.snap(app, "pinned")
        for note in app._notifications:
            evidence.add("notification", f"{note.title} {note.message}")
    for message in seen:
        evidence.add(f"message {type(message).__name__}", repr(message))
    for record in caplog.records:
        evidence.add(f"log {record.name}", record.getMessage() + (record.exc_text or ""))
    out, err = capfd.readouterr()
    evidence.add("stdout", out)
    evidence.add("stderr", err)
    for file in data_dir().rglob("*"):
        if file.is_file():
            evidence.add(f"file {file}", file.read_bytes().decode("utf-8", "replace"))
    evidence.add("textual log", textual_log.read_text(encoding="utf-8"))
    assert len(caplog.records) > 20  # the SDK's and the app's debug logs were captured
    assert textual_log.stat().st_size > 1000  # and Textual's own log
    assert evidence.leaks(KEY, WRONG) == []
