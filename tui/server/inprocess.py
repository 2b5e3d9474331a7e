"""The server on a loopback port in a background thread (tests, embedding), holding its folder."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from aiohttp import web

from tui.server.activity import Activity, Handler, instrument
from tui.server.app import ServerConfig, build_app, server_data_dir
from tui.server.service import FolderOwner

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

LOOPBACK = "127.0.0.1"


class LocalServer:
    """A running in-process server; ``stop()`` (or leaving the ``with`` block) shuts it down.

    It holds the folder's lock like the background service, so it never runs beside another
    server on the same folder (``start()`` raises FolderBusy), and publishes its URL there.
    """

    def __init__(self, data_dir: Path, *, speed: str = "demo", faults: str = "",
                 port: int = 0) -> None:
        self.data_dir = data_dir
        """The server's folder (database, blobs, api-key)."""
        self.port = 0
        """The port it listens on (chosen by the OS when 0 was asked for)."""
        self.api_key = ""
        """The bearer key clients must send (the object's repr never shows it)."""
        self.requests: Counter[tuple[str, str]] = Counter()
        """Requests received by method and path, e.g. ``("GET", "/v1/models")`` (tests read it)."""
        self._config = ServerConfig(data_dir=data_dir, speed=speed, faults=faults)
        self._wanted_port = port
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._app: web.Application | None = None
        self._owner = FolderOwner(data_dir)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="sqltune-local-server",
                                        daemon=True)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: what an OpenAI client takes as ``base_url``."""
        return f"http://{LOOPBACK}:{self.port}/v1"

    @property
    def faults_injected(self) -> dict[str, int]:
        """How many dropped connections, 429s and 500s the server injected so far."""
        from tui.server.context import CTX

        return dict(self._app[CTX].faults.injected) if self._app is not None else {}

    def __repr__(self) -> str:
        return f"LocalServer(base_url={self.base_url!r}, data_dir={str(self.data_dir)!r})"

    def start(self, timeout: float = 30.0) -> LocalServer:
        """Take the folder, start the thread and wait until the port is listening.

        Raises FolderBusy when another process or server holds the folder, and re-raises a
        startup error.
        """
        self._owner.acquire()
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the local server did not start in time")
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start_site())
        except BaseException as error:  # reported to the starting thread
            self._error = error
            self._loop.run_until_complete(self._shutdown())
            self._loop.close()
            self._owner.release()
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._shutdown())
            self._loop.close()
            self._owner.release()

    async def _start_site(self) -> None:
        app = build_app(self._config)
        activity = Activity(kind="in-process")
        instrument(app, activity)
        app.middlewares.insert(0, _noting(self.requests))
        self._app = app
        self.api_key = app_key(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, LOOPBACK, self._wanted_port, reuse_address=True)
        await site.start()
        for address in runner.addresses:
            self.port = int(address[1])
            break
        activity.url = self.base_url
        self._owner.publish(self.base_url, activity.kind, 0.0)

    async def _shutdown(self) -> None:
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving, let running jobs snapshot, and join the thread; safe to call twice."""
        if self._thread.is_alive() and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


def _noting(requests: Counter[tuple[str, str]]) -> Middleware:
    """A middleware that counts each request in ``requests`` by method and path."""
    @web.middleware
    async def note(request: web.Request, handler: Handler) -> web.StreamResponse:
        requests[request.method, request.path] += 1
        return await handler(request)

    return note


def app_key(app: web.Application) -> str:
    """The bearer key of a built app."""
    from tui.server.context import CTX

    return app[CTX].api_key


def start_local_server(data_dir: Path | None = None, *, speed: str = "demo", faults: str = "",
                       port: int = 0) -> LocalServer:
    """Start the server in a background thread on 127.0.0.1 (an ephemeral port by default).

    ``data_dir`` defaults to ``tui.core.paths.data_dir()/"server"``. The returned LocalServer
    has ``base_url`` (ending in ``/v1``), ``api_key``, ``data_dir`` and ``stop()``, and is a
    context manager.
    """
    server = LocalServer(server_data_dir(data_dir), speed=speed, faults=faults, port=port)
    return server.start()
