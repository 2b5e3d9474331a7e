"""connect() and open_connection(): the one way the app and the commands reach the provider."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tui.core.provider.config import Config, ProviderProfile, save_config
from tui.core.provider.connection import connect, open_connection
from tui.core.provider.providers import ProviderError
from tui.launch import LOCAL_KEY_ENV, LOCAL_URL_ENV, local_endpoint
from tui.server.inprocess import LocalServer, start_local_server
from tui.server.service import read_state


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with start_local_server(tmp_path_factory.mktemp("server"), speed="max") as running:
        yield running


@dataclass
class SlowStarter:
    """A local-server starter that hands out ``server`` once the test lets it."""

    server: LocalServer
    go: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    stopped: int = 0

    def __call__(self) -> SlowStarter:
        self.entered.set()
        self.go.wait(10)
        return self

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def api_key(self) -> str:
        return self.server.api_key

    def stop(self) -> None:
        self.stopped += 1


async def test_connect_names_the_provider_and_its_client_works(server: LocalServer) -> None:
    starter = SlowStarter(server)
    starter.go.set()
    connection = connect(None, starter)  # nothing configured: the local server
    try:
        assert (connection.name, connection.kind, connection.base_url) == (
            "local", "local", server.base_url)
        assert connection.is_local and connection.server is starter
        assert server.api_key not in repr(connection) + connection.masked_key
        models = await connection.client.models.list()
        assert models.data
    finally:
        await connection.aclose()
    assert starter.stopped == 1 and connection.client.is_closed()


async def test_a_configured_profile_is_no_local_server(server: LocalServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    save_config(Config(profiles={"srv": ProviderProfile(
        name="srv", kind="compatible", base_url=server.base_url, api_key_env="SRV_KEY")}))
    monkeypatch.setenv("SRV_KEY", server.api_key)
    starter = SlowStarter(server)
    connection = await open_connection("srv", starter)
    try:
        assert (connection.name, connection.kind, connection.server) == ("srv", "compatible",
                                                                         None)
        assert not starter.entered.is_set()
    finally:
        await connection.aclose()
    with pytest.raises(ProviderError, match="unknown provider profile 'nope'"):
        await open_connection("nope", starter)


async def test_sqltune_local_url_names_the_local_server(server: LocalServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOCAL_URL_ENV, server.base_url)
    monkeypatch.setenv(LOCAL_KEY_ENV, server.api_key)
    connection = await open_connection(None, local_endpoint)
    try:
        assert connection.base_url == server.base_url
        assert (await connection.client.models.list()).data
    finally:
        await connection.aclose()
    from tui.core.paths import data_dir

    assert read_state(data_dir() / "server") is None  # no background server was started


async def test_a_cancelled_wait_ends_at_once_and_the_late_connection_is_let_go(
        server: LocalServer) -> None:
    starter = SlowStarter(server)
    waiting = asyncio.ensure_future(open_connection(None, starter))
    assert await asyncio.to_thread(starter.entered.wait, 5)  # the local server is "starting"
    began = time.monotonic()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert time.monotonic() - began < 0.5  # not after the start
    starter.go.set()  # the start finishes after all: nobody takes it, so it is let go
    for _ in range(100):
        if starter.stopped:
            break
        await asyncio.sleep(0.02)
    assert starter.stopped == 1
