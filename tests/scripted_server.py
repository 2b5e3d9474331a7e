"""A tiny real HTTP server on loopback that answers from a script (429s, 5xx, then success) and
records every request it got: when, what, and the SDK's ``x-stainless-retry-count``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

CHAT_REPLY: dict[str, Any] = {
    "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": "scripted",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "SELECT count(*) FROM book"}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
}
"""A chat completion as OpenAI sends it."""


@dataclass(frozen=True)
class Reply:
    """One scripted response."""

    status: int
    """HTTP status."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra headers (retry-after, retry-after-ms...)."""
    body: dict[str, Any] | None = None
    """JSON body; None: an OpenAI error object for the status."""


def failure(status: int, **headers: str) -> Reply:
    """An error reply with OpenAI's error body; ``retry_after_ms="50"`` -> ``retry-after-ms``."""
    return Reply(status, {name.replace("_", "-"): value for name, value in headers.items()})


@dataclass(frozen=True)
class Seen:
    """One request the server got."""

    at: float
    """time.monotonic() on arrival."""
    method: str
    """GET, POST..."""
    path: str
    """The URL path (``/v1/chat/completions``)."""
    retry_count: str | None
    """The SDK's x-stainless-retry-count header (0 on a first attempt)."""


class ScriptedServer:
    """Answers each request with the next reply of ``script``, then with ``then`` forever."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        """Replies still to give, in order."""
        self.then: Reply = Reply(200, body=CHAT_REPLY)
        """The reply once the script is used up."""
        self.seen: list[Seen] = []
        """Every request, in arrival order."""
        self.base_url = ""
        """``http://127.0.0.1:PORT/v1`` once started."""

    def play(self, *replies: Reply, then: Reply | None = None) -> None:
        """Start a new script (and forget the requests seen so far)."""
        self.script, self.seen = list(replies), []
        if then is not None:
            self.then = then

    def gaps(self) -> list[float]:
        """Seconds between consecutive requests."""
        return [b.at - a.at for a, b in zip(self.seen, self.seen[1:], strict=False)]

    async def _answer(self, request: web.Request) -> web.Response:
        self.seen.append(Seen(time.monotonic(), request.method, request.path,
                              request.headers.get("x-stainless-retry-count")))
        await request.read()
        reply = self.script.pop(0) if self.script else self.then
        body = reply.body if reply.body is not None else {"error": {
            "message": f"scripted HTTP {reply.status}", "type": "scripted", "param": None,
            "code": None}}
        return web.json_response(body, status=reply.status, headers=reply.headers)


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedServer]:
    """A ScriptedServer on an ephemeral loopback port for one test."""
    server = ScriptedServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server._answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    try:
        yield server
    finally:
        await runner.cleanup()
