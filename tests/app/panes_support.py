"""Support for the dataset and budget pane tests: providers, waiting, the screen, and the
expected figures computed directly with tui.core (never through the widgets)."""

from __future__ import annotations

import functools
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Select, Static
from textual.widgets._select import SelectOverlay

from tests.app.helpers import wait_until
from tui.core.budget.tokens import count_message_tokens, encoding_for_model, get_encoding
from tui.core.data.datasets import load_dataset
from tui.core.data.prompts import DEFAULT_TEMPLATE, PromptTemplate, render_messages
from tui.core.data.schema import SchemaCache
from tui.core.paths import demo_dir

NO_SERVER = "no local server in this test"
"""The error of the fail-fast starter (shown on the status line)."""


def no_local_server() -> Any:
    """A ``start_local`` that fails at once: the panes under test need no provider."""
    raise RuntimeError(NO_SERVER)


async def clear_input(pilot: Pilot[Any]) -> None:
    """Empty the focused Input with the keyboard."""
    await pilot.press("end", "ctrl+u")


@dataclass(frozen=True)
class Expected:
    """One demo example as tui.core renders and counts it."""

    db_id: str
    question: str
    sql: str
    messages: list[dict[str, str]]
    tokens: int


@functools.lru_cache(maxsize=8)
def expected_examples(model: str = "gpt-4.1-mini-2025-04-14",
                      template: PromptTemplate = DEFAULT_TEMPLATE,
                      root: Path | None = None) -> tuple[Expected, ...]:
    """Every train example of the demo data: messages by THE rendering function, tokens by the
    uncached reference counter (cookbook rule) with the model's encoding."""
    dataset = load_dataset(root or demo_dir(), "train")
    cache = SchemaCache()
    encoding = get_encoding(encoding_for_model(model).name)
    found = []
    for example in dataset.examples:
        path = dataset.db_path(example.db_id)
        assert path is not None
        schema = cache.schema_text(path, template.sample_values, sample_rows=template.sample_rows)
        messages = render_messages(template, schema, example.question, example.query)
        found.append(Expected(example.db_id, example.question, example.query, messages,
                              count_message_tokens(messages, encoding)))
    return tuple(found)


def chat_line(question: str, sql: str) -> str:
    """One valid chat JSONL line."""
    return json.dumps({"messages": [
        {"role": "system", "content": "You write SQL.\n\nCREATE TABLE t (id INTEGER PRIMARY KEY);"},
        {"role": "user", "content": question},
        {"role": "assistant", "content": sql},
    ]})


def write_chat_file(path: Path, lines: int, broken: dict[int, str]) -> Path:
    """A chat JSONL of ``lines`` lines; ``broken`` maps 1-based line numbers to raw text."""
    rows = [broken.get(n, chat_line(f"How many rows have id above {n}?",
                                    f"SELECT count(*) FROM t WHERE id > {n}"))
            for n in range(1, lines + 1)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


async def choose(pilot: Pilot[Any], select: Select[Any], open_key: str, value: str) -> None:
    """Open ``select`` with its pane key, move the highlight to ``value`` with arrow keys, and
    press enter (keyboard only, whatever option was highlighted first)."""
    await pilot.press(open_key)
    await wait_until(pilot, lambda: select.expanded, what="the list to open")
    overlay = select.query_one(SelectOverlay)
    await pilot.pause()
    for _ in range(overlay.option_count + 1):
        highlighted = overlay.highlighted
        if highlighted is not None and _option_value(select, highlighted) == value:
            break
        await pilot.press("down")
    else:
        raise AssertionError(f"{value!r} is not an option")
    await pilot.press("enter")
    await wait_until(pilot, lambda: select.value == value, what=f"{value} chosen")


def _option_value(select: Select[Any], index: int) -> object:
    return select._options[index][1]


async def workers_idle(pilot: Pilot[Any]) -> None:
    """Wait until no worker of the app is pending or running (cancelled ones included)."""
    await wait_until(pilot, lambda: all(w.is_finished for w in pilot.app.workers),
                     what="workers to finish")


def static_text(widget: Static, width: int = 200) -> str:
    """The plain text of a Static's content (a Rich renderable), unclipped by scrolling."""
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()
