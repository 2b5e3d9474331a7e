"""One description of a failed provider call, for files, jobs and the follower alike."""

from __future__ import annotations

import httpx2
import openai

from tui.core.provider.providers import register_secret
from tui.core.provider.retries import describe_error

REQUEST = httpx2.Request("GET", "http://127.0.0.1/v1/fine_tuning/jobs/ftjob-1")


def _status(code: int, message: str) -> openai.APIStatusError:
    body = {"message": message, "type": "invalid_request_error"}
    response = httpx2.Response(code, request=REQUEST, json={"error": body})
    return openai.APIStatusError(f"Error code: {code} - {body}", response=response, body=body)


def test_statuses_read_as_the_provider_said() -> None:
    assert describe_error(_status(400, "training_file is not a JSONL")) == (
        "HTTP 400: training_file is not a JSONL")
    assert describe_error(_status(429, "Rate limit reached")) == "HTTP 429: Rate limit reached"
    assert describe_error(_status(401, "bad key")) == (
        "the provider refused the API key (HTTP 401)")


def test_a_404_names_its_subject_when_given() -> None:
    missing = _status(404, "No such job: ftjob-1")
    assert describe_error(missing) == "HTTP 404: No such job: ftjob-1"
    assert describe_error(missing, subject="job ftjob-1") == (
        "job ftjob-1 was not found on this provider")


def test_transport_failures_and_keys() -> None:
    assert describe_error(openai.APITimeoutError(request=REQUEST)) == "the request timed out"
    assert describe_error(openai.APIConnectionError(request=REQUEST)) == (
        "could not reach the provider (connection failed)")
    key = "sk-proj-describe-error-test-key-1234"
    register_secret(key)
    text = describe_error(_status(400, f"the key {key} is odd"))
    assert key not in text and text.endswith("…1234 is odd")
