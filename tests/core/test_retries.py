"""One retry policy: a one-shot provider call is retried by the openai SDK alone (its backoff,
the provider's retry-after), and no code path retries on top of it. A real loopback server
scripts the 429s and 5xx; the requests it receives are counted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.chat_files import write_singer_jsonl
from tests.scripted_server import CHAT_REPLY, Reply, ScriptedServer, failure, scripted
from tui.core.data.datasets import load_dataset
from tui.core.evaluation.evaluate import EVAL_RETRIES, EvaluationError, model_predictor
from tui.core.finetune.files import FilesError, FileService
from tui.core.finetune.follower import EventFollower, PollPolicy
from tui.core.finetune.jobs import JobsError, JobService
from tui.core.inference.ask import InferenceError, ask_for_sql
from tui.core.inference.playground import (
    ModelChoice,
    PlaygroundError,
    endpoint_client,
    provider_models,
)
from tui.core.paths import demo_dir
from tui.core.provider.config import ProviderProfile
from tui.core.provider.providers import SDK_RETRIES, ResolvedProvider, make_async_client

__all__ = ["scripted"]  # the fixture, used by name

MODEL = "gpt-4.1-mini-2025-04-14"
MESSAGES = [{"role": "user", "content": "How many books are there?"}]
Call = Callable[[openai.AsyncOpenAI, Path], Awaitable[Any]]


def _client(server: ScriptedServer) -> openai.AsyncOpenAI:
    """The app's own client for a provider at the scripted server (make_async_client)."""
    url = server.base_url
    return make_async_client(ResolvedProvider(
        profile=ProviderProfile(name="scripted", kind="compatible", base_url=url),
        base_url=url, api_key="sk-scripted-retries-test", source="flag"))


async def test_a_one_shot_call_waits_as_the_provider_asks(scripted: ScriptedServer) -> None:
    scripted.play(failure(429, retry_after_ms="700"), failure(503))
    async with _client(scripted) as client:
        answer = await ask_for_sql(client, MODEL, MESSAGES)
    assert answer.sql == "SELECT count(*) FROM book"
    assert [seen.retry_count for seen in scripted.seen] == ["0", "1", "2"]
    after_429, after_503 = scripted.gaps()
    # The 429's retry-after-ms (0.7 s), where the SDK's own first backoff is 0.375-0.5 s;
    # the 503 asked nothing: the SDK's second backoff, 1 s less up to 25 % jitter.
    assert after_429 >= 0.7
    assert after_503 >= 0.75
    assert answer.latency_s >= after_429 + after_503  # the waits are part of the call


async def test_retry_after_in_seconds(scripted: ScriptedServer) -> None:
    scripted.play(failure(429, retry_after="1"))
    async with _client(scripted) as client:
        await ask_for_sql(client, MODEL, MESSAGES)
    assert len(scripted.seen) == 2 and scripted.gaps()[0] >= 1.0


async def _chat(client: openai.AsyncOpenAI, tmp_path: Path) -> Any:
    return await ask_for_sql(client, MODEL, MESSAGES)


async def _list_files(client: openai.AsyncOpenAI, tmp_path: Path) -> Any:
    return await FileService(client).list()


async def _upload(client: openai.AsyncOpenAI, tmp_path: Path) -> Any:
    return await FileService(client).upload(write_singer_jsonl(tmp_path / "t.jsonl", 20))


async def _list_jobs(client: openai.AsyncOpenAI, tmp_path: Path) -> Any:
    return await JobService(client).list()


async def _retrieve_job(client: openai.AsyncOpenAI, tmp_path: Path) -> Any:
    return await JobService(client).retrieve("ftjob-scripted")


async def _models(client: openai.AsyncOpenAI, tmp_path: Path) -> Any:
    return await provider_models(client, JobService(client))


CALLS: dict[str, tuple[Call, type[Exception]]] = {
    "chat": (_chat, InferenceError),
    "files.list": (_list_files, FilesError),
    "files.upload": (_upload, FilesError),
    "jobs.list": (_list_jobs, JobsError),
    "jobs.retrieve": (_retrieve_job, JobsError),
    "playground.models": (_models, PlaygroundError),
}


