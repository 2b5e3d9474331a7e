"""Fine-tuning job endpoints: create, list, retrieve, cancel, pause, resume, events, checkpoints."""

from __future__ import annotations

import re
import secrets
from typing import Any

from aiohttp import web

from tui.server.context import (
    ORG_ID,
    ORG_SLUG,
    ServerContext,
    ctx,
    query_limit,
    read_json,
    respond,
)
from tui.server.engines import HyperparameterError
from tui.server.engines.lora import engine_unavailable
from tui.server.errors import bad_request
from tui.server.store import new_id, now

ENGINE = "ngram"
"""The engine of jobs on the stand-in base and the OpenAI aliases (real bases use ``lora``)."""
HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier")
_METADATA_KEY = re.compile(r"^metadata\[(.+)\]$")


def _requested_hyperparameters(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The requested hyperparameters and the param path they came from."""
    method = body.get("method")
    legacy = body.get("hyperparameters")
    if method is not None:
        if not isinstance(method, dict):
            raise bad_request("'method' must be an object.", param="method")
        kind = method.get("type")
        if kind != "supervised":
            raise bad_request(f"method.type '{kind}' is not supported by this server; use "
                              "'supervised'.", param="method.type")
        supervised = method.get("supervised") or {}
        if not isinstance(supervised, dict):
            raise bad_request("'method.supervised' must be an object.",
                              param="method.supervised")
        hp = supervised.get("hyperparameters")
        if hp is not None and legacy is not None:
            raise bad_request("Specify hyperparameters in 'method' or in the deprecated "
                              "'hyperparameters', not both.", param="hyperparameters")
        if hp is not None:
            return _hp_dict(hp, "method.supervised.hyperparameters"), \
                "method.supervised.hyperparameters"
    if legacy is not None:
        return _hp_dict(legacy, "hyperparameters"), "hyperparameters"
    return {}, "hyperparameters"


def _hp_dict(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"'{param}' must be an object.", param=param)
    unknown = sorted(set(value) - set(HYPERPARAMETERS))
    if unknown:
        raise bad_request(f"Unknown hyperparameter '{unknown[0]}'.", param=f"{param}.{unknown[0]}")
    return {key: val for key, val in value.items() if val is not None}


def _check_file(server: ServerContext, file_id: Any, param: str) -> str:
    if not isinstance(file_id, str) or not file_id:
        raise bad_request(f"Missing required parameter: '{param}'.", param=param)
    found = server.store.get_file(file_id)
    if found is None:
        raise bad_request(f"invalid {param}: {file_id}", param=param, code="invalid_file_id")
    if found["purpose"] != "fine-tune":
        raise bad_request(f"File {file_id} has purpose '{found['purpose']}', but {param} must "
                          "be a file uploaded with purpose 'fine-tune'.", param=param)
    return file_id


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 16 or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
            for k, v in value.items()):
        raise bad_request("metadata must be at most 16 string pairs (keys up to 64 characters, "
                          "values up to 512).", param="metadata")
    return dict(value)


async def create_job(request: web.Request) -> web.Response:
    """POST /v1/fine_tuning/jobs"""
    server = ctx(request)
    body = await read_json(request)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("Missing required parameter: 'model'.", param="model")
    if server.base_for(model) is None:
        available = [*server.base_models, *server.registry.names()]
        raise bad_request(f"Model {model} is not available for fine-tuning or does not exist. "
                          f"Available: {', '.join(sorted(available))}.", param="model",
                          code="model_not_available")
    engine_name = "lora" if model in server.registry else ENGINE
    engine = server.engines.get(engine_name)
    if engine is None:
        raise bad_request(f"Model {model} cannot be fine-tuned here: "
                          f"{engine_unavailable(engine_name, server.train_extra_missing)}.",
                          param="model", code="model_not_available")
    training_file = _check_file(server, body.get("training_file"), "training_file")
    validation_file = body.get("validation_file")
    if validation_file is not None:
        _check_file(server, validation_file, "validation_file")
    requested, hp_param = _requested_hyperparameters(body)
    try:  # ranges are checked now; "auto" is resolved once the file's size is known
        engine.resolve_hyperparameters(10, requested)
    except HyperparameterError as error:
        raise bad_request(str(error), param=error.param.replace("hyperparameters", hp_param, 1),
                          code="invalid_hyperparameters") from None
    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64
                               or ":" in suffix):
        raise bad_request("suffix must be a string of at most 64 characters without ':'.",
                          param="suffix")
    seed = body.get("seed")
    if seed is None:
        seed = secrets.randbelow(2**31)
    elif not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= 2**31 - 1:
        raise bad_request("seed must be an integer from 0 to 2147483647.", param="seed")
    shown = {key: requested.get(key, "auto") for key in HYPERPARAMETERS}
    job_id = new_id("ftjob-")
    doc: dict[str, Any] = {
        "id": job_id, "object": "fine_tuning.job", "model": model, "created_at": now(),
        "finished_at": None, "fine_tuned_model": None, "organization_id": ORG_ID,
        "result_files": [], "status": "validating_files", "validation_file": validation_file,
        "training_file": training_file, "hyperparameters": shown, "trained_tokens": None,
        "error": None, "seed": seed, "estimated_finish": None,
        "integrations": None, "metadata": _metadata(body.get("metadata")),
        "method": {"type": "supervised", "supervised": {"hyperparameters": dict(shown)}}}
    private: dict[str, Any] = {
        "engine": engine_name, "requested_hyperparameters": requested,
        "model_name": f"ft:{model}:{ORG_SLUG}:{suffix or ''}:{job_id[-8:]}"}
    if engine_name == "lora":
        spec = server.registry.spec(model)
        private.update(base_model=model, base_source=spec.source, base_kind=spec.kind)
    job = server.store.add_job(doc, private)
    server.store.add_event(job_id, f"Created fine-tuning job: {job_id}")
    server.store.add_event(job_id, f"Validating training file: {training_file}" + (
        f" and validation file: {validation_file}" if validation_file else ""))
    server.runner.submit(job)
    return respond(job.doc)


async def list_jobs(request: web.Request) -> web.Response:
    """GET /v1/fine_tuning/jobs?after=&limit=&metadata[k]=v"""
    wanted: dict[str, str] = {}
    for key, value in request.query.items():
        match = _METADATA_KEY.match(key)
        if match:
            wanted[match.group(1)] = value
    page = ctx(request).store.list_jobs(after=request.query.get("after") or None,
                                        limit=query_limit(request, 20, 100),
                                        metadata=wanted or None,
                                        null_metadata=request.query.get("metadata") == "null")
    return respond(page.body())


def _job_id(request: web.Request) -> str:
    return request.match_info["job_id"]


async def retrieve_job(request: web.Request) -> web.Response:
    """GET /v1/fine_tuning/jobs/{job_id}"""
    return respond(ctx(request).runner.job(_job_id(request)).doc)


async def cancel_job(request: web.Request) -> web.Response:
    """POST /v1/fine_tuning/jobs/{job_id}/cancel"""
    return respond(ctx(request).runner.cancel(_job_id(request)).doc)


async def pause_job(request: web.Request) -> web.Response:
    """POST /v1/fine_tuning/jobs/{job_id}/pause"""
    return respond(ctx(request).runner.pause(_job_id(request)).doc)


async def resume_job(request: web.Request) -> web.Response:
    """POST /v1/fine_tuning/jobs/{job_id}/resume"""
    return respond(ctx(request).runner.resume(_job_id(request)).doc)


async def list_events(request: web.Request) -> web.Response:
    """GET /v1/fine_tuning/jobs/{job_id}/events?after=&limit= (newest first)"""
    server = ctx(request)
    job = server.runner.job(_job_id(request))
    body = server.store.list_events_json(job.id, after=request.query.get("after") or None,
                                         limit=query_limit(request, 20, 100))
    return web.Response(text=body, content_type="application/json")


async def list_checkpoints(request: web.Request) -> web.Response:
    """GET /v1/fine_tuning/jobs/{job_id}/checkpoints?after=&limit= (newest first)"""
    server = ctx(request)
    job = server.runner.job(_job_id(request))
    page = server.store.list_checkpoints(job.id, after=request.query.get("after") or None,
                                         limit=query_limit(request, 10, 100))
    return respond(page.body(with_ids=True))


def add_routes(app: web.Application) -> None:
    """Register the fine-tuning routes under /v1."""
    base = "/v1/fine_tuning/jobs"
    app.router.add_post(base, create_job)
    app.router.add_get(base, list_jobs)
    app.router.add_get(base + "/{job_id}", retrieve_job)
    app.router.add_post(base + "/{job_id}/cancel", cancel_job)
    app.router.add_post(base + "/{job_id}/pause", pause_job)
    app.router.add_post(base + "/{job_id}/resume", resume_job)
    app.router.add_get(base + "/{job_id}/events", list_events)
    app.router.add_get(base + "/{job_id}/checkpoints", list_checkpoints)
