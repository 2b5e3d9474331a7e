"""What the app's panes share: the dataset to open, the provider connection, the last export."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core.provider.connection import Connection, ProviderUnavailable, StartLocal

if TYPE_CHECKING:
    import openai

    from tui.core.finetune.jobs import JobService


class Session:
    """The app's state beyond any one pane; the app connects, the panes wait for the client."""

    def __init__(self, *, data: Path | None, provider: str | None,
                 start_local: StartLocal | None) -> None:
        self.data = data
        """--data: a Spider folder or a JSONL file (None: the demo data)."""
        self.provider_name = provider
        """--provider: the profile asked for (None: the default resolution)."""
        self.start_local = start_local
        """Starter of the embedded server, passed in by the CLI or a test."""
        self.connection: Connection | None = None
        """The provider in use, once connected."""
        self.error: str | None = None
        """Why the last connection attempt failed."""
        self.last_export: Path | None = None
        """The JSONL the token meter exported last (the upload default)."""
        self._settled = asyncio.Event()

    def settle(self, connection: Connection | None, error: str | None = None) -> None:
        """Record the outcome of a connection attempt and wake whoever waits for a client."""
        self.connection = connection
        self.error = error
        self._settled.set()

    def unsettle(self) -> None:
        """A new connection attempt started (provider switch): waiters block again."""
        self._settled = asyncio.Event()

    async def client(self) -> openai.AsyncOpenAI:
        """The provider's client, waiting for the connection; raises ProviderUnavailable."""
        await self._settled.wait()
        if self.connection is None:
            raise ProviderUnavailable(self.error or "no provider connected")
        return self.connection.client

    async def jobs(self) -> JobService:
        """The connected provider's job service, waiting for the connection."""
        from tui.core.finetune.jobs import JobService

        await self.client()
        assert self.connection is not None  # client() raised otherwise
        return JobService.on(self.connection)
