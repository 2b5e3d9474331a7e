"""Models and chat completions through the official SDK, streamed and plain."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.server.conftest import SCHEMA, Recorder
from tests.server.spec import check
from tui.core.data.prompts import DEFAULT_TEMPLATE, render_messages
from tui.server.inprocess import LocalServer

QUESTION: Any = render_messages(DEFAULT_TEMPLATE, SCHEMA, "How many singers are there?")


def test_base_model_answers_and_models_are_listed(client: openai.OpenAI,
                                                  recorder: Recorder) -> None:
    models = client.models.list()
    assert "sqltune-local-base" in [model.id for model in models]
    assert client.models.retrieve("sqltune-local-base").owned_by == "sqltune"
    answer = client.chat.completions.create(model="sqltune-local-base",
                                            messages=QUESTION)
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    assert (choice.message.content or "").strip().upper().startswith("SELECT")
    assert answer.usage is not None
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + \
        answer.usage.completion_tokens
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="ft:nope", messages=QUESTION)
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("ft:nope")
    with pytest.raises(openai.PermissionDeniedError):
        client.models.delete("sqltune-local-base")
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="sqltune-local-base", messages=[])
    assert bad.value.param == "messages"
    assert {"ListModelsResponse", "Model", "CreateChatCompletionResponse",
            "ErrorResponse"} <= recorder.validate()


def test_streaming_with_usage_matches_the_plain_answer(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="sqltune-local-base", messages=QUESTION)
    stream = client.chat.completions.create(model="sqltune-local-base", messages=QUESTION,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    assert all(c.usage is None for c in chunks[:-1])
    no_usage = list(client.chat.completions.create(model="sqltune-local-base",
                                                   messages=QUESTION, stream=True))
    assert all(c.choices for c in no_usage)


@pytest.mark.openapi
def test_stream_chunks_match_the_spec(server: LocalServer) -> None:
    body = {"model": "sqltune-local-base", "messages": QUESTION, "stream": True,
            "stream_options": {"include_usage": True}}
    response = httpx.post(f"{server.base_url}/chat/completions", json=body,
                           headers={"Authorization": f"Bearer {server.api_key}"})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-request-id"].startswith("req_")
    frames = [line[6:] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    for frame in frames[:-1]:
        check("CreateChatCompletionStreamResponse", json.loads(frame))


async def test_async_chat_and_max_tokens(aclient: openai.AsyncOpenAI) -> None:
    answer = await aclient.chat.completions.create(model="sqltune-local-base",
                                                   messages=QUESTION, max_tokens=1)
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens <= 1
    stream = await aclient.chat.completions.create(model="sqltune-local-base",
                                                   messages=QUESTION, stream=True)
    pieces = [chunk async for chunk in stream]
    assert pieces[-1].choices[0].finish_reason == "stop"
