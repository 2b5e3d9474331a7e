"""App fixtures: local servers on loopback the app attaches to, and helpers to reach them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest

from tui.server.inprocess import LocalServer, start_local_server

FAST = "4"
"""Server speed of the app tests: 4x demo pacing (2 epochs of the demo data train in about 8 s,
longer than the follower's 5 s poll while queued, so events are seen arriving while it runs)."""


@dataclass
class Attached:
    """``make_app(start_local=...)``'s starter: the fixture's server, which the app never stops."""

    base_url: str
    """The server's base URL."""
    api_key: str = field(repr=False)
    """Its bearer key."""
    started: int = 0
    """How often the app asked for the local server."""
    stopped: int = 0
    """How often the app asked to stop it (on exit or provider switch)."""

    def __call__(self) -> Attached:
        """The starter: hands out the running server."""
        self.started += 1
        return self

    def stop(self) -> None:
        """Counted, not done: the fixture owns the server."""
        self.stopped += 1


ServerFactory = Callable[..., LocalServer]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start in-process servers (``speed``, ``faults``); all are stopped after the test."""
    running: list[LocalServer] = []

    def start(*, speed: str = FAST, faults: str = "") -> LocalServer:
        server = start_local_server(tmp_path / f"server-{len(running)}", speed=speed,
                                    faults=faults)
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def server(start_server: ServerFactory) -> LocalServer:
    """A fresh in-process server at 4x demo speed."""
    return start_server()


@pytest.fixture
def attach(server: LocalServer) -> Attached:
    """The starter the app calls to reach ``server``."""
    return Attached(server.base_url, server.api_key)


@pytest.fixture
def sdk(server: LocalServer) -> Iterator[openai.OpenAI]:
    """The official sync SDK on ``server``: the test's own view of what the app did."""
    with openai.OpenAI(base_url=server.base_url, api_key=server.api_key) as client:
        yield client
