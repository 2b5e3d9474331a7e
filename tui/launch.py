"""How the command layer reaches the embedded local server: start one, or attach to a shared one."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # aiohttp and the server load on first use, after the app's first frame
    from tui.server.inprocess import LocalServer

LOCAL_URL_ENV = "SQLTUNE_LOCAL_URL"
"""Set by ``sqltune serve`` for the app processes it spawns: the shared server's base URL."""
LOCAL_KEY_ENV = "SQLTUNE_LOCAL_KEY"
"""The shared server's bearer key, passed to child processes only through the environment."""


@dataclass
class AttachedServer:
    """A local server owned by another process (``sqltune serve``): attach, never stop it."""

    base_url: str
    """The shared server's base URL, ending in ``/v1``."""
    api_key: str = field(repr=False)
    """Its bearer key (never shown)."""

    def stop(self) -> None:
        """Nothing to do: the owning process stops the server."""


def local_endpoint() -> AttachedServer | LocalServer:
    """Attach to the server named by SQLTUNE_LOCAL_URL, or start one in-process."""
    url = os.environ.get(LOCAL_URL_ENV)
    key = os.environ.get(LOCAL_KEY_ENV)
    if url and key:
        return AttachedServer(base_url=url, api_key=key)
    from tui.server.inprocess import start_local_server

    return start_local_server()
