"""What every route shares: the store, blobs, job runner, models and the request helpers."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tui.server.blobs import BlobStore
from tui.server.engines import BASE_MODEL, ChatModel, TrainingEngine
from tui.server.engines.lora.registry import BaseRegistry
from tui.server.engines.lora.serving import Serving
from tui.server.errors import ApiError, bad_request
from tui.server.faults import FaultPlan
from tui.server.jobs import JobRunner
from tui.server.pace import Pace
from tui.server.store import Store

ORG_ID = "org-sqltune-local"
"""The organization every object belongs to."""
ORG_SLUG = "sqltune"
"""The organization part of fine-tuned model names."""
BASE_CREATED = 1_767_225_600
"""``created`` of the base models (2026-01-01)."""
OPENAI_ALIASES = ("gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14",
                  "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "gpt-3.5-turbo-0125")
"""OpenAI model names the server also accepts; they train and answer with its base model."""


@dataclass
class ServerContext:
    """The state one running server shares between its routes."""

    data_dir: Path
    """The server's folder (database, blobs, api-key)."""
    store: Store
    """SQLite state."""
    blobs: BlobStore
    """Blob folder."""
    runner: JobRunner
    """Fine-tuning job runner."""
    pace: Pace
    """Job speed."""
    faults: FaultPlan
    """Injected faults."""
    api_key: str
    """The bearer key clients must send (never logged)."""
    base_models: dict[str, ChatModel]
    """Stand-in base model id -> model."""
    registry: BaseRegistry
    """The real (open-weight) base models, by name; empty without the train extra."""
    engines: dict[str, TrainingEngine]
    """Training engines by name: ``ngram`` always, ``lora`` with the train extra."""
    serving: Serving | None = None
    """The in-memory real bases answering chats (None without the train extra)."""
    train_extra_missing: str | None = None
    """Why the real engine is unavailable (and the pip command), None when it is available."""
    loaded: OrderedDict[str, ChatModel] = field(default_factory=OrderedDict)
    """Recently loaded fine-tuned and checkpoint models."""

    def base_for(self, model: str) -> str | None:
        """The base model id a requested base name means, or None when it is not one."""
        if model in self.base_models or model in self.registry:
            return model
        if model in OPENAI_ALIASES and BASE_MODEL in self.base_models:
            return BASE_MODEL
        return None


CTX = web.AppKey("sqltune_ctx", ServerContext)


def ctx(request: web.Request) -> ServerContext:
    """The server context of a request."""
    return request.app[CTX]


def respond(obj: Any, status: int = 200) -> web.Response:
    """A JSON response."""
    return web.json_response(obj, status=status, dumps=lambda value: json.dumps(value))


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body, or a 400 as OpenAI words it."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request("We could not parse the JSON body of your request. (HINT: This likely "
                          "means you aren't using your HTTP library correctly.)") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def query_limit(request: web.Request, default: int, maximum: int) -> int:
    """The ``limit`` query parameter, checked against 1..maximum."""
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise bad_request(f"Invalid 'limit': expected an integer, got '{raw}'.",
                          param="limit") from None
    if not 1 <= limit <= maximum:
        raise ApiError(400, f"Invalid 'limit': must be between 1 and {maximum}, got {limit}.",
                       param="limit", code="integer_out_of_range")
    return limit
