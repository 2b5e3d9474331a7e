"""Contract details through the official SDK: only documented fields under strict validation,
400 (never 409) for state conflicts, checkpoint retention and names, billable tokens as the
budget counts them, ``auto`` resolved, validation-file failures, fine-tuned model deletion."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import openai
import pydantic
import pytest

from tests.server.conftest import PAIRS, SCHEMA, Recorder, chat_lines
from tests.server.helpers import all_events, await_for, wait_for, wait_for_event
from tests.server.spec import check, validator
from tui.core.budget.fit import fit_to_budget, resolve_epochs
from tui.core.budget.tokens import TokenCounter, encoding_for_model, get_encoding
from tui.core.data.prompts import DEFAULT_TEMPLATE, render_messages
from tui.server.context import CTX
from tui.server.inprocess import LocalServer, start_local_server
from tui.server.pace import Pace
from tui.server.store import Store

BASE = "sqltune-local-base"
QUESTION: Any = render_messages(DEFAULT_TEMPLATE, SCHEMA, "How many singers are there?")


def undocumented(obj: Any, listing: str | None = None, path: str = "$") -> list[str]:
    """Fields the SDK's models do not declare (``extra`` is ``allow`` in the SDK, so strict
    validation alone lets them through). A page's envelope may carry what the spec's list
    schema ``listing`` documents (``object``, ``first_id``, ``last_id``)."""
    found: list[str] = []
    if isinstance(obj, pydantic.BaseModel):
        allowed: set[str] = set()
        if listing is not None and path == "$":
            schema = validator(listing).schema
            allowed = set(schema["components"]["schemas"][listing]["properties"])
        found += [f"{type(obj).__name__}{path}.{key}" for key in (obj.model_extra or {})
                  if key not in allowed]
        for name in type(obj).model_fields:
            found += undocumented(getattr(obj, name), None, f"{path}.{name}")
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            found += undocumented(item, None, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for key, item in obj.items():
            found += undocumented(item, None, f"{path}.{key}")
    return found


def test_strict_sdk_sees_only_documented_fields(server: LocalServer, train_bytes: bytes,
                                               valid_bytes: bytes, recorder: Recorder) -> None:
    seen: list[tuple[Any, str | None]] = []
    http = openai.DefaultHttpxClient(event_hooks={"response": [recorder.sync_hook]})
    with openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0,
                       http_client=http, _strict_response_validation=True) as sdk:
        train = sdk.files.create(file=("t.jsonl", train_bytes), purpose="fine-tune")
        valid = sdk.files.create(file=("v.jsonl", valid_bytes), purpose="fine-tune")
        created = sdk.fine_tuning.jobs.create(model=BASE, training_file=train.id,
                                              validation_file=valid.id, suffix="strict",
                                              hyperparameters={"n_epochs": 1})
        job = wait_for(sdk, created.id)
        assert job.status == "succeeded" and job.fine_tuned_model
        upload = sdk.uploads.create(bytes=3, filename="u.jsonl", mime_type="text/jsonl",
                                    purpose="fine-tune")
        part = sdk.uploads.parts.create(upload.id, data=b"{}\n")
        stream = sdk.chat.completions.create(model=job.fine_tuned_model, messages=QUESTION,
                                             stream=True, stream_options={"include_usage": True})
        seen += [(train, None), (created, None), (job, None), (upload, None), (part, None),
                 (sdk.uploads.complete(upload.id, part_ids=[part.id]), None),
                 (sdk.files.list(), "ListFilesResponse"),
                 (sdk.files.retrieve(valid.id), None),
                 (sdk.fine_tuning.jobs.list(), "ListPaginatedFineTuningJobsResponse"),
                 (sdk.fine_tuning.jobs.list_events(job.id), "ListFineTuningJobEventsResponse"),
                 (sdk.fine_tuning.jobs.checkpoints.list(job.id),
                  "ListFineTuningJobCheckpointsResponse"),
                 (sdk.models.list(), "ListModelsResponse"),
                 (sdk.models.retrieve(job.fine_tuned_model), None),
                 (sdk.chat.completions.create(model=job.fine_tuned_model,
                                              messages=QUESTION), None),
                 *((chunk, None) for chunk in stream),
                 (sdk.models.delete(job.fine_tuned_model), None),
                 (sdk.files.delete(valid.id), None)]
    problems = [field for obj, listing in seen for field in undocumented(obj, listing)]
    assert problems == []
    assert len(seen) > 20
    assert {"Upload", "UploadPart", "DeleteModelResponse", "DeleteFileResponse",
            "ListModelsResponse", "FineTuningJob"} <= recorder.validate()  # the spec too


@pytest.mark.openapi
async def test_async_strict_sdk_sees_only_documented_fields(server: LocalServer,
                                                           train_bytes: bytes) -> None:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key,
                                  max_retries=0, _strict_response_validation=True) as sdk:
        train = await sdk.files.create(file=("t.jsonl", train_bytes), purpose="fine-tune")
        job = await await_for(sdk, (await sdk.fine_tuning.jobs.create(
            model=BASE, training_file=train.id, hyperparameters={"n_epochs": 1})).id)
        assert job.status == "succeeded" and job.fine_tuned_model
        events = [event async for event in sdk.fine_tuning.jobs.list_events(job.id, limit=7)]
        stream = await sdk.chat.completions.create(
            model=job.fine_tuned_model, messages=QUESTION, stream=True,
            stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
        page = await sdk.fine_tuning.jobs.checkpoints.list(job.id)
    assert len(events) > 24 and chunks[-1].usage is not None
    assert [f for obj in (job, *events, *chunks) for f in undocumented(obj)] == []
    assert undocumented(page, "ListFineTuningJobCheckpointsResponse") == []


def _conflict(call: Any, *args: Any, **kwargs: Any) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as error:
        call(*args, **kwargs)
    assert error.value.status_code == 400
    return error.value


def test_state_conflicts_are_400_never_409(client: openai.OpenAI, recorder: Recorder,
                                           train_bytes: bytes) -> None:
    jobs = client.fine_tuning.jobs
    train = client.files.create(file=("t.jsonl", train_bytes), purpose="fine-tune").id
    done = wait_for(client, jobs.create(model=BASE, training_file=train,
                                        hyperparameters={"n_epochs": 1}).id)
    short = client.files.create(file=("s.jsonl", chat_lines(PAIRS[:3])), purpose="fine-tune")
    failed = wait_for(client, jobs.create(model=BASE, training_file=short.id).id)
    assert (done.status, failed.status) == ("succeeded", "failed")
    for job in (done, failed):
        for action in (jobs.pause, jobs.resume, jobs.cancel):
            error = _conflict(action, job.id)
            assert error.param == "fine_tuning_job_id" and job.status in error.message
    cancelled = jobs.create(model=BASE, training_file=train)
    assert jobs.cancel(cancelled.id).status == "cancelled"
    for action in (jobs.pause, jobs.resume, jobs.cancel):
        _conflict(action, cancelled.id)
    upload = client.uploads.create(bytes=3, filename="u.jsonl", mime_type="text/jsonl",
                                   purpose="fine-tune")
    part = client.uploads.parts.create(upload.id, data=b"{}\n")
    client.uploads.complete(upload.id, part_ids=[part.id])
    _conflict(client.uploads.complete, upload.id, part_ids=[part.id])
    _conflict(client.uploads.cancel, upload.id)
    _conflict(client.uploads.parts.create, upload.id, data=b"x")
    assert recorder.statuses.count(400) == 12
    recorder.validate()  # also: an x-request-id on every response, and no 409 anywhere


def test_one_checkpoint_per_epoch_and_the_last_three_kept(client: openai.OpenAI,
                                                          server: LocalServer,
                                                          train_bytes: bytes) -> None:
    train = client.files.create(file=("t.jsonl", train_bytes), purpose="fine-tune").id
    job = wait_for(client, client.fine_tuning.jobs.create(
        model=BASE, training_file=train, suffix="keep", hyperparameters={"n_epochs": 5}).id)
    assert job.fine_tuned_model == f"ft:{BASE}:sqltune:keep:{job.id[-8:]}"
    made = [e.message for e in all_events(client, job.id) if e.message.startswith("Checkpoint")]
    assert made == [f"Checkpoint created at step {24 * k}" for k in range(1, 6)]
    listing = client.fine_tuning.jobs.checkpoints.list(job.id)
    kept = listing.data
    assert [c.step_number for c in kept] == [120, 96, 72] and not listing.has_more
    assert [c.fine_tuned_model_checkpoint for c in kept] == [
        f"{job.fine_tuned_model}:ckpt-step-{n}" for n in (120, 96, 72)]
    assert all(c.metrics.step == c.step_number and c.metrics.train_loss is not None
               and c.metrics.valid_loss is None for c in kept)  # no validation file
    first = client.fine_tuning.jobs.checkpoints.list(job.id, limit=1)
    second = client.fine_tuning.jobs.checkpoints.list(job.id, limit=1, after=first.data[0].id)
    assert first.has_more and second.has_more and second.data[0].step_number == 96
    blobs = server.data_dir / "blobs" / "checkpoints"
    assert sorted(p.name for p in blobs.iterdir()) == sorted(c.id for c in kept)
    with pytest.raises(openai.NotFoundError):  # a pruned checkpoint is gone for chat too
        client.chat.completions.create(model=f"{job.fine_tuned_model}:ckpt-step-48",
                                       messages=QUESTION)
    answer = client.chat.completions.create(model=kept[-1].fine_tuned_model_checkpoint,
                                            messages=QUESTION)
    assert "count(*)" in (answer.choices[0].message.content or "").lower()


@pytest.mark.parametrize("model", [BASE, "gpt-4.1-mini-2025-04-14"])
def test_auto_resolves_and_trained_tokens_are_the_budget_s_billable_tokens(
        client: openai.OpenAI, train_bytes: bytes, model: str) -> None:
    train = client.files.create(file=("t.jsonl", train_bytes), purpose="fine-tune").id
    created = client.fine_tuning.jobs.create(model=model, training_file=train)
    assert created.hyperparameters.model_dump() == {
        "n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}
    assert created.trained_tokens is None
    job = wait_for(client, created.id)
    assert job.status == "succeeded", job.error
    hp = job.hyperparameters
    assert hp.n_epochs == resolve_epochs("auto", len(PAIRS)) == 4  # 100 // 24 example-passes
    assert (hp.batch_size, hp.learning_rate_multiplier) == (1, 1.8)
    assert job.method is not None and job.method.type == "supervised"
    assert job.method.supervised is not None
    echoed = job.method.supervised.hyperparameters
    assert echoed is not None and echoed.model_dump() == hp.model_dump()
    counter = TokenCounter(get_encoding(encoding_for_model(model).name))
    counts = [counter.count(json.loads(line)["messages"])
              for line in train_bytes.decode().splitlines()]
    budget = fit_to_budget(counts, model=model, epochs="auto", token_limit=10**12)
    assert budget.kept == len(PAIRS) and budget.epochs == hp.n_epochs
    assert job.trained_tokens == budget.trained_tokens == 4 * sum(counts)


def test_bad_validation_file_fails_naming_the_example(client: openai.OpenAI,
                                                      train_bytes: bytes) -> None:
    lines = chat_lines(PAIRS[:3]).decode().splitlines()
    broken = json.loads(lines[1])
    broken["messages"][2]["content"] = 42
    lines[1] = json.dumps(broken)
    valid = client.files.create(file=("v.jsonl", ("\n".join(lines) + "\n").encode()),
                                purpose="fine-tune").id
    train = client.files.create(file=("t.jsonl", train_bytes), purpose="fine-tune").id
    job = wait_for(client, client.fine_tuning.jobs.create(model=BASE, training_file=train,
                                                          validation_file=valid).id)
    assert job.status == "failed" and job.error is not None
    assert (job.error.code, job.error.param) == ("invalid_validation_file", "validation_file")
    assert valid in job.error.message and "Example 2, message 3" in job.error.message
    assert job.trained_tokens is None and job.fine_tuned_model is None


def test_fine_tuned_models_are_listed_retrieved_and_deleted(client: openai.OpenAI,
                                                            server: LocalServer,
                                                            train_bytes: bytes) -> None:
    train = client.files.create(file=("t.jsonl", train_bytes), purpose="fine-tune").id
    job = wait_for(client, client.fine_tuning.jobs.create(
        model=BASE, training_file=train, hyperparameters={"n_epochs": 1}).id)
    name = job.fine_tuned_model
    assert name is not None
    listed = client.models.list().data
    assert [m.id for m in listed] == [BASE, name]
    model = client.models.retrieve(name)
    assert (model.id, model.owned_by, model.object) == (name, job.organization_id, "model")
    assert client.chat.completions.create(model=name, messages=QUESTION).choices
    blob = server.data_dir / "blobs" / "models" / job.id
    assert blob.is_file()
    deleted = client.models.delete(name)
    assert (deleted.id, deleted.deleted, deleted.object) == (name, True, "model")
    assert not blob.exists()
    assert [m.id for m in client.models.list().data] == [BASE]
    for call in (lambda: client.models.retrieve(name), lambda: client.models.delete(name),
                 lambda: client.chat.completions.create(model=name, messages=QUESTION)):
        with pytest.raises(openai.NotFoundError) as missing:
            call()
        assert missing.value.code == "model_not_found"


@pytest.mark.openapi
def test_event_pages_serialised_in_place_equal_the_decoded_ones(tmp_path: Path) -> None:
    store = Store(tmp_path / "server.sqlite3")
    store.add_event("job", 'Quote " backslash \\ ünïcode ✓\nnew line\ttab')
    store.add_event("job", "Step 1/2: training loss=0.84", type="metrics",
                    data={"step": 1, "train_loss": 0.84, "valid_loss": None})
    store.add_event("other", "not this job's")
    store.add_event("job", "Careful", level="warn")
    try:
        first = store.list_events("job", after=None, limit=2)
        text = store.list_events_json("job", after=None, limit=2)
        assert json.loads(text) == first.body() and first.has_more
        check("ListFineTuningJobEventsResponse", json.loads(text))
        after = first.data[-1]["id"]
        rest = json.loads(store.list_events_json("job", after=after, limit=2))
        assert rest == store.list_events("job", after=after, limit=2).body()
        assert [e["message"][:5] for e in rest["data"]] == ["Quote"] and not rest["has_more"]
    finally:
        store.close()


class _OneSecondSteps(Pace):
    """No validating/queued wait, and a whole second per step: time to pause the last one."""

    def phase_delay(self) -> float:
        return 0.0

    def step_delay(self, total_steps: int) -> float:
        return 1.0


def test_a_pause_during_the_last_step_holds_the_job_until_resumed(tmp_path: Path) -> None:
    with start_local_server(tmp_path, speed="max") as server, openai.OpenAI(
            base_url=server.base_url, api_key=server.api_key, max_retries=0) as client:
        runner = server._app[CTX].runner  # type: ignore[index]
        runner.pace = _OneSecondSteps(1.0)
        train = client.files.create(file=("t.jsonl", chat_lines(PAIRS[:10])),
                                    purpose="fine-tune").id
        job = client.fine_tuning.jobs.create(model=BASE, training_file=train, hyperparameters={
            "n_epochs": 1, "batch_size": 10})
        wait_for_event(client, job.id, "Step 1/1:")
        assert client.fine_tuning.jobs.pause(job.id).status == "paused"
        time.sleep(1.5)  # the step's second is over: the driver is at the finish line
        held = client.fine_tuning.jobs.retrieve(job.id)
        assert held.status == "paused" and held.fine_tuned_model is None
        assert client.models.list().data[-1].id == BASE
        assert client.fine_tuning.jobs.resume(job.id).status == "running"
        done = wait_for(client, job.id)
        assert done.status == "succeeded" and done.fine_tuned_model
        messages = [e.message for e in all_events(client, job.id)]
        assert not any("restarted" in m for m in messages)
        assert messages.index("Fine-tuning job resumed") < messages.index(
            f"New fine-tuned model created: {done.fine_tuned_model}")


def test_state_is_sqlite_in_wal_mode_beside_a_blob_folder(server: LocalServer,
                                                          client: openai.OpenAI) -> None:
    created = client.files.create(file=("t.jsonl", b"{}\n"), purpose="fine-tune")
    database = server.data_dir / "server.sqlite3"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT id FROM files").fetchall() == [(created.id,)]
    assert (server.data_dir / "blobs" / "files" / created.id).read_bytes() == b"{}\n"
