"""Asking a chat model for SQL: extraction from replies, and real calls to the local server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import openai
import pytest
from aiohttp import web

from tests.local_servers import module_server
from tui.core.budget.pricing import inference_cost
from tui.core.data.prompts import DEFAULT_TEMPLATE, messages_for
from tui.core.data.schema import SchemaCache
from tui.core.inference.ask import InferenceError, ask_for_sql, extract_sql
from tui.core.paths import demo_dir
from tui.server.inprocess import LocalServer

BASE = "gpt-4.1-mini-2025-04-14"


@pytest.mark.parametrize(("reply", "sql"), [
    ("SELECT name FROM singer", "SELECT name FROM singer"),
    ("SELECT name FROM singer;", "SELECT name FROM singer"),
    ("```sql\nSELECT count(*)\nFROM singer;\n```\nThis counts the singers.",
     "SELECT count(*)\nFROM singer"),
    ("Here you go:\n```\nSELECT 1\n```", "SELECT 1"),
    ("```text\nnot this\n```\n```sqlite\nSELECT 2\n```", "SELECT 2"),
    ("Sure! The query is SELECT a FROM t WHERE b = 'x; y'; DROP TABLE t;",
     "SELECT a FROM t WHERE b = 'x; y'"),
    ("<think>maybe SELECT wrong</think>SELECT right FROM t", "SELECT right FROM t"),
    ("SELECT a\nFROM t\n\nWHERE a > 1\n\nThis query filters rows.",
     "SELECT a\nFROM t\nWHERE a > 1"),
    ("`SELECT x FROM y`", "SELECT x FROM y"),
    ("WITH c AS (SELECT 1 AS v) SELECT v FROM c", "WITH c AS (SELECT 1 AS v) SELECT v FROM c"),
    ("SELECT \"a;b\" FROM t -- trailing; comment\n; SELECT 2",
     "SELECT \"a;b\" FROM t -- trailing; comment"),
    ("I cannot answer that.", "I cannot answer that."),
    ("", ""),
])
def test_extract_sql(reply: str, sql: str) -> None:
    assert extract_sql(reply) == sql


server = module_server("server")
flaky = module_server("flaky", faults="429=0.5,seed=11,retry_after_ms=5")
always_429 = module_server("busy", faults="429=1,retry_after_ms=30")


def _messages(question: str = "How many books are there?") -> list[dict[str, str]]:
    db = demo_dir() / "database" / "bookshop" / "bookshop.sqlite"
    return messages_for(DEFAULT_TEMPLATE, SchemaCache(), db, question)


def _client(server: LocalServer, *, key: str | None = None,
            retries: int = 0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key=key or server.api_key,
                              max_retries=retries)


async def test_answer_has_sql_tokens_latency_and_cost(server: LocalServer) -> None:
    async with _client(server) as client:
        answer = await ask_for_sql(client, BASE, _messages())
    assert answer.sql and answer.sql == extract_sql(answer.raw_text)
    assert answer.sql.upper().startswith(("SELECT", "WITH"))
    assert answer.prompt_tokens > 100 and answer.completion_tokens > 0
    assert answer.latency_s > 0
    assert answer.cost_usd == pytest.approx(
        inference_cost(BASE, answer.prompt_tokens, answer.completion_tokens))
    assert answer.cost_usd is not None and answer.cost_usd > 0
    assert answer.finish_reason == "stop" and answer.model == BASE


async def test_local_base_model_is_free(server: LocalServer) -> None:
    async with _client(server) as client:
        answer = await ask_for_sql(client, "sqltune-local-base", _messages())
    assert answer.prompt_tokens > 0 and answer.cost_usd == 0.0  # local models cost nothing


async def test_fatal_and_non_fatal_errors(server: LocalServer) -> None:
    async with _client(server) as client:
        with pytest.raises(InferenceError) as missing:
            await ask_for_sql(client, "ft:gpt-4.1-mini-2025-04-14:nobody::nothing", _messages())
    assert missing.value.kind == "not_found" and missing.value.fatal
    async with _client(server, key="sk-wrong") as client:
        with pytest.raises(InferenceError) as denied:
            await ask_for_sql(client, BASE, _messages())
    assert denied.value.kind == "auth" and denied.value.fatal
    async with _client(server) as client:
        with pytest.raises(InferenceError) as bad:
            await ask_for_sql(client, BASE, _messages(), temperature=7.0)
    assert bad.value.kind == "bad_request" and not bad.value.fatal
    assert "temperature" in bad.value.message


def _counted(server: LocalServer, retries: int, attempts: list[int]) -> openai.AsyncOpenAI:
    """A client whose every request on the wire is noted (its x-stainless-retry-count)."""
    async def note(request: httpx2.Request) -> None:
        attempts.append(int(request.headers["x-stainless-retry-count"]))

    return openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key,
                              max_retries=retries,
                              http_client=httpx2.AsyncClient(event_hooks={"request": [note]}))


async def test_429s_wait_as_the_server_asks_then_succeed(flaky: LocalServer) -> None:
    attempts: list[int] = []
    before = flaky.faults_injected["429"]
    async with _counted(flaky, 20, attempts) as client:  # the SDK alone retries the 429s
        answers = [await ask_for_sql(client, BASE, _messages(f"Question {n}?"))
                   for n in range(8)]
    injected = flaky.faults_injected["429"] - before
    assert injected > 0 and all(answer.sql for answer in answers)
    # One retry per injected 429, each the SDK's (its retry count), none of ours on top; the
    # wait the server's retry-after-ms asks is tested in test_retries.py (a scripted server).
    assert len(attempts) == 8 + injected
    assert attempts.count(0) == 8 and sum(1 for n in attempts if n > 0) == injected


async def test_429_gives_up_after_the_retries(always_429: LocalServer) -> None:
    attempts: list[int] = []
    before = always_429.faults_injected["429"]
    async with _counted(always_429, 2, attempts) as client:
        with pytest.raises(InferenceError) as caught:
            await ask_for_sql(client, BASE, _messages())
    assert caught.value.kind == "rate_limited" and not caught.value.fatal
    # The first attempt and the SDK's 2 retries; no attempt of ours on top.
    assert attempts == [0, 1, 2]
    assert always_429.faults_injected["429"] - before == 3



async def test_exhausted_quota_is_fatal_at_once(
        quota_server: tuple[str, list[str]]) -> None:
    url, received = quota_server
    async with openai.AsyncOpenAI(base_url=url, api_key="sk-test", max_retries=0) as client:
        with pytest.raises(InferenceError) as caught:
            await ask_for_sql(client, BASE, _messages())
    assert caught.value.kind == "quota" and caught.value.fatal
    # One request: no wait, no retry of ours.
    assert "quota" in caught.value.message and received == ["POST"]


@pytest.fixture
async def quota_server() -> AsyncIterator[tuple[str, list[str]]]:
    """A stand-in for OpenAI when the account's quota is used up (not reproducible here):
    every request gets OpenAI's documented 429 insufficient_quota body. Yields the base URL
    and the method of each request received."""
    seen: list[str] = []

    async def refuse(request: web.Request) -> web.Response:
        seen.append(request.method)
        return web.json_response({"error": {
            "message": "You exceeded your current quota, please check your plan and billing "
                       "details.", "type": "insufficient_quota", "param": None,
            "code": "insufficient_quota"}}, status=429)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        await runner.cleanup()
