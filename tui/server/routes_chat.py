"""Models and chat completions (plain and streamed as server-sent events)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from tui.server.context import BASE_CREATED, ORG_SLUG, ServerContext, ctx, read_json, respond
from tui.server.engines import ChatModel, Completion, EngineError
from tui.server.engines.lora import engine_unavailable
from tui.server.engines.lora.serving import ContextLengthExceeded, ModelUnavailable
from tui.server.errors import ApiError, bad_request
from tui.server.store import new_id, now

LOADED_MODELS = 8
"""Fine-tuned models kept loaded in memory."""
FINGERPRINT = "fp_sqltune_local"
_PIECES = re.compile(r"\S+\s*|\s+")
MAX_STOPS = 4
"""OpenAI accepts up to four stop sequences."""


@runtime_checkable
class StreamingChatModel(Protocol):
    """A model that streams token by token and honours ``stop``/``top_p``/``seed`` itself (the
    real engine's); other models are streamed in words and cut at ``stop`` here."""

    def complete(self, messages: list[dict[str, Any]], *, max_tokens: int | None = None,
                 temperature: float = 0.0, top_p: float | None = None,
                 stop: list[str] | None = None, seed: int | None = None) -> Completion:
        """The whole answer with exact usage."""
        ...

    def stream(self, messages: list[dict[str, Any]], *, max_tokens: int | None = None,
               temperature: float = 0.0, top_p: float | None = None,
               stop: list[str] | None = None, seed: int | None = None) -> Any:
        """An iterator of text deltas whose ``completion`` is set once it is exhausted."""
        ...


@dataclass
class ChatOptions:
    """A chat request's parameters, checked."""

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    def sampling(self) -> dict[str, Any]:
        """Keyword arguments of a StreamingChatModel's ``complete``/``stream``."""
        return {"max_tokens": self.max_tokens, "temperature": self.temperature,
                "top_p": self.top_p, "stop": self.stop, "seed": self.seed}


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
    if model in server.registry and server.serving is not None:
        return server.serving.chat_model(model)
    base = server.base_for(model)
    if base is not None and base in server.base_models:
        return server.base_models[base]
    if model in server.loaded:
        server.loaded.move_to_end(model)
        return server.loaded[model]
    where = _tuned_blob(server, model)
    if where is None:
        raise _model_not_found(model)
    kind, name, engine_name = where
    engine = server.engines.get(engine_name)
    if engine is None:
        raise ApiError(400, f"The model `{model}` cannot be served here: "
                       f"{engine_unavailable(engine_name, server.train_extra_missing)}.",
                       param="model", code="model_not_available")
    try:
        state = await asyncio.to_thread(server.blobs.read, kind, name)
        loaded = await asyncio.to_thread(engine.load, state)
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
    data = [_model_object(name, BASE_CREATED, ORG_SLUG)
            for name in [*server.base_models, *server.registry.names()]]
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


def _options(body: dict[str, Any]) -> ChatOptions:
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
    top_p = body.get("top_p")
    if top_p is not None and (not isinstance(top_p, int | float) or isinstance(top_p, bool)
                              or not 0 <= top_p <= 1):
        raise bad_request("top_p must be a number from 0 to 1.", param="top_p")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise bad_request("seed must be an integer.", param="seed")
    if body.get("n", 1) not in (1, None):
        raise bad_request("This server returns one choice per request; 'n' must be 1.",
                          param="n")
    return ChatOptions(model=model, messages=messages, max_tokens=limit,
                       temperature=float(temperature),
                       top_p=float(top_p) if top_p is not None else None,
                       stop=_stop(body.get("stop")), seed=seed)


def _stop(value: Any) -> list[str]:
    """OpenAI's ``stop``: null, a string, or an array of up to four strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad_request("Invalid 'stop': expected a string or an array of strings.",
                          param="stop")
    if len(value) > MAX_STOPS:
        raise bad_request(f"Invalid 'stop': array too long. Expected an array with maximum "
                          f"length {MAX_STOPS}, but got an array with length {len(value)} "
                          "instead.", param="stop", code="array_above_max_length")
    return [item for item in value if item]


def cut_at_stop(answer: Completion, stop: list[str]) -> Completion:
    """A stand-in answer cut before its first stop string (usage recounted as the stand-in
    counts: o200k tokens of the text kept)."""
    found = [at for at in (answer.text.find(item) for item in stop) if at >= 0]
    if not found:
        return answer
    from tui.server.engines.usage import encoding

    text = answer.text[:min(found)]
    return replace(answer, text=text, completion_tokens=len(encoding().encode_ordinary(text)),
                   finish_reason="stop")


def _usage(answer: Completion) -> dict[str, Any]:
    return {"prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}


def _engine_error(error: EngineError) -> ApiError:
    """How a model's failure to answer reaches the client."""
    if isinstance(error, ContextLengthExceeded):
        return ApiError(400, str(error), param="messages", code="context_length_exceeded")
    if isinstance(error, ModelUnavailable):
        return ApiError(400, str(error), param="model", code="model_not_available")
    return bad_request(str(error), param="messages")


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/completions (``stream`` and ``stream_options.include_usage`` supported)."""
    server = ctx(request)
    body = await read_json(request)
    options = _options(body)
    chat = await resolve_model(server, options.model)
    head = {"id": new_id("chatcmpl-", 29), "created": now(), "model": options.model,
            "system_fingerprint": FINGERPRINT, "service_tier": "default"}
    stream_options = body.get("stream_options") or {}
    include_usage = bool(isinstance(stream_options, dict) and stream_options.get("include_usage"))
    if body.get("stream") and isinstance(chat, StreamingChatModel):
        return await _stream_live(request, head, chat, options, include_usage)
    try:
        if isinstance(chat, StreamingChatModel):
            answer = await asyncio.to_thread(chat.complete, options.messages,
                                             **options.sampling())
        else:
            answer = await asyncio.to_thread(chat.complete, options.messages,
                                             max_tokens=options.max_tokens,
                                             temperature=options.temperature)
            answer = cut_at_stop(answer, options.stop)
    except EngineError as error:
        raise _engine_error(error) from None
    if not body.get("stream"):
        return respond({**head, "object": "chat.completion", "choices": [{
            "index": 0, "finish_reason": answer.finish_reason, "logprobs": None,
            "message": {"role": "assistant", "content": answer.text, "refusal": None,
                        "annotations": []}}], "usage": _usage(answer)})
    sse = SseWriter(request, head, include_usage)
    await sse.open()
    for piece in _PIECES.findall(answer.text):
        await sse.delta(piece)
    await sse.close(answer)
    return sse.response


class SseWriter:
    """One streamed chat completion: the role chunk, content deltas, finish, usage, [DONE]."""

    def __init__(self, request: web.Request, head: dict[str, Any], include_usage: bool) -> None:
        self.request = request
        self.head = head
        self.include_usage = include_usage
        self.response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"})

    async def send(self, choices: list[dict[str, Any]], usage: Any = None) -> None:
        chunk = {**self.head, "object": "chat.completion.chunk", "choices": choices}
        if self.include_usage:
            chunk["usage"] = usage
        await self.response.write(f"data: {json.dumps(chunk)}\n\n".encode())

    @staticmethod
    def choice(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}

    async def open(self) -> None:
        await self.response.prepare(self.request)
        await self.send([self.choice({"role": "assistant", "content": "", "refusal": None})])

    async def delta(self, text: str) -> None:
        await self.send([self.choice({"content": text})])

    async def close(self, answer: Completion) -> None:
        await self.send([self.choice({}, answer.finish_reason)])
        if self.include_usage:
            await self.send([], _usage(answer))
        await self.response.write(b"data: [DONE]\n\n")
        await self.response.write_eof()


async def _stream_live(request: web.Request, head: dict[str, Any], chat: StreamingChatModel,
                       options: ChatOptions, include_usage: bool) -> web.StreamResponse:
    """Stream a real model's tokens as they are decoded (generation runs in a thread; an error
    before the first token is an ordinary JSON error, a client gone stops the decoding)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    gone = threading.Event()

    def put(kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed under us (server stopping)
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def produce() -> None:
        stream: Any = None
        try:
            stream = chat.stream(options.messages, **options.sampling())
            deltas: Iterator[str] = iter(stream)
            for delta in deltas:
                if gone.is_set():
                    return
                put("delta", delta)
            put("done", stream.completion)
        except Exception as error:
            put("error", error)
        finally:
            if stream is not None:
                stream.close()

    worker = asyncio.ensure_future(asyncio.to_thread(produce))
    sse = SseWriter(request, head, include_usage)
    try:
        kind, value = await queue.get()
        if kind == "error":
            raise _engine_error(value) if isinstance(value, EngineError) else value
        await sse.open()
        while kind == "delta":
            await sse.delta(value)
            kind, value = await queue.get()
        if kind == "error":  # headers are out: end the stream without a finish reason
            await sse.response.write_eof()
            return sse.response
        await sse.close(value)
        return sse.response
    finally:
        gone.set()
        with contextlib.suppress(Exception):
            await asyncio.shield(worker)


async def list_base_models(request: web.Request) -> web.Response:
    """GET /v1/sqltune/base_models: the real bases (sqltune's extension, not an OpenAI route)."""
    server = ctx(request)
    return respond(await asyncio.to_thread(base_models_body, server))


def base_models_body(server: ServerContext) -> dict[str, Any]:
    """The route's body: each real base with where it runs and what is known of it so far."""
    from tui.server.engines.lora import throughput

    data: list[dict[str, Any]] = []
    device = None
    if server.registry.names():
        from tui.server.engines.lora.registry import preferred_device

        device = preferred_device()
    for name in server.registry.names():
        spec = server.registry.spec(name)
        folder = server.registry.cached_folder(name)
        data.append({"id": name, "source": spec.source, "kind": spec.kind, "engine": "lora",
                     "device": device,
                     "context_length": server.registry.known_context_length(name),
                     "tokens_per_second": throughput.lookup(server.data_dir, name, device)
                     if device else None,
                     "folder": str(folder) if folder is not None else None})
    return {"object": "list", "data": data, "train_extra_missing": server.train_extra_missing}


def add_routes(app: web.Application) -> None:
    """Register the models and chat routes under /v1."""
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model}", retrieve_model)
    app.router.add_delete("/v1/models/{model}", delete_model)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/sqltune/base_models", list_base_models)
