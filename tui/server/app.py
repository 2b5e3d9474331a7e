"""The aiohttp application: OpenAI-shaped errors, request ids, faults and auth around the routes."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tui.core.paths import data_dir as default_data_dir
from tui.server import routes_chat, routes_files, routes_jobs
from tui.server.auth import check_bearer, load_or_create_key
from tui.server.blobs import BlobStore
from tui.server.context import CTX, ServerContext, ctx, respond
from tui.server.engines import TrainingEngine, base_models, get_engine
from tui.server.engines.lora.registry import BaseRegistry
from tui.server.engines.lora.serving import Serving
from tui.server.errors import ApiError, server_error
from tui.server.faults import parse_faults
from tui.server.jobs import JobRunner
from tui.server.pace import Pace
from tui.server.store import Store

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DB_FILE = "server.sqlite3"
REQUEST_ID = web.RequestKey("request_id", str)
MAX_BODY = 64 * 1024**2
"""Largest JSON body accepted (multipart uploads stream to disk and are not bound by it)."""


def server_data_dir(data_dir: Path | None = None) -> Path:
    """The server's folder: ``data_dir`` or ``tui.core.paths.data_dir()/"server"``."""
    return Path(data_dir) if data_dir is not None else default_data_dir() / "server"


@dataclass
class ServerConfig:
    """How to run a server: where its state lives, how fast jobs go, which faults to inject."""

    data_dir: Path
    """The server's folder (database, blobs, api-key)."""
    speed: str = "demo"
    """``demo``, ``max`` or a factor over demo speed."""
    faults: str = ""
    """A ``--faults`` spec such as ``drop=0.1,429=0.05,500=0.05,latency=50ms,seed=1``."""
    max_running: int = 4
    """Jobs trained at the same time; later ones wait in ``queued``."""
    base_models: list[str] = field(default_factory=list)
    """``--base-model NAME=SOURCE`` values; empty: ``[local_server.base_models]`` of
    config.toml, else the default real base (only with the train extra installed)."""


def open_context(config: ServerConfig) -> ServerContext:
    """Open the data dir (creating it), clear leftover temp files and load the base models."""
    folder = config.data_dir
    folder.mkdir(parents=True, exist_ok=True)
    blobs = BlobStore(folder)
    blobs.clear_tmp()
    store = Store(folder / DB_FILE)
    pace = Pace.parse(config.speed)
    registry, serving, engines, missing = real_engine(config, folder)
    return ServerContext(data_dir=folder, store=store, blobs=blobs,
                         runner=JobRunner(store, blobs, pace, max_running=config.max_running,
                                          engines=engines),
                         pace=pace, faults=parse_faults(config.faults),
                         api_key=load_or_create_key(folder), base_models=base_models(),
                         registry=registry, engines=engines, serving=serving,
                         train_extra_missing=missing)


def real_engine(config: ServerConfig, folder: Path) -> tuple[
        BaseRegistry, Serving | None, dict[str, TrainingEngine], str | None]:
    """The real bases, their serving and the engines; without the train extra: none of it (the
    stand-in alone, as before), and the reason why."""
    from tui.server.engines import lora
    from tui.server.engines.lora.sources import configured_specs

    engines: dict[str, TrainingEngine] = {"ngram": get_engine("ngram")}
    missing = lora.train_extra_missing()
    if missing is not None:
        if config.base_models:
            log.warning("ignoring --base-model: %s", missing)
        return BaseRegistry([], folder / "bases"), None, engines, missing
    from tui.server.engines.lora.engine import LoraEngine

    registry = BaseRegistry(configured_specs(config.base_models), folder / "bases")
    serving = Serving(registry)
    engines["lora"] = LoraEngine(registry, serving, folder)
    return registry, serving, engines, None


def _error_response(error: ApiError) -> web.Response:
    response = respond(error.body(), status=error.status)
    response.headers.update(error.headers)
    return response


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every failure as OpenAI's error body (unknown routes included)."""
    try:
        return await handler(request)
    except ApiError as error:
        return _error_response(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        message = (f"Invalid URL ({request.method} {request.path})"
                   if error.status in (404, 405) else error.reason)
        return _error_response(ApiError(error.status, message))
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return _error_response(server_error())


@web.middleware
async def faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Inject the configured latency, dropped connections, 429s and 500s."""
    plan = ctx(request).faults
    if not plan.active or not request.path.startswith("/v1/"):
        return await handler(request)
    if plan.latency_s:
        await asyncio.sleep(plan.latency_s)
    fault = plan.draw()
    if fault == "drop":
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=499)
    if fault == "429":
        wait_ms = plan.retry_after_ms
        raise ApiError(429, "Rate limit reached for requests (injected by the local server's "
                       "--faults).", type="requests", code="rate_limit_exceeded",
                       headers={"retry-after-ms": str(wait_ms),
                                "retry-after": str(max(1, round(wait_ms / 1000)))})
    if fault == "500":
        raise server_error()
    return await handler(request)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require the bearer key on every /v1 route."""
    if request.path.startswith("/v1/") or request.path == "/v1":
        check_bearer(request, ctx(request).api_key)
    return await handler(request)


async def _stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("x-request-id", request.get(REQUEST_ID) or _request_id())
    response.headers.setdefault("openai-organization", "org-sqltune-local")
    response.headers.setdefault("openai-version", "2020-10-01")


def _request_id() -> str:
    return "req_" + secrets.token_hex(16)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an ``x-request-id`` (stamped on the response before headers go out)."""
    request[REQUEST_ID] = _request_id()
    return await handler(request)


def build_app(config: ServerConfig) -> web.Application:
    """The server as an aiohttp application; jobs start with the app and snapshot when it stops."""
    server = open_context(config)
    app = web.Application(client_max_size=MAX_BODY, middlewares=[
        request_id_middleware, errors_middleware, faults_middleware, auth_middleware])
    app[CTX] = server
    routes_files.add_routes(app)
    routes_jobs.add_routes(app)
    routes_chat.add_routes(app)
    app.on_response_prepare.append(_stamp_headers)

    async def start_jobs(_app: web.Application) -> None:
        server.runner.start()

    async def stop_jobs(_app: web.Application) -> None:
        await server.runner.stop()
        server.store.close()

    app.on_startup.append(start_jobs)
    app.on_cleanup.append(stop_jobs)
    return app
