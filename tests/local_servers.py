"""The local server in tests: a module-scoped fixture per server, and a provider profile for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tui.core.provider.config import Config, ProviderProfile, save_config
from tui.server.inprocess import LocalServer, start_local_server

KEY_ENV = "SQLTUNE_SERVER_KEY"
"""The environment variable a saved profile reads the server's key from."""


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


def save_profile(server: LocalServer, name: str = "srv") -> str:
    """config.toml with one profile ``name`` for ``server``, its key read from ``KEY_ENV``
    (which the caller sets, here or in a child's environment); the profile's name."""
    save_config(Config(profiles={name: ProviderProfile(
        name=name, kind="local", base_url=server.base_url, api_key_env=KEY_ENV)}))
    return name


def provider_anywhere(command: list[str], profile: str) -> list[list[str]]:
    """``command`` with ``--provider PROFILE`` before the subcommand, right after its first
    word, and at the end."""
    option = ["--provider", profile]
    return [[*option, *command], [command[0], *option, *command[1:]], [*command, *option]]
