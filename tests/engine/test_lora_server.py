"""The real bases over loopback with the official SDK: listing, chat, streaming, stop, usage,
validation by the model's own tokenizer, and the server without the train extra."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.server.conftest import chat_lines
from tui.core.provider.config import config_path
from tui.server.context import CTX, ServerContext
from tui.server.inprocess import LocalServer, start_local_server

pytest.importorskip("peft", reason="the train extra (torch, transformers, peft) is absent")

QUESTION = [{"role": "system", "content": "CREATE TABLE singer (id INTEGER, name TEXT);"},
            {"role": "user", "content": "What is the name of singer 3?"}]


def write_bases(table: dict[str, str]) -> None:
    """``[local_server.base_models]`` in this test's own config.toml."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["[local_server.base_models]", *(f"{json.dumps(k)} = {json.dumps(v)}"
                                            for k, v in table.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def server(tiny_model_dir: Path, tmp_path: Path) -> Iterator[LocalServer]:
    """A server whose config.toml registers the tiny model as ``tiny``."""
    write_bases({"tiny": str(tiny_model_dir)})
    with start_local_server(tmp_path / "server", speed="max") as running:
        yield running


@pytest.fixture
def client(server: LocalServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)


def context(server: LocalServer) -> ServerContext:
    assert server._app is not None
    return server._app[CTX]


def base_models(server: LocalServer) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/sqltune/base_models",
                         headers={"Authorization": f"Bearer {server.api_key}"})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def test_config_bases_are_listed_and_described(server: LocalServer, client: openai.OpenAI,
                                               tiny_model_dir: Path) -> None:
    assert [m.id for m in client.models.list().data] == ["sqltune-local-base", "tiny"]
    assert client.models.retrieve("tiny").id == "tiny"
    body = base_models(server)
    assert body["object"] == "list" and body["train_extra_missing"] is None
    assert body["data"] == [{"id": "tiny", "source": str(tiny_model_dir.resolve()),
                             "kind": "folder", "engine": "lora", "device": "cpu",
                             "context_length": 1024, "tokens_per_second": None,
                             "folder": str(tiny_model_dir.resolve())}]
    with pytest.raises(openai.PermissionDeniedError):
        client.models.delete("tiny")


def test_chat_usage_stop_and_length(server: LocalServer, client: openai.OpenAI) -> None:
    from tui.server.engines.lora.chat import prompt_ids

    tokenizer = context(server).registry.tokenizer("tiny")
    answer = client.chat.completions.create(model="tiny", messages=QUESTION,  # type: ignore[arg-type]
                                            max_tokens=12, temperature=0)
    text = answer.choices[0].message.content or ""
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == len(prompt_ids(tokenizer, QUESTION))
    assert answer.usage.completion_tokens == 12 and answer.choices[0].finish_reason == "length"
    stop = text[4:7]
    cut = client.chat.completions.create(model="tiny", messages=QUESTION,  # type: ignore[arg-type]
                                         max_tokens=12, temperature=0, stop=stop)
    assert cut.choices[0].message.content == text[:text.find(stop)]
    assert cut.choices[0].finish_reason == "stop"
    assert cut.usage is not None and cut.usage.completion_tokens < 12
    assert context(server).serving is not None
    assert context(server).serving.base_loads == {"tiny": 1}  # type: ignore[union-attr]


