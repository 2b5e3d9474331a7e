"""Models and chat completions (plain and streamed as server-sent events)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp import web

from tui.server.context import BASE_CREATED, ORG_SLUG, ServerContext, ctx, read_json, respond
from tui.server.engines import ChatModel, Completion, EngineError, get_engine
from tui.server.errors import ApiError, bad_request
from tui.server.store import new_id, now

LOADED_MODELS = 8
"""Fine-tuned models kept loaded in memory."""
FINGERPRINT = "fp_sqltune_local"
_PIECES = re.compile(r"\S+\s*|\s+")


def _model_not_found(model: str) -> ApiError:
    return ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                    param="model", code="model_not_found")


def _tuned_blob(server: ServerContext, model: str) -> tuple[str, str, str] | None:
    """(blob kind, blob name, engine) of a fine-tuned or checkpoint model."""
    row = server.store.get_model(model)
    if row is not None:
        return "models", row["blob"], row["engine"]
    found = server.store.checkpoint_by_model(model)
    if found is not None:
        return "checkpoints", found[0], found[1]
    return None


async def resolve_model(server: ServerContext, model: str) -> ChatModel:
    """The model a chat request names: a base model, a fine-tuned model or a checkpoint."""
    base = server.base_for(model)
    if base is not None:
        return server.base_models[base]
    if model in server.loaded:
        server.loaded.move_to_end(model)
        return server.loaded[model]
    where = _tuned_blob(server, model)
    if where is None:
        raise _model_not_found(model)
    kind, name, engine = where
    try:
        state = await asyncio.to_thread(server.blobs.read, kind, name)
        loaded = await asyncio.to_thread(get_engine(engine).load, state)
    except (OSError, EngineError) as error:
        raise ApiError(500, f"The model `{model}` could not be loaded: {error}",
                       type="server_error") from None
    server.loaded[model] = loaded
    while len(server.loaded) > LOADED_MODELS:
        server.loaded.popitem(last=False)
    return loaded


def _model_object(model_id: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


async def list_models(request: web.Request) -> web.Response:
    """GET /v1/models: base models, then fine-tuned models."""
    server = ctx(request)
    data = [_model_object(name, BASE_CREATED, ORG_SLUG) for name in server.base_models]
    data += [_model_object(row["id"], row["created"], row["owned_by"])
             for row in server.store.list_models()]
    return respond({"object": "list", "data": data})


async def retrieve_model(request: web.Request) -> web.Response:
    """GET /v1/models/{model}"""
    server = ctx(request)
    model = request.match_info["model"]
    if server.base_for(model) is not None:
        return respond(_model_object(model, BASE_CREATED, ORG_SLUG))
    row = server.store.get_model(model)
    if row is None:
        raise _model_not_found(model)
    return respond(_model_object(row["id"], row["created"], row["owned_by"]))


async def delete_model(request: web.Request) -> web.Response:
    """DELETE /v1/models/{model}: fine-tuned models only."""
    server = ctx(request)
    model = request.match_info["model"]
    if server.base_for(model) is not None:
        raise ApiError(403, f"You are not allowed to delete the base model {model}.",
                       param="model")
    row = server.store.get_model(model)
    if row is None:
        raise _model_not_found(model)
    server.store.delete_model(model)
    server.blobs.delete("models", row["blob"])
    server.loaded.pop(model, None)
    return respond({"id": model, "object": "model", "deleted": True})


def _options(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]], int | None, float]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("Missing required parameter: 'model'.", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or \
            not all(isinstance(m, dict) and "role" in m for m in messages):
        raise bad_request("'messages' must be a non-empty array of message objects.",
                          param="messages")
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                              or limit < 1):
        raise bad_request("max_tokens must be a positive integer.", param="max_tokens")
    temperature = body.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        raise bad_request("temperature must be a number from 0 to 2.", param="temperature")
    if body.get("n", 1) not in (1, None):
        raise bad_request("This server returns one choice per request; 'n' must be 1.",
                          param="n")
    return model, messages, limit, float(temperature)


def _usage(answer: Completion) -> dict[str, Any]:
    return {"prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/completions (``stream`` and ``stream_options.include_usage`` supported)."""
    server = ctx(request)
    body = await read_json(request)
    model, messages, limit, temperature = _options(body)
    chat = await resolve_model(server, model)
    try:
        answer = await asyncio.to_thread(chat.complete, messages, max_tokens=limit,
                                         temperature=temperature)
    except EngineError as error:
        raise bad_request(str(error), param="messages") from None
    finish = "length" if limit is not None and answer.completion_tokens >= limit else "stop"
    head = {"id": new_id("chatcmpl-", 29), "created": now(), "model": model,
            "system_fingerprint": FINGERPRINT, "service_tier": "default"}
    if not body.get("stream"):
        return respond({**head, "object": "chat.completion", "choices": [{
            "index": 0, "finish_reason": finish, "logprobs": None,
            "message": {"role": "assistant", "content": answer.text, "refusal": None,
                        "annotations": []}}], "usage": _usage(answer)})
    options = body.get("stream_options") or {}
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    return await _stream(request, head, answer, finish, include_usage)


async def _stream(request: web.Request, head: dict[str, Any], answer: Completion, finish: str,
                  include_usage: bool) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)

    async def send(choices: list[dict[str, Any]], usage: Any = None) -> None:
        chunk = {**head, "object": "chat.completion.chunk", "choices": choices}
        if include_usage:
            chunk["usage"] = usage
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

    def choice(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}

    await send([choice({"role": "assistant", "content": "", "refusal": None})])
    for piece in _PIECES.findall(answer.text):
        await send([choice({"content": piece})])
    await send([choice({}, finish)])
    if include_usage:
        await send([], _usage(answer))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    """Register the models and chat routes under /v1."""
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model}", retrieve_model)
    app.router.add_delete("/v1/models/{model}", delete_model)
    app.router.add_post("/v1/chat/completions", chat_completions)
