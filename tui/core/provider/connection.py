"""Reaching the provider: one connect() for the app, ``watch``, ``eval``, ``serve`` and the rest."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SDK costs ~0.5 s to import: not before the app's first frame
    import openai

    from tui.core.provider.config import ProviderKind
    from tui.core.provider.providers import LocalEndpoint, ResolvedProvider

StartLocal = Callable[[], "LocalEndpoint"]
"""Finds (or starts) the local server: an object with base_url, api_key and stop()."""


class ProviderUnavailable(Exception):
    """No provider could be resolved or reached (the message never holds a key)."""


@dataclass
class Connection:
    """A resolved provider and its client."""

    name: str
    """Profile name (``local`` for the embedded server)."""
    kind: ProviderKind
    """openai, azure, compatible or local."""
    base_url: str
    """Where requests go."""
    masked_key: str
    """The API key, masked: the only form of it a view ever holds."""
    client: openai.AsyncOpenAI = field(repr=False)
    """``openai.AsyncOpenAI`` (or Azure) client."""
    resolved: ResolvedProvider = field(repr=False)
    """The resolution behind it: profile, capabilities, the local server endpoint."""

    @property
    def is_local(self) -> bool:
        """True for the embedded local server."""
        return self.kind == "local"

    @property
    def server(self) -> LocalEndpoint | None:
        """The local server endpoint when the provider is local (its keep-alive ends on close;
        the background server itself goes on running jobs)."""
        return self.resolved.local

    def close(self) -> None:
        """Let go of the local server (its keep-alive; the server keeps running jobs)."""
        self.resolved.close()

    async def aclose(self) -> None:
        """Close the client's HTTP connections, then let go of the local server."""
        try:
            await self.client.close()
        finally:
            self.close()


def connect(name: str | None, start_local: StartLocal | None) -> Connection:
    """Resolve the provider (``--provider``, config, environment, else the local server, which
    may take up to a minute to start) and make its client. Blocking: see open_connection().

    Raises tui.core.provider.providers.ProviderError or tui.core.provider.config.ConfigError,
    or whatever ``start_local`` raises. Imports the openai SDK here, never at module level.
    """
    from tui.core.provider.providers import (
        install_secret_redaction,
        make_async_client,
        resolve_provider,
    )

    install_secret_redaction()  # every key resolved below is masked in any log record
    resolved = resolve_provider(name, start_local=start_local)
    try:
        client = make_async_client(resolved)
    except Exception:
        resolved.close()
        raise
    follow = getattr(resolved.local, "on_moved", None)
    if follow is not None:  # the background server came back on another port: go there
        follow(lambda url: setattr(client, "base_url", url))
    where = resolved.base_url or resolved.profile.endpoint or ""
    return Connection(name=resolved.name, kind=resolved.kind, base_url=where,
                      masked_key=resolved.masked_key, client=client, resolved=resolved)


async def open_connection(name: str | None, start_local: StartLocal | None) -> Connection:
    """connect() off the event loop, in a daemon thread: Ctrl-C (a cancellation) ends the wait
    at once, even while the local server starts; a connection made after that is closed.

    Not the loop's default executor: asyncio.run joins its threads before it returns, so an
    interrupted command would still wait for the server to start.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    made: asyncio.Future[Connection] = loop.create_future()

    def deliver(connection: Connection) -> None:
        if made.cancelled():
            connection.close()  # its client never sent a request: nothing to close there
        else:
            made.set_result(connection)

    def fail(error: Exception) -> None:
        if not made.cancelled():
            made.set_exception(error)

    def resolve() -> None:
        try:
            connection = connect(name, start_local)
        except Exception as error:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(fail, error)
            return
        try:
            loop.call_soon_threadsafe(deliver, connection)
        except RuntimeError:
            connection.close()

    threading.Thread(target=resolve, name="sqltune-connect", daemon=True).start()
    return await made
