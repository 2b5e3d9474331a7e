"""The Files pane in Pilot at 80x24, keyboard only, against the local server over loopback."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
from textual.message import Message
from textual.widgets import DataTable

from tests.app.conftest import Attached, ServerFactory
from tests.app.helpers import keep_once, screen_text, wait_for_text, wait_until
from tests.server.conftest import PAIRS, chat_lines
from tui.app import SqltuneApp, make_app
from tui.messages import FileUploaded
from tui.widgets.file_list import FileList

BAD_LINES = [
    json.dumps({"messages": [{"role": "user", "content": "How many singers?"},
                             {"role": "assistant", "content": "SELECT count(*) FROM singer"}]}),
    "{this is not json",
    json.dumps({"messages": [{"role": "user", "content": "Only a question"}]}),
    json.dumps({"messages": [{"role": "wizard", "content": "hi"},
                             {"role": "assistant", "content": "SELECT 1"}]}),
]


def table_ids(app: SqltuneApp) -> list[str]:
    """File ids in the table, top to bottom."""
    table = app.query_one("#files-table", DataTable)
    return [str(row.key.value) for row in table.ordered_rows]


async def open_files(app: SqltuneApp, pilot: object) -> None:
    """Show the Files pane once the provider answered."""
    await wait_for_text(pilot, "provider local")  # type: ignore[arg-type]
    await pilot.press("3")  # type: ignore[attr-defined]
    await wait_for_text(pilot, "file")  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Work in the test's folder: paths are typed relative to it (each key press costs time)."""
    monkeypatch.chdir(tmp_path)


async def type_path(pilot: object, path: Path) -> None:
    """Replace the prompt's text with ``path`` (relative to the cwd) and submit it, key by key."""
    relative = path.relative_to(Path.cwd())
    await pilot.press("ctrl+a", "ctrl+k", *str(relative), "enter")  # type: ignore[attr-defined]


async def test_invalid_file_is_refused_before_upload_with_its_errors(
        attach: Attached, sdk: openai.OpenAI, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(BAD_LINES) + "\n", encoding="utf-8")
    seen: list[Message] = []
    app = make_app(start_local=attach)
    async with app.run_test(size=(80, 24), message_hook=keep_once(seen)) as pilot:
        await open_files(app, pilot)
        await pilot.press("u")
        await wait_for_text(pilot, "Upload a fine-tuning JSONL")
        await type_path(pilot, bad)
        await wait_until(pilot, lambda: any(isinstance(m, FileList.UploadRefused) for m in seen),
                         what="the refusal")
        refused = next(m for m in seen if isinstance(m, FileList.UploadRefused))
        assert refused.path.resolve() == bad
        lines = {int(e.split(":")[0].removeprefix("line ")) for e in refused.errors}
        assert {2, 3, 4} <= lines and 1 not in lines  # the good first line is not blamed
        screen = await wait_for_text(pilot, "bad.jsonl is not a valid fine-tuning file")
        assert "not uploaded" in screen
        for error in refused.errors[:3]:
            assert error[:60] in screen, error
        ended = [m.outcome for m in seen if isinstance(m, FileList.UploadEnded)]
        assert ended == ["failed"]
        assert not any(isinstance(m, FileUploaded | FileList.UploadProgressed) for m in seen)
    assert sdk.files.list().data == []  # nothing reached the provider


async def test_missing_path_is_a_clear_error(attach: Attached, sdk: openai.OpenAI,
                                             tmp_path: Path) -> None:
    app = make_app(start_local=attach)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_files(app, pilot)
        await pilot.press("u")
        await wait_for_text(pilot, "Upload a fine-tuning JSONL")
        await type_path(pilot, tmp_path / "nowhere.jsonl")
        screen = await wait_for_text(pilot, "Upload failed: ")
        assert "nowhere.jsonl does not exist" in screen.replace("\n", "")
        await wait_until(pilot, lambda: app.query_one(FileList)._cancel is None,
                         what="the upload to end")
        assert app.query_one(FileList).check_action("upload", ()) is True
    assert sdk.files.list().data == []


