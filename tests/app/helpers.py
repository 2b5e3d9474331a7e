"""Helpers for Pilot tests: the screen as plain text, and waiting for a condition."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot


def screen_text(app: App[Any]) -> str:
    """What the terminal shows now, as plain text (the same render as export_screenshot)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False,
                      safe_box=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return console.export_text()


async def wait_until(pilot: Pilot[Any], condition: Callable[[], object], *,
                     timeout: float = 25.0, what: str = "condition") -> None:
    """Let the app run until ``condition()`` is truthy; fail with the screen after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; screen:\n"
                                 f"{screen_text(pilot.app)}")
        await pilot.pause(0.05)
        await asyncio.sleep(0)


async def wait_for_text(pilot: Pilot[Any], text: str, *, timeout: float = 20.0) -> str:
    """Wait until ``text`` is on screen; return the screen."""
    await wait_until(pilot, lambda: text in screen_text(pilot.app), timeout=timeout,
                     what=repr(text))
    return screen_text(pilot.app)


def keep_once(seen: list[Any]) -> Callable[[Any], None]:
    """A message_hook that keeps each message once, when first posted (bubbling re-posts it)."""
    ids: set[int] = set()

    def hook(message: Any) -> None:
        if id(message) not in ids:
            ids.add(id(message))
            seen.append(message)

    return hook
