"""The README screenshot script: real SVGs from the app, never a key in them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.app import SqltuneApp, make_app
from tui.cli import build_parser, main
from tui.commands.screenshots import (
    HIDDEN_KEY,
    ScreenshotError,
    Stage,
    isolated_home,
    leaked_secrets,
    shoot,
    stage_demo,
    svg_text,
)
from tui.core.provider.config import mask_key
from tui.core.session import Session
from tui.launch import AttachedServer
from tui.server.inprocess import LocalServer, start_local_server
from tui.widgets.pane import Pane


class Sketchpad(Pane):
    """A pane without a scene (and without work), as a newly added pane would be."""

    PANE_ID = "sketchpad"
    PANE_TITLE = "Sketchpad"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    """A private local server at full speed."""
    with start_local_server(tmp_path / "server", speed="max") as running:
        yield running


def attached(server: LocalServer) -> AttachedServer:
    """The app's starter for ``server`` (the test owns it)."""
    return AttachedServer(server.base_url, server.api_key)


async def test_finished_job_pictured_with_the_key_hidden(server: LocalServer,
                                                         tmp_path: Path) -> None:
    stage = await stage_demo(server, tmp_path)
    assert stage.fine_tuned_model.startswith("ft:")
    assert stage.secrets == [server.api_key, mask_key(server.api_key)]
    app = make_app(start_local=lambda: attached(server))
    lines: list[str] = []
    out = tmp_path / "shots"
    saved = await shoot(app, stage, out, panes=["budget", "jobs"], size=(80, 24),
                        log=lines.append)
    assert saved == [out / "budget.svg", out / "jobs.svg"]
    assert sorted(p.name for p in out.iterdir()) == ["budget.svg", "jobs.svg"]
    for path in saved:
        svg = path.read_text(encoding="utf-8")
        assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
        text = svg_text(svg)
        assert f"key {HIDDEN_KEY}" in text
        assert server.api_key not in svg and mask_key(server.api_key) not in text
        assert server.api_key[-4:] not in text
        assert "provider local" in text
    jobs = svg_text(saved[1].read_text(encoding="utf-8"))
    # The detail of the finished job (opened with enter from the list), not the list.
    assert stage.job_id in jobs and stage.fine_tuned_model in jobs and "succeeded" in jobs
    assert "enter open" not in jobs
    budget = svg_text(saved[0].read_text(encoding="utf-8"))
    assert "validation 0.1" in budget  # the scene held out a tenth
    assert lines == [f"budget: {saved[0]}", f"jobs: {saved[1]}"]


async def test_a_picture_showing_a_secret_is_refused_and_removed(server: LocalServer,
                                                                 tmp_path: Path) -> None:
    # The pane's title is on screen (its tab): treated as a secret, the picture must not stay.
    stage = Stage(server=server, train_file_id="file-x", job_id="ftjob-x",
                  fine_tuned_model="ft:x", dev_question="?", secrets=["Sketchpad"])
    session = Session(data=None, provider=None, start_local=lambda: attached(server))
    app = SqltuneApp(session, panes=[Sketchpad])
    out = tmp_path / "shots"
    lines: list[str] = []
    with pytest.raises(ScreenshotError,
                       match="the sketchpad picture showed a 9-character secret"):
        await shoot(app, stage, out, size=(80, 24), log=lines.append)
    assert lines == ["sketchpad: no scene for this pane; showing it as it opens"]
    assert list(out.iterdir()) == []


async def test_unknown_pane_is_named(server: LocalServer, tmp_path: Path) -> None:
    stage = Stage(server=server, train_file_id="f", job_id="j", fine_tuned_model="m",
                  dev_question="?")
    with pytest.raises(ScreenshotError, match="no pane nope; the panes are dataset, budget"):
        await shoot(make_app(start_local=lambda: attached(server)), stage, tmp_path,
                    panes=["nope"])


def test_leak_check_reads_text_split_by_markup() -> None:
    svg = '<svg><text>sk-&#8230;</text><text>abcd&#160;x</text><text>ok</text></svg>'
    assert svg_text(svg) == "sk-…abcd xok"
    assert leaked_secrets(svg, ["sk-…abcd"]) == ["a 8-character secret"]
    assert leaked_secrets(svg, ["sk-…abce", ""]) == []


def test_cli_command_is_hidden_and_checks_its_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert "screenshots" not in build_parser().format_help()
    assert main(["screenshots", "--size", "30x5", "--out", "unused"]) == 1
    assert "size must be at least 40x12, not '30x5'" in capsys.readouterr().err
    assert main(["screenshots", "--size", "wide"]) == 1
    assert "size is COLUMNSxROWS" in capsys.readouterr().err


def test_isolated_home_hides_provider_settings_and_restores_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-0000")
    before = dict(os.environ)
    with isolated_home() as home:
        assert "OPENAI_API_KEY" not in os.environ
        assert os.environ["SQLTUNE_CONFIG_DIR"] == str(home / "config")
        assert os.environ["SQLTUNE_DATA_DIR"] == str(home / "data")
        assert home.is_dir()
    assert dict(os.environ) == before
    assert not home.exists()
