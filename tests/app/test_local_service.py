"""The app on the data folder's background server: it attaches, and quitting leaves it running."""

from __future__ import annotations

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
