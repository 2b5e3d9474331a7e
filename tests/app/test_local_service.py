"""The app on the data folder's background server: it attaches, and quitting leaves it running."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.helpers import wait_until
from tests.service_support import stop_service
from tui.app import make_app
from tui.core.paths import data_dir
from tui.launch import ServiceEndpoint, local_endpoint
from tui.server.service import pid_alive, read_state


@pytest.fixture
def folder() -> Iterator[Path]:
    path = (data_dir() / "server").resolve()
    try:
        yield path
    finally:
        stop_service(path)


async def test_the_app_attaches_to_the_service_and_quitting_leaves_it_running(
        folder: Path) -> None:
    already = local_endpoint(keep_alive=False)  # another sqltune started it first
    assert isinstance(already, ServiceEndpoint)
    app = make_app(start_local=local_endpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.session.connection is not None, what="connected")
        connection = app.session.connection
        assert connection is not None and connection.base_url == already.base_url
        assert isinstance(connection.server, ServiceEndpoint)
        assert connection.server.pid == already.pid
        models = await connection.client.models.list()
        assert models.data
    state = read_state(folder)
    assert pid_alive(already.pid) and state is not None and state.pid == already.pid


class StuckStarter:
    """A local-server starter still starting when the app quits; the test lets it finish."""

    base_url = "http://127.0.0.1:9/v1"
    api_key = "sk-local-test"

    def __init__(self) -> None:
        self.entered, self.go, self.returned = threading.Event(), threading.Event(), False
        self.stopped = 0

    def __call__(self) -> StuckStarter:
        self.entered.set()
        self.go.wait(30)
        self.returned = True
        return self

    def stop(self) -> None:
        self.stopped += 1


async def test_quitting_while_the_local_server_starts_does_not_wait_for_it() -> None:
    starter = StuckStarter()
    app = make_app(start_local=starter)
    async with app.run_test() as pilot:
        await wait_until(pilot, starter.entered.is_set, what="the server start")
        await pilot.press("ctrl+q")
    assert not starter.returned  # the app is gone while the server is still starting
    starter.go.set()  # the start finishes after all: nobody takes it, so it is let go
    for _ in range(250):
        if starter.stopped:
            break
        await asyncio.sleep(0.02)
    assert starter.stopped == 1