async def test_head_delete_with_confirmation_and_purpose_filter(
        attach: Attached, sdk: openai.OpenAI) -> None:
    train = sdk.files.create(file=("train.jsonl", chat_lines(PAIRS)), purpose="fine-tune")
    batch = sdk.files.create(file=("requests.jsonl", b'{"custom_id": "a"}\n'), purpose="batch")
    app = make_app(start_local=attach)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_files(app, pilot)
        await wait_until(pilot, lambda: set(table_ids(app)) == {train.id, batch.id},
                         what="both files")
        assert "2 files" in screen_text(app)
        # content head of the highlighted file
        await pilot.press("home")
        first = table_ids(app)[0]
        await pilot.press("enter")  # enter and v both show the head
        screen = await wait_for_text(pilot, f"{first} — first")
        head = sdk.files.content(first).text.splitlines()
        assert head[0][:70] in screen
        # filter by purpose with the keyboard: f opens the list, typing picks, enter applies
        await pilot.press("f")
        await pilot.press(*"batch", "enter")
        await wait_until(pilot, lambda: table_ids(app) == [batch.id], what="the batch filter")
        assert "1 file" in screen_text(app) and "train.jsonl" not in screen_text(app)
        await pilot.press("f")
        await pilot.press(*"fine-tune", "enter")
        await wait_until(pilot, lambda: table_ids(app) == [train.id], what="fine-tune filter")
        # delete asks first; "n" keeps the file
        app.query_one("#files-table").focus()
        await pilot.press("delete")
        await wait_for_text(pilot, f"Delete train.jsonl ({train.id})?")
        await pilot.press("n")
        await pilot.pause(0.3)
        assert train.id in [f.id for f in sdk.files.list().data]
        assert table_ids(app) == [train.id]
        # "y" deletes it on the provider and the list follows
        await pilot.press("delete")
        await wait_for_text(pilot, f"Delete train.jsonl ({train.id})?")
        await pilot.press("y")
        await wait_until(pilot, lambda: table_ids(app) == [], what="the deletion")
        await wait_for_text(pilot, "0 files")
    assert [f.id for f in sdk.files.list().data] == [batch.id]


async def test_cancel_upload_leaves_no_file(start_server: ServerFactory, tmp_path: Path) -> None:
    slow = start_server(faults="latency=1s")
    data = tmp_path / "train.jsonl"
    data.write_bytes(chat_lines(PAIRS) * 20)
    seen: list[Message] = []
    app = make_app(start_local=Attached(slow.base_url, slow.api_key))
    async with app.run_test(size=(80, 24), message_hook=keep_once(seen)) as pilot:
        await open_files(app, pilot)
        pane = app.query_one(FileList)
        assert pane.check_action("cancel_upload", ()) is False  # nothing to cancel yet
        await pilot.press("u")
        await wait_for_text(pilot, "Upload a fine-tuning JSONL")
        await type_path(pilot, data)
        await wait_until(pilot, lambda: pane.check_action("cancel_upload", ()),
                         what="the upload to start")
        await wait_for_text(pilot, "Cancel upload")  # the footer offers it
        await pilot.press("c")
        await wait_until(pilot, lambda: any(isinstance(m, FileList.UploadEnded) for m in seen),
                         what="the upload to end", timeout=30)
        ended = [m.outcome for m in seen if isinstance(m, FileList.UploadEnded)]
        assert ended == ["cancelled"]
        assert not any(isinstance(m, FileUploaded) for m in seen)
        assert ("Files", "Upload cancelled") in [(n.title, n.message)
                                                 for n in app._notifications]
        assert pane.check_action("upload", ()) is True
    with openai.OpenAI(base_url=slow.base_url, api_key=slow.api_key) as client:
        assert client.files.list().data == []
