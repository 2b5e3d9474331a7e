"""What a folder's server says about itself (GET /v1/sqltune/server) and when it counts as idle."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from tui.core.finetune.status import ACTIVE_STATUSES
from tui.server.context import CTX, ctx, respond
from tui.server.service import STATUS_PATH

WORKING = ACTIVE_STATUSES - {"paused"}
"""Job statuses that keep a server busy (a paused job has snapshotted and waits: it does not)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Activity:
    """Requests in flight and the last moment the server did anything."""

    kind: str
    """``service``, ``foreground`` or ``in-process``."""
    idle_timeout_s: float = 0.0
    """Seconds idle before the server stops itself; 0 never."""
    url: str = ""
    """The base URL it serves, once bound."""
    started_at: float = field(default_factory=time.time)
    """Unix time of the start."""
    in_flight: int = 0
    """Requests being answered (a long stream counts for its whole length)."""
    last_active: float = field(default_factory=time.monotonic)
    """Monotonic time a request ended or a job was seen working."""

    def touch(self) -> None:
        """Something happened now."""
        self.last_active = time.monotonic()

    def idle_s(self) -> float:
        """Seconds since the last activity (0 while a request is in flight)."""
        return 0.0 if self.in_flight else time.monotonic() - self.last_active


ACTIVITY = web.AppKey("sqltune_activity", Activity)
IDLE_BEFORE = web.RequestKey("sqltune_idle_before", float)
"""The server's idle seconds when the request arrived (it touches the activity itself)."""


@web.middleware
async def activity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request, authorized or not, counts as activity from its start to its end."""
    activity = request.app[ACTIVITY]
    request[IDLE_BEFORE] = activity.idle_s()
    activity.in_flight += 1
    activity.touch()
    try:
        return await handler(request)
    finally:
        activity.in_flight -= 1
        activity.touch()


def unfinished_jobs(app: web.Application) -> list[dict[str, str]]:
    """``{"id", "status"}`` of every job that has not ended."""
    return [{"id": job.id, "status": job.status}
            for job in app[CTX].store.jobs_in(ACTIVE_STATUSES)]


async def server_status(request: web.Request) -> web.Response:
    """``GET /v1/sqltune/server``: pid, URL, uptime, idle time and unfinished jobs (no key)."""
    activity = request.app[ACTIVITY]
    server = ctx(request)
    return respond({
        "object": "sqltune.server", "pid": os.getpid(), "url": activity.url,
        "kind": activity.kind, "started_at": activity.started_at,
        "uptime_s": round(time.time() - activity.started_at, 3),
        "idle_timeout_s": activity.idle_timeout_s,
        "idle_s": round(request.get(IDLE_BEFORE, 0.0), 3),
        "data_dir": str(server.data_dir), "speed": server.pace.label,
        "jobs": unfinished_jobs(request.app)})


def instrument(app: web.Application, activity: Activity) -> None:
    """Add the activity middleware (outermost) and the status route to a built app."""
    app[ACTIVITY] = activity
    app.middlewares.insert(0, activity_middleware)
    app.router.add_get("/v1" + STATUS_PATH, server_status)


async def wait_until_idle(app: web.Application, activity: Activity) -> None:
    """Return once no request and no working job was seen for ``idle_timeout_s`` seconds."""
    timeout = activity.idle_timeout_s
    tick = min(max(timeout / 20, 0.05), 5.0)
    while True:
        await asyncio.sleep(tick)
        if any(job["status"] in WORKING for job in unfinished_jobs(app)):
            activity.touch()
        elif activity.idle_s() >= timeout:
            return