@pytest.mark.parametrize("status", [429, 500, 503])
@pytest.mark.parametrize("name", list(CALLS))
async def test_one_shot_calls_make_exactly_the_sdks_attempts(
        scripted: ScriptedServer, tmp_path: Path, name: str, status: int) -> None:
    call, error = CALLS[name]
    scripted.play(then=failure(status, retry_after_ms="1"))
    async with _client(scripted) as client:
        with pytest.raises(error) as caught:
            await call(client, tmp_path)
    # The first attempt and the SDK's retries, each once: nothing retries on top.
    assert [seen.retry_count for seen in scripted.seen] == [
        str(n) for n in range(SDK_RETRIES + 1)]
    assert f"HTTP {status}" in str(caught.value)


async def test_an_exhausted_quota_is_fatal_after_the_sdks_attempts(
        scripted: ScriptedServer) -> None:
    quota = Reply(429, body={"error": {
        "message": "You exceeded your current quota, please check your plan and billing "
                   "details.", "type": "insufficient_quota", "param": None,
        "code": "insufficient_quota"}})
    scripted.play(then=quota)
    async with _client(scripted) as client:
        with pytest.raises(InferenceError) as caught:
            await ask_for_sql(client, MODEL, MESSAGES)
    assert caught.value.kind == "quota" and caught.value.fatal
    assert len(scripted.seen) == SDK_RETRIES + 1


async def test_another_endpoint_gets_the_same_policy(scripted: ScriptedServer) -> None:
    scripted.play(then=failure(502, retry_after_ms="1"))
    client = endpoint_client(ModelChoice("some-model", "endpoint", base_url=scripted.base_url))
    async with client:
        with pytest.raises(InferenceError) as caught:
            await ask_for_sql(client, "some-model", MESSAGES)
    assert caught.value.kind == "server" and len(scripted.seen) == SDK_RETRIES + 1


async def test_an_evaluation_question_gets_the_sdks_batch_budget(
        scripted: ScriptedServer) -> None:
    dev = load_dataset(demo_dir(), "dev")
    example = dev.examples[0]
    scripted.play(then=failure(429, retry_after_ms="1"))
    async with _client(scripted) as client:
        predict = model_predictor(client, MODEL, db_path_for=lambda e: dev.db_path(e.db_id))
        prediction = await predict(example)
        assert client.max_retries == SDK_RETRIES  # the caller's client is left as it was
    assert prediction.error_type == "rate_limited" and prediction.sql == ""
    assert [seen.retry_count for seen in scripted.seen] == [
        str(n) for n in range(EVAL_RETRIES + 1)]
    scripted.play(failure(500, retry_after_ms="1"), then=Reply(200, body=CHAT_REPLY))
    async with _client(scripted) as client:
        predict = model_predictor(client, MODEL, db_path_for=lambda e: dev.db_path(e.db_id))
        prediction = await predict(example)
    assert prediction.sql == "SELECT count(*) FROM book" and len(scripted.seen) == 2
    scripted.play(then=failure(401))
    async with _client(scripted) as client:
        predict = model_predictor(client, MODEL, db_path_for=lambda e: dev.db_path(e.db_id))
        with pytest.raises(EvaluationError, match="refused the API key"):
            await predict(example)
    assert len(scripted.seen) == 1  # a 401 is never retried


async def test_the_follower_alone_retries_its_requests(scripted: ScriptedServer) -> None:
    events = Reply(200, body={"object": "list", "has_more": False, "data": [{
        "id": "ftevent-1", "object": "fine_tuning.job.event", "created_at": 1,
        "level": "info", "message": "Step 1/10: training loss=1.00", "type": "message"}]})
    scripted.play(failure(500), failure(429, retry_after_ms="1"), then=events)
    quick = PollPolicy(backoff_base=0.01, backoff_max=0.02)
    async with _client(scripted) as client:
        follower = EventFollower(client, "ftjob-scripted", policy=quick)
        fresh = await follower.poll_events()
    assert [event.id for event in fresh] == ["ftevent-1"]
    # Three requests, each a first attempt for the SDK: the follower's loop is the only one.
    assert [seen.retry_count for seen in scripted.seen] == ["0", "0", "0"]
    assert follower.stats.failures == 2 and follower.state.status == "live"
