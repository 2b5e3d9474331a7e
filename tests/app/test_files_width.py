"""The Files pane tells two uploads of one file apart and uses the width it has (60 to 160)."""

from __future__ import annotations

import openai

from tests.app.conftest import Attached
from tests.app.helpers import screen_text, wait_for_text, wait_until
from tests.server.conftest import PAIRS, chat_lines
from tui.app import SqltuneApp
from tui.core.session import Session
from tui.widgets.file_list import FileList

NAME = "spider-train-gpt-4.1-mini-1500-examples-epoch3.jsonl"


async def test_two_uploads_of_one_file_read_differently_at_80_and_160(
        attach: Attached, sdk: openai.OpenAI) -> None:
    content = chat_lines(PAIRS)
    ids = [sdk.files.create(file=(NAME, content), purpose="fine-tune").id for _ in range(2)]
    for size in ((60, 20), (80, 24), (160, 48)):
        await check_rows(attach, ids, size)


async def check_rows(attach: Attached, ids: list[str], size: tuple[int, int]) -> None:
    """Both uploads at ``size``: rows that differ, each with its id's end, names as wide as fit."""
    app = SqltuneApp(Session(data=None, provider=None, start_local=attach), panes=[FileList])
    async with app.run_test(size=size) as pilot:
        await wait_for_text(pilot, "2 files")
        pane = app.query_one(FileList)
        await wait_until(pilot, lambda: pane.size.width == size[0], what="the layout")
        await pilot.pause()
        rows = [line for line in screen_text(app).splitlines()
                if any(file_id[-4:] in line for file_id in ids)]
        assert len(rows) == 2 and rows[0] != rows[1], rows
        for line in rows:
            assert line.rstrip().endswith(("processed", "uploaded")), line
        for file_id, line in zip(sorted(ids, key=rows_order(rows)), rows, strict=True):
            assert file_id[-4:] in line, (file_id, line)
        if size[0] <= 80:
            # the name keeps its start and its extension, cut in the middle
            assert all("spider" in line and ".jsonl" in line for line in rows), rows
        else:
            assert all(NAME in line for line in rows), rows
            assert all(any(file_id in line for line in rows) for file_id in ids), rows


def rows_order(rows: list[str]):  # type: ignore[no-untyped-def]
    """Sort key: where a file id's tail appears among the rows."""
    def key(file_id: str) -> int:
        return next(i for i, line in enumerate(rows) if file_id[-4:] in line)
    return key
