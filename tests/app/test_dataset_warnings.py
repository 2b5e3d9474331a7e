"""Corrupt or missing input in the app: the panes say what `sqltune prepare` says (file, line,
column), instead of `train 0/0 · 0 problems`, nothing, or the demo data in silence."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.app.conftest import Attached
from tests.app.helpers import screen_text, wait_for_text, wait_until
from tests.app.panes_support import no_local_server
from tui.app import SqltuneApp, make_app
from tui.core.data.prepare import prepare
from tui.core.paths import demo_dir
from tui.widgets.dataset_preview import DatasetPreview

SIZE = (80, 24)


def broken_copy(tmp_path: Path) -> Path:
    """The demo folder with a comma missing in train.json and a stray brace in tables.json."""
    root = tmp_path / "broken"
    shutil.copytree(demo_dir(), root, ignore=shutil.ignore_patterns("_domains", "*.py", "*.md"))
    train = (root / "train.json").read_text(encoding="utf-8").splitlines()
    assert train[5] == "  },"
    train[5] = "  }"  # line 7, column 3 now starts an object where a comma was due
    (root / "train.json").write_text("\n".join(train) + "\n", encoding="utf-8")
    tables = (root / "tables.json").read_text(encoding="utf-8").splitlines()
    tables.insert(1, "}")
    (root / "tables.json").write_text("\n".join(tables) + "\n", encoding="utf-8")
    return root


def preview(app: SqltuneApp) -> DatasetPreview:
    pane = app.pane("dataset")
    assert isinstance(pane, DatasetPreview)
    return pane


async def test_broken_files_show_prepare_s_warnings_in_the_dataset_pane(tmp_path: Path) -> None:
    root = broken_copy(tmp_path)
    warnings = prepare(root).warnings  # what `sqltune prepare` prints after "Warning: "
    assert warnings == [
        "tables.json line 2 column 1: not valid JSON (Expecting value); schemas are read from "
        "the SQLite files only",
        "train.json line 7 column 3: not valid JSON (Expecting ',' delimiter)"]
    app = make_app(data=root, start_local=no_local_server)
    async with app.run_test(size=SIZE) as pilot:
        pane = preview(app)
        await wait_until(pilot, lambda: pane.problems is not None, what="the problem scan")
        await pilot.pause()
        assert pane.warnings == warnings
        screen = screen_text(app)
        assert "broken · train 0/0 p1/1 · 0 problems · 2 warnings" in screen
        flat = " ".join(screen.split())
        for warning in warnings:
            assert f"⚠ {warning}" in flat, screen


async def test_a_missing_data_folder_is_named_by_every_pane(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a short relative path: the sentence fits on one line
    missing = Path("no-such-folder")
    app = make_app(data=missing, start_local=no_local_server)
    said = f"dataset folder not found: {missing}"
    async with app.run_test(size=SIZE) as pilot:
        for key, pane_id in (("1", "dataset"), ("2", "budget"), ("6", "evaluate")):
            await pilot.press(key)
            await wait_until(pilot, lambda: said in " ".join(screen_text(app).split()),
                             what=f"pane {pane_id} to name the missing folder")
        screen = screen_text(app)
        assert "(demo)" not in screen  # Evaluate no longer falls back to the demo dev split


async def test_the_playground_names_a_missing_data_folder(
        attach: Attached, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(data=Path("no-such-folder"), start_local=attach)  # models do list here
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_text(pilot, "provider local")
        await pilot.press("5")
        await wait_for_text(pilot, "dataset folder not found: no-such-folder")
