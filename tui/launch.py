"""How the command layer reaches the local server: attach to the data folder's background service.

The first sqltune that needs the server starts it as a detached background process that owns
the folder (see tui.server.service); every other one attaches. ``local_endpoint()`` is the one
call the app, ``watch``, ``eval``, ``serve`` and the ``files``/``jobs`` commands make.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LOCAL_URL_ENV = "SQLTUNE_LOCAL_URL"
"""When set with SQLTUNE_LOCAL_KEY: attach to this server instead (tests, embedding programs)."""
LOCAL_KEY_ENV = "SQLTUNE_LOCAL_KEY"
"""The bearer key of SQLTUNE_LOCAL_URL, passed to child processes only through the environment."""
KEEP_ALIVE_MAX_S = 15.0
"""Longest pause between two keep-alive checks of the service."""

log = logging.getLogger(__name__)


@dataclass
class AttachedServer:
    """A local server owned by another process: attach, never stop it."""

    base_url: str
    """The shared server's base URL, ending in ``/v1``."""
    api_key: str = field(repr=False)
    """Its bearer key (never shown)."""

    def stop(self) -> None:
        """Nothing to do: the owning process stops the server."""


class ServiceEndpoint:
    """The data folder's background service, kept alive while this object is open.

    A thread asks the service for its status every third of its idle timeout (at most every
    15 s), which counts as activity; when the service went away (stopped, killed, idle), the
    thread starts it again, on the same port when it is free, so clients keep their URL.
    ``stop()`` ends the keep-alive only: the service and its jobs go on.
    """

    def __init__(self, folder: Path, *, keep_alive: bool = True) -> None:
        from tui.server.service import client_key, ensure_running

        self.folder = folder
        """The server's data folder."""
        self.api_key = client_key(folder)
        """Its bearer key (never shown)."""
        self._state = ensure_running(folder, self.api_key).state
        self._moved: list[Callable[[str], None]] = []
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        if keep_alive:
            self._thread = threading.Thread(target=self._keep_alive, daemon=True,
                                            name="sqltune-service-keepalive")
            self._thread.start()

    def __repr__(self) -> str:
        return f"ServiceEndpoint(base_url={self.base_url!r}, pid={self.pid})"

    @property
    def base_url(self) -> str:
        """The service's base URL, ending in ``/v1``."""
        return self._state.url

    @property
    def pid(self) -> int:
        """The service's process id."""
        return self._state.pid

    def _interval(self) -> float:
        idle = self._state.idle_timeout_s
        return min(idle / 3, KEEP_ALIVE_MAX_S) if idle > 0 else KEEP_ALIVE_MAX_S

    def _keep_alive(self) -> None:
        from tui.server.service import ServiceError, ensure_running, probe

        while not self._closed.wait(self._interval()):
            try:
                if probe(self.base_url, self.api_key) is not None:
                    continue
                found = ensure_running(self.folder, self.api_key, prefer_port=self._state.port)
            except ServiceError as error:
                log.warning("local server: %s", error)
                continue
            moved = found.state.url != self.base_url
            self._state = found.state  # one assignment: url and pid never seen half-updated
            if moved:  # its old port was taken: clients must follow
                log.warning("local server restarted at %s", self.base_url)
                for callback in list(self._moved):
                    callback(self.base_url)

    def on_moved(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(new_base_url)`` (from the keep-alive thread) after a restart that
        could not keep the port, so a client can point itself there."""
        self._moved.append(callback)

    def stop(self) -> None:
        """End the keep-alive (the service keeps running its jobs); safe to call twice."""
        self._closed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)


def local_endpoint(*, keep_alive: bool = True) -> AttachedServer | ServiceEndpoint:
    """The local server for this user's data folder, started in the background when needed.

    Returns an object with ``base_url`` (ending in ``/v1``), ``api_key`` and ``stop()`` (which
    leaves the server running). SQLTUNE_LOCAL_URL/KEY, when both set, name the server instead.
    Raises tui.core.provider.providers.ProviderError when the service cannot be started or reached.
    """
    url = os.environ.get(LOCAL_URL_ENV)
    key = os.environ.get(LOCAL_KEY_ENV)
    if url and key:
        return AttachedServer(base_url=url, api_key=key)
    from tui.core.paths import data_dir
    from tui.server.service import ServiceError

    try:
        return ServiceEndpoint((data_dir() / "server").resolve(), keep_alive=keep_alive)
    except ServiceError as error:
        from tui.core.provider.providers import ProviderError

        raise ProviderError(f"local server: {error}") from None