def test_streaming_is_token_by_token_with_usage(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="tiny", messages=QUESTION,  # type: ignore[arg-type]
                                           max_tokens=10, temperature=0)
    chunks = list(client.chat.completions.create(
        model="tiny", messages=QUESTION, max_tokens=10, temperature=0,  # type: ignore[arg-type]
        stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices
              and c.choices[0].delta.content]
    assert "".join(pieces) == whole.choices[0].message.content
    assert len(pieces) >= 4  # one chunk per decoded token, not one for the whole answer
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None and whole.usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens == 10
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_errors_are_openai_shaped(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(model="tiny", max_tokens=2, messages=[
            {"role": "user", "content": "singer " * 1500}])
    assert too_long.value.code == "context_length_exceeded"
    assert "maximum context length is 1024 tokens" in too_long.value.message
    with pytest.raises(openai.BadRequestError) as streamed:  # before the first token: JSON
        client.chat.completions.create(model="tiny", max_tokens=2, stream=True, messages=[
            {"role": "user", "content": "singer " * 1500}])
    assert streamed.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as stops:
        client.chat.completions.create(model="tiny", messages=QUESTION,  # type: ignore[arg-type]
                                       stop=["a", "b", "c", "d", "e"])
    assert stops.value.param == "stop"


def test_the_stand_in_honours_stop_too(client: openai.OpenAI) -> None:
    full = client.chat.completions.create(model="sqltune-local-base",
                                          messages=QUESTION)  # type: ignore[arg-type]
    text = full.choices[0].message.content or ""
    assert " " in text
    cut = client.chat.completions.create(model="sqltune-local-base", stop=[" "],
                                         messages=QUESTION)  # type: ignore[arg-type]
    assert cut.choices[0].message.content == text.split(" ")[0]
    assert cut.choices[0].finish_reason == "stop"
    assert cut.usage is not None and full.usage is not None
    assert 0 < cut.usage.completion_tokens < full.usage.completion_tokens


def wait_status(client: openai.OpenAI, job_id: str, leave: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status != leave:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} stayed {leave}")


def test_a_job_on_a_real_base_counts_with_its_tokenizer(server: LocalServer,
                                                        client: openai.OpenAI) -> None:
    from tui.core.data.prompts import DEFAULT_TEMPLATE, render_messages
    from tui.server.engines.lora.chat import count_tokens

    data = chat_lines([(f"How many singers are older than {age}?",
                        f"SELECT count(*) FROM singer WHERE age > {age}") for age in range(12)])
    file_id = client.files.create(file=("t.jsonl", data), purpose="fine-tune").id
    with pytest.raises(openai.BadRequestError) as bad:
        client.fine_tuning.jobs.create(model="tiny", training_file=file_id,
                                       hyperparameters={"n_epochs": 0})
    assert bad.value.param == "hyperparameters.n_epochs"
    job = client.fine_tuning.jobs.create(model="tiny", training_file=file_id,
                                         hyperparameters={"n_epochs": 1})
    job = wait_status(client, job.id, "validating_files")
    client.fine_tuning.jobs.cancel(job.id)
    record = context(server).store.get_job(job.id)
    assert record is not None
    assert (record.private["engine"], record.private["base_model"]) == ("lora", "tiny")
    tokenizer = context(server).registry.tokenizer("tiny")
    rows = [json.loads(line)["messages"] for line in data.decode().splitlines()]
    assert record.private["tokens_per_epoch"] == sum(count_tokens(tokenizer, m) for m in rows)
    # an example over the model's 1024-token context fails validation, naming its line
    long = render_messages(DEFAULT_TEMPLATE, "CREATE TABLE t (" + "c INTEGER, " * 400 + "x)",
                           "How many rows?", "SELECT count(*) FROM t")
    lines = data.decode().splitlines()
    lines[6] = json.dumps({"messages": long})
    long_id = client.files.create(file=("long.jsonl", "\n".join(lines).encode()),
                                  purpose="fine-tune").id
    failed = wait_status(client, client.fine_tuning.jobs.create(
        model="tiny", training_file=long_id).id, "validating_files")
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "invalid_training_file"
    assert "Example 7: the example has" in failed.error.message
    assert "over the maximum of 1,024 tokens per example" in failed.error.message


def test_without_the_train_extra_the_server_is_the_stand_in_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path) -> None:
    from tui.server.engines import lora

    reason = "Real fine-tuning (the lora engine) needs torch, which is not installed: pip ..."
    monkeypatch.setattr(lora, "train_extra_missing", lambda: reason)
    write_bases({"tiny": str(tiny_model_dir)})
    with start_local_server(tmp_path / "server", speed="max") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)
        assert [m.id for m in client.models.list().data] == ["sqltune-local-base"]
        assert base_models(server) == {"object": "list", "data": [],
                                       "train_extra_missing": reason}
        assert sorted(context(server).engines) == ["ngram"]
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="tiny", messages=QUESTION)  # type: ignore[arg-type]
        assert client.chat.completions.create(model="sqltune-local-base",
                                              messages=QUESTION).choices  # type: ignore[arg-type]


