"""The local server in tests: a module-scoped fixture per server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tui.server.inprocess import LocalServer, start_local_server


def module_server(folder: str, *, speed: str = "max",
                  faults: str = "") -> Callable[..., Iterator[LocalServer]]:
    """A module-scoped fixture: a local server on a fresh ``folder``, stopped after the module.

    Assign it to the fixture's name: ``server = module_server("files-server")``."""

    @pytest.fixture(scope="module")
    def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
        with start_local_server(tmp_path_factory.mktemp(folder), speed=speed,
                                faults=faults) as server:
            yield server

    return running
