"""Fine-tuning jobs through the official SDK: a whole job, controls, paging, validation errors."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import openai
import pytest

from tests.server.conftest import PAIRS, SCHEMA, Recorder, chat_lines
from tests.server.helpers import all_events, await_for, data, wait_for, wait_for_event
from tui.core.data.prompts import DEFAULT_TEMPLATE, render_messages
from tui.server.inprocess import LocalServer, start_local_server


def upload(client: openai.OpenAI, data: bytes, name: str = "train.jsonl") -> str:
    return client.files.create(file=(name, data), purpose="fine-tune").id


def test_whole_job_from_upload_to_chat_answer(client: openai.OpenAI, train_bytes: bytes,
                                              valid_bytes: bytes, recorder: Recorder) -> None:
    train, valid = upload(client, train_bytes), upload(client, valid_bytes, "valid.jsonl")
    created = client.fine_tuning.jobs.create(
        model="sqltune-local-base", training_file=train, validation_file=valid, suffix="sql",
        seed=7, metadata={"run": "e2e"},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}})
    assert created.status == "validating_files"
    assert created.hyperparameters.n_epochs == 2
    assert created.hyperparameters.batch_size == "auto"
    job = wait_for(client, created.id)
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model == f"ft:sqltune-local-base:sqltune:sql:{job.id[-8:]}"
    assert job.method is not None and job.method.supervised is not None
    hp = job.method.supervised.hyperparameters
    assert hp is not None
    assert (hp.n_epochs, hp.batch_size) == (2, 1) and isinstance(hp.learning_rate_multiplier,
                                                                 float)
    assert job.hyperparameters.n_epochs == 2 and job.finished_at and job.seed == 7
    assert job.metadata == {"run": "e2e"}
    events = all_events(client, job.id, page=7)
    messages = [event.message for event in events]
    assert messages[:4] == [f"Created fine-tuning job: {job.id}",
                            f"Validating training file: {train} and validation file: {valid}",
                            "Files validated, moving job to queued state",
                            "Fine-tuning job started"]
    assert messages[-1] == "The job has successfully completed"
    assert f"New fine-tuned model created: {job.fine_tuned_model}" in messages
    metrics = [event for event in events if event.type == "metrics"]
    total = data(metrics[0])["total_steps"]
    assert [data(event)["step"] for event in metrics] == list(range(1, total + 1))
    assert total == 2 * len(PAIRS)
    first = metrics[0]
    assert first.message.startswith(f"Step 1/{total}: training loss=")
    assert set(data(first)) >= {"step", "total_steps", "train_loss", "train_mean_token_accuracy",
                               "valid_loss", "valid_mean_token_accuracy", "full_valid_loss",
                               "full_valid_mean_token_accuracy"}
    assert data(first)["valid_loss"] is not None and data(first)["full_valid_loss"] is None
    assert data(metrics[-1])["full_valid_loss"] is not None  # epoch end
    assert "Checkpoint created at step 24" in messages
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [48, 24]
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{job.fine_tuned_model}:ckpt-step-48"
    assert checkpoints[0].metrics.full_valid_loss is not None
    tokens = job.trained_tokens
    assert tokens is not None and tokens > 2 * len(PAIRS) * 20
    # results file: the per-step CSV
    (results_id,) = job.result_files
    meta = client.files.retrieve(results_id)
    assert meta.purpose == "fine-tune-results"
    rows = list(csv.DictReader(io.StringIO(client.files.content(results_id).text)))
    assert [int(row["step"]) for row in rows] == list(range(1, total + 1))
    assert {"train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"} <= \
        set(rows[0])
    assert float(rows[0]["train_loss"]) == pytest.approx(data(first)["train_loss"], rel=1e-5)
    # the tuned model, and a checkpoint model, answer with SQL from the training data
    messages_in: Any = render_messages(DEFAULT_TEMPLATE, SCHEMA, "How many singers are there?")
    for name in (job.fine_tuned_model, checkpoints[1].fine_tuned_model_checkpoint):
        answer = client.chat.completions.create(model=name, messages=messages_in,
                                                temperature=0)
        assert "count(*)" in (answer.choices[0].message.content or "").lower()
        assert answer.usage and answer.usage.prompt_tokens > 0
    assert client.models.retrieve(job.fine_tuned_model).id == job.fine_tuned_model
    names = recorder.validate()
    assert {"FineTuningJob", "ListFineTuningJobEventsResponse", "OpenAIFile",
            "ListFineTuningJobCheckpointsResponse", "CreateChatCompletionResponse"} <= names


async def test_async_sdk_runs_a_job(aclient: openai.AsyncOpenAI, train_bytes: bytes) -> None:
    train = await aclient.files.create(file=("train.jsonl", train_bytes), purpose="fine-tune")
    created = await aclient.fine_tuning.jobs.create(
        model="sqltune-local-base", training_file=train.id,
        hyperparameters={"n_epochs": 1, "batch_size": 4})
    job = await await_for(aclient, created.id)
    assert job.status == "succeeded" and job.hyperparameters.batch_size == 4
    events = [event async for event in aclient.fine_tuning.jobs.list_events(job.id, limit=5)]
    steps = [data(event)["step"] for event in events if event.type == "metrics"]
    assert steps == list(range(6, 0, -1))  # newest first, 24 examples / batch 4
    jobs = [j.id async for j in aclient.fine_tuning.jobs.list(limit=1)]
    assert jobs == [job.id]
    models = await aclient.models.list()
    assert job.fine_tuned_model in [model.id for model in models.data]


def test_pause_resume_and_cancel(tmp_path, train_bytes: bytes) -> None:
    with start_local_server(tmp_path, speed="4") as server, openai.OpenAI(
            base_url=server.base_url, api_key=server.api_key, max_retries=0) as client:
        train = upload(client, train_bytes)
        job = client.fine_tuning.jobs.create(model="sqltune-local-base", training_file=train)
        with pytest.raises(openai.BadRequestError):  # not running yet
            client.fine_tuning.jobs.resume(job.id)
        wait_for_event(client, job.id, "Step 3/")
        paused = client.fine_tuning.jobs.pause(job.id)
        assert paused.status == "paused"
        wait_for_event(client, job.id, "Fine-tuning job paused")
        with pytest.raises(openai.BadRequestError) as conflict:
            client.fine_tuning.jobs.pause(job.id)
        assert conflict.value.status_code == 400
        resumed = client.fine_tuning.jobs.resume(job.id)
        assert resumed.status == "running"
        wait_for_event(client, job.id, "Step 8/")
        cancelled = client.fine_tuning.jobs.cancel(job.id)
        assert cancelled.status == "cancelled"
        with pytest.raises(openai.BadRequestError):
            client.fine_tuning.jobs.cancel(job.id)
        final = wait_for(client, job.id)
        assert final.status == "cancelled" and final.fine_tuned_model is None
        messages = [event.message for event in all_events(client, job.id)]
        assert messages.index("Fine-tuning job paused") < messages.index("Fine-tuning job resumed")
        assert "Fine-tuning job cancelled" in messages
        assert "The job has successfully completed" not in messages


def test_jobs_list_pages_and_filters_by_metadata(client: openai.OpenAI,
                                                 train_bytes: bytes) -> None:
    train = upload(client, train_bytes)
    ids = [client.fine_tuning.jobs.create(model="sqltune-local-base", training_file=train,
                                          metadata={"n": str(i % 2)}).id for i in range(5)]
    page = client.fine_tuning.jobs.list(limit=2)
    assert [job.id for job in page.data] == ids[::-1][:2] and page.has_more
    assert [job.id for job in client.fine_tuning.jobs.list(limit=2)] == ids[::-1]
    odd = client.fine_tuning.jobs.list(metadata={"n": "1"})
    assert [job.id for job in odd.data] == [ids[3], ids[1]]
    for job_id in ids:
        wait_for(client, job_id)


def test_event_paging_is_exact_across_many_events(client: openai.OpenAI,
                                                  train_bytes: bytes) -> None:
    train = upload(client, train_bytes)
    job = client.fine_tuning.jobs.create(model="sqltune-local-base", training_file=train,
                                         hyperparameters={"n_epochs": 5})
    job = wait_for(client, job.id)
    first = client.fine_tuning.jobs.list_events(job.id, limit=100)
    seen, cursor, pages = [], None, 0
    while True:
        page = client.fine_tuning.jobs.list_events(job.id, limit=9, after=cursor) \
            if cursor else client.fine_tuning.jobs.list_events(job.id, limit=9)
        seen += page.data
        pages += 1
        if not page.has_more:
            break
        cursor = page.data[-1].id
    assert len({event.id for event in seen}) == len(seen) > 120
    assert [event.id for event in seen[:100]] == [event.id for event in first.data]
    assert pages == -(-len(seen) // 9)
    created = [event.created_at for event in seen]
    assert created == sorted(created, reverse=True)


def test_bad_training_file_fails_the_job_naming_the_example(client: openai.OpenAI) -> None:
    lines = chat_lines(PAIRS[:12]).decode().splitlines()
    broken = json.loads(lines[2])
    broken["messages"][1]["role"] = "wizard"
    lines[2] = json.dumps(broken)
    train = upload(client, ("\n".join(lines) + "\n").encode())
    job = wait_for(client, client.fine_tuning.jobs.create(model="sqltune-local-base",
                                                          training_file=train).id)
    assert job.status == "failed" and job.error is not None
    assert job.error.code == "invalid_training_file" and job.error.param == "training_file"
    assert "Example 3" in job.error.message
    last = client.fine_tuning.jobs.list_events(job.id, limit=1).data[0]
    assert last.level == "error" and "Example 3" in last.message


def test_too_few_examples_is_invalid_n_examples(client: openai.OpenAI) -> None:
    train = upload(client, chat_lines(PAIRS[:4]))
    job = wait_for(client, client.fine_tuning.jobs.create(model="sqltune-local-base",
                                                          training_file=train).id)
    assert job.status == "failed" and job.error is not None
    assert job.error.code == "invalid_n_examples"
    assert "has 4 example(s), but must have at least 10" in job.error.message


def test_create_errors_are_400_with_params(client: openai.OpenAI, train_bytes: bytes) -> None:
    train = upload(client, train_bytes)
    cases = [
        ({"model": "no-such-model", "training_file": train}, "model"),
        ({"model": "sqltune-local-base", "training_file": "file-missing"}, "training_file"),
        ({"model": "sqltune-local-base", "training_file": train,
          "hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs"),
        ({"model": "sqltune-local-base", "training_file": train,
          "method": {"type": "supervised",
                     "supervised": {"hyperparameters": {"batch_size": 999}}}},
         "method.supervised.hyperparameters.batch_size"),
        ({"model": "sqltune-local-base", "training_file": train, "method": {"type": "dpo"}},
         "method.type"),
    ]
    for body, param in cases:
        with pytest.raises(openai.BadRequestError) as error:
            client.fine_tuning.jobs.create(**body)  # type: ignore[arg-type]
        assert error.value.param == param, body
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-nope")
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.list_events("ftjob-nope")


def test_openai_model_names_train_on_the_local_base(client: openai.OpenAI,
                                                    train_bytes: bytes) -> None:
    train = upload(client, train_bytes)
    job = client.fine_tuning.jobs.create(model="gpt-4.1-mini-2025-04-14", training_file=train,
                                         hyperparameters={"n_epochs": 1})
    job = wait_for(client, job.id)
    assert job.status == "succeeded"
    assert job.fine_tuned_model and job.fine_tuned_model.startswith(
        "ft:gpt-4.1-mini-2025-04-14:sqltune::")


def test_strict_response_validation(server: LocalServer, train_bytes: bytes) -> None:
    with openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0,
                       _strict_response_validation=True) as strict:
        train = upload(strict, train_bytes)
        job = wait_for(strict, strict.fine_tuning.jobs.create(
            model="sqltune-local-base", training_file=train,
            hyperparameters={"n_epochs": 1}).id)
        assert job.status == "succeeded"
        assert all_events(strict, job.id)
        assert strict.fine_tuning.jobs.checkpoints.list(job.id).data
        assert strict.models.list().data
        assert strict.files.list(purpose="fine-tune").data
        answer = strict.chat.completions.create(
            model=job.fine_tuned_model or "", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.role == "assistant"
