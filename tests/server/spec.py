"""OpenAPI component schemas of the shared openai-openapi spec, rewritten per its README."""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

SPEC_ENV = "SQLTUNE_OPENAPI_SPEC"
"""Environment variable naming another openapi.yaml (a missing path hides the spec)."""
SPEC = (Path(os.environ[SPEC_ENV]) if os.environ.get(SPEC_ENV)
        else Path(__file__).resolve().parents[3] / "shared" / "openai-openapi" / "openapi.yaml")
MISSING = (None if SPEC.is_file() else
           f"needs the OpenAI spec {SPEC} (../shared/openai-openapi, or {SPEC_ENV}=PATH) "
           "to check responses against; absent here")
"""Why spec-checking tests are skipped (at collection, see conftest), or None with the spec."""
CHECKED = ("FineTuningJob", "FineTuningJobEvent", "FineTuningJobCheckpoint", "OpenAIFile",
           "Upload", "UploadPart", "Model", "CreateChatCompletionResponse",
           "CreateChatCompletionStreamResponse", "ErrorResponse", "DeleteFileResponse",
           "DeleteModelResponse", "ListFilesResponse", "ListPaginatedFineTuningJobsResponse",
           "ListFineTuningJobEventsResponse", "ListFineTuningJobCheckpointsResponse",
           "ListModelsResponse")


def _rewrite(node: Any) -> Any:
    """README quirks: 3.0 ``nullable``, boolean exclusive bounds, optional means nullable."""
    if isinstance(node, list):
        return [_rewrite(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _rewrite(value) for key, value in node.items()}
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(bound) is True:
            node[bound] = node.pop(plain, 0)
        elif node.get(bound) is False:
            del node[bound]
    members = node.get("allOf")
    if isinstance(members, list) and any(isinstance(m, dict) and m.get("nullable")
                                         for m in members):
        kept = [m for m in members if not (isinstance(m, dict) and m.get("nullable"))]
        rest = {key: value for key, value in node.items() if key != "allOf"}
        node = {**rest, "anyOf": [{"allOf": kept}, {"type": "null"}]}
    if node.pop("nullable", False):
        kind = node.get("type")
        if isinstance(kind, str):
            node["type"] = [kind, "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        elif isinstance(kind, list):
            node["type"] = [*kind, "null"]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    properties = node.get("properties")
    if isinstance(properties, dict):
        required = set(node.get("required", []))
        node["properties"] = {
            name: schema if name in required else {"anyOf": [schema, {"type": "null"}]}
            for name, schema in properties.items()}
    return node


@functools.lru_cache(maxsize=1)
def _components() -> dict[str, Any]:
    if MISSING is not None:  # a skip here would come after the test ran and "passed"
        pytest.fail(f"{MISSING}: mark the test @pytest.mark.openapi (or give it the recorder "
                    "fixture) so it is skipped at collection", pytrace=False)
    with SPEC.open("rb") as handle:
        spec = yaml.load(handle, Loader=yaml.CSafeLoader)
    schemas = {name: _rewrite(schema) for name, schema in spec["components"]["schemas"].items()}
    job = schemas["FineTuningJob"]["properties"]["status"]
    job["enum"] = [*job["enum"], "paused"]  # the pause endpoint returns it
    listing = schemas["ListFilesResponse"]["properties"]  # an empty page has no first/last id
    for key in ("first_id", "last_id"):
        listing[key] = {"anyOf": [listing[key], {"type": "null"}]}
    event = schemas["FineTuningJobEvent"]["properties"]
    event["data"] = {"anyOf": [copy.deepcopy(event["data"]), {"type": "null"}]}
    return {"components": {"schemas": schemas}}


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """A 2020-12 validator for one component schema (refs resolve within the spec)."""
    root = _components()
    return Draft202012Validator({**root, "$ref": f"#/components/schemas/{name}"})


def check(name: str, obj: Any) -> None:
    """Fail with every schema error of ``obj`` against component ``name``."""
    errors = sorted(validator(name).iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        detail = "\n".join(f"  {list(e.absolute_path)}: {e.message[:300]}" for e in errors[:10])
        raise AssertionError(f"{name} schema violations:\n{detail}\n"
                             f"object: {json.dumps(obj)[:1500]}")


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(f"^/v1{pattern}$"), name) for method, pattern, name in [
        ("POST", r"/files", "OpenAIFile"),
        ("GET", r"/files", "ListFilesResponse"),
        ("GET", r"/files/[^/]+", "OpenAIFile"),
        ("DELETE", r"/files/[^/]+", "DeleteFileResponse"),
        ("POST", r"/uploads", "Upload"),
        ("POST", r"/uploads/[^/]+/parts", "UploadPart"),
        ("POST", r"/uploads/[^/]+/(complete|cancel)", "Upload"),
        ("POST", r"/fine_tuning/jobs", "FineTuningJob"),
        ("GET", r"/fine_tuning/jobs", "ListPaginatedFineTuningJobsResponse"),
        ("GET", r"/fine_tuning/jobs/[^/]+", "FineTuningJob"),
        ("POST", r"/fine_tuning/jobs/[^/]+/(cancel|pause|resume)", "FineTuningJob"),
        ("GET", r"/fine_tuning/jobs/[^/]+/events", "ListFineTuningJobEventsResponse"),
        ("GET", r"/fine_tuning/jobs/[^/]+/checkpoints", "ListFineTuningJobCheckpointsResponse"),
        ("GET", r"/models", "ListModelsResponse"),
        ("GET", r"/models/[^/]+", "Model"),
        ("DELETE", r"/models/[^/]+", "DeleteModelResponse"),
        ("POST", r"/chat/completions", "CreateChatCompletionResponse"),
    ]]


def schema_for(method: str, path: str, status: int) -> str | None:
    """The component schema a JSON response to ``method path`` must match."""
    if status >= 400:
        return "ErrorResponse"
    for wanted, pattern, name in _ROUTES:
        if wanted == method and pattern.match(path):
            return name
    return None


def check_response(method: str, path: str, status: int, body: Any) -> str | None:
    """Validate one JSON response (lists item by item too); return the schema name used."""
    name = schema_for(method, path, status)
    if name is None:
        return None
    check(name, body)
    if name == "ListFilesResponse" and body.get("data"):
        for item in body["data"]:
            check("OpenAIFile", item)
    return name