def test_the_default_base_offline_fails_clearly(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SQLTUNE_NO_DEFAULT_BASE")
    with start_local_server(tmp_path / "server", speed="max") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)
        assert "qwen2.5-coder-0.5b-instruct" in [m.id for m in client.models.list().data]
        entry = base_models(server)["data"][0]
        if entry["folder"] is not None:
            pytest.skip("Qwen2.5-Coder-0.5B-Instruct is in this machine's Hugging Face cache")
        with pytest.raises(openai.BadRequestError) as offline:
            client.chat.completions.create(model="qwen2.5-coder-0.5b-instruct",
                                           messages=QUESTION)  # type: ignore[arg-type]
        assert offline.value.code == "model_not_available"
        assert "--base-model NAME=FILE" in offline.value.message
        assert "HF_HUB_OFFLINE" in offline.value.message
        data = chat_lines([(f"Question {n}?", f"SELECT {n}") for n in range(10)])
        file_id = client.files.create(file=("t.jsonl", data), purpose="fine-tune").id
        job = client.fine_tuning.jobs.create(model="qwen2.5-coder-0.5b-instruct",
                                             training_file=file_id)
        failed = wait_status(client, job.id, "validating_files")
        assert failed.status == "failed" and failed.error is not None
        assert "--base-model NAME=FILE" in failed.error.message


def test_a_client_leaving_mid_stream_frees_the_base(server: LocalServer,
                                                    client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="tiny", messages=QUESTION,  # type: ignore[arg-type]
                                            max_tokens=1000, temperature=0, stream=True)
    for count, _chunk in enumerate(stream):
        if count == 3:
            break
    stream.close()  # the generation thread stops at its next token and releases the base
    answer = client.chat.completions.create(model="tiny", messages=QUESTION,  # type: ignore[arg-type]
                                            max_tokens=3, temperature=0)
    assert answer.usage is not None and answer.usage.completion_tokens == 3
    serving = context(server).serving
    assert serving is not None
    assert serving.decoded["tiny"] < 500  # far from the 1000 asked: the first one stopped


def test_the_tokenizer_is_loaded_once_for_token_counts_and_serving(
        server: LocalServer, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoTokenizer

    loads: list[str] = []
    original = AutoTokenizer.from_pretrained

    def counted(source: Any, *args: Any, **kwargs: Any) -> Any:
        loads.append(str(source))
        return original(source, *args, **kwargs)

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", counted)
    data = chat_lines([(f"How many singers are older than {age}?",
                        f"SELECT count(*) FROM singer WHERE age > {age}") for age in range(12)])
    file_id = client.files.create(file=("t.jsonl", data), purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(model="tiny", training_file=file_id,
                                         hyperparameters={"n_epochs": 1})
    job = wait_status(client, job.id, "validating_files")  # counted with the base's tokenizer
    client.fine_tuning.jobs.cancel(job.id)
    for _ in range(2):  # served with it, base loaded once
        answer = client.chat.completions.create(model="tiny", messages=QUESTION,  # type: ignore[arg-type]
                                                max_tokens=2)
        assert answer.usage is not None and answer.usage.completion_tokens == 2
    registry = context(server).registry
    assert len(loads) == 1
    assert registry.tokenizer_loads == {"tiny": 1}
    serving = context(server).serving
    assert serving is not None and serving.base("tiny").tokenizer is registry.tokenizer("tiny")
