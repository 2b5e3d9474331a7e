"""Injected faults: each kind on the wire, and the official SDK's retries surviving them."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.server.conftest import PAIRS, SCHEMA, chat_lines
from tests.server.helpers import all_events, await_for, wait_for
from tests.server.spec import check
from tui.core.data.prompts import DEFAULT_TEMPLATE, render_messages
from tui.server.faults import FaultSpecError, parse_faults
from tui.server.inprocess import start_local_server


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the SDK's backoff (not its retry logic) so fault runs stay fast."""
    monkeypatch.setattr(openai._base_client, "INITIAL_RETRY_DELAY", 0.002)
    monkeypatch.setattr(openai._base_client, "MAX_RETRY_DELAY", 0.02)


def test_fault_spec_parsing() -> None:
    plan = parse_faults("drop=0.1, 429=0.05,500=0.05,latency=50ms,seed=3")
    assert (plan.drop, plan.rate_limit, plan.server_error, plan.seed) == (0.1, 0.05, 0.05, 3)
    assert plan.latency_s == pytest.approx(0.05)
    assert parse_faults("latency=0.2s").latency_s == pytest.approx(0.2)
    assert not parse_faults("").active
    for bad in ("drop", "drop=2", "teleport=0.1", "latency=fast", "drop=0.6,500=0.6"):
        with pytest.raises(FaultSpecError):
            parse_faults(bad)
    same = parse_faults("drop=0.3,429=0.3,seed=9")
    twin = parse_faults("drop=0.3,429=0.3,seed=9")
    assert [same.draw() for _ in range(50)] == [twin.draw() for _ in range(50)]


@pytest.mark.openapi
def test_each_fault_kind_on_the_wire(tmp_path: Path) -> None:
    for spec in ("429=1", "500=1", "drop=1", "latency=150ms"):
        with start_local_server(tmp_path / spec.split("=")[0], speed="max",
                                faults=spec) as server:
            url, auth = f"{server.base_url}/models", {"Authorization": f"Bearer {server.api_key}"}
            started = time.monotonic()
            if spec == "drop=1":
                with pytest.raises(httpx.RemoteProtocolError):
                    httpx.get(url, headers=auth)
                assert server.faults_injected["drop"] == 1
                continue
            response = httpx.get(url, headers=auth)
            assert response.headers["x-request-id"].startswith("req_")
            if spec == "429=1":
                assert response.status_code == 429
                assert int(response.headers["retry-after-ms"]) > 0
                assert int(response.headers["retry-after"]) >= 1
                assert response.json()["error"]["code"] == "rate_limit_exceeded"
                check("ErrorResponse", response.json())
            elif spec == "500=1":
                assert response.status_code == 500
                assert response.json()["error"]["type"] == "server_error"
                check("ErrorResponse", response.json())
            else:
                assert response.status_code == 200
                assert time.monotonic() - started >= 0.15


@pytest.mark.parametrize("spec", ["429=0.3,seed=1", "500=0.3,seed=2", "drop=0.3,seed=3",
                                  "drop=0.1,429=0.1,500=0.1,latency=2ms,seed=4"])
def test_sdk_retries_survive_faults(tmp_path: Path, spec: str, quick_retries: None) -> None:
    with start_local_server(tmp_path, speed="max", faults=spec) as server, openai.OpenAI(
            base_url=server.base_url, api_key=server.api_key, max_retries=12) as client:
        train = client.files.create(file=("train.jsonl", chat_lines(PAIRS)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model="sqltune-local-base", training_file=train.id,
                                             hyperparameters={"n_epochs": 1})
        job = wait_for(client, job.id)
        assert job.status == "succeeded"
        events = all_events(client, job.id, page=10)
        assert len({event.id for event in events}) == len(events)
        assert events[-1].message == "The job has successfully completed"
        answer = client.chat.completions.create(
            model=job.fine_tuned_model or "",
            messages=render_messages(DEFAULT_TEMPLATE, SCHEMA, "How many concerts are there?"))  # type: ignore[arg-type]
        assert answer.choices[0].message.content
        assert len(client.files.list().data) == 2  # training file + results, no duplicates
        kinds = [part.split("=")[0] for part in spec.split(",")
                 if part.split("=")[0] in ("drop", "429", "500")]
        assert server.faults_injected[kinds[0]] > 0  # seeds chosen so each kind fires early


async def test_async_sdk_survives_faults(tmp_path: Path, quick_retries: None) -> None:
    with start_local_server(tmp_path, speed="max",
                            faults="drop=0.15,429=0.15,500=0.15,seed=32") as server:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key,
                                      max_retries=12) as client:
            train = await client.files.create(file=("t.jsonl", chat_lines(PAIRS)),
                                              purpose="fine-tune")
            job = await client.fine_tuning.jobs.create(model="sqltune-local-base",
                                                       training_file=train.id,
                                                       hyperparameters={"n_epochs": 1})
            job = await await_for(client, job.id)
            assert job.status == "succeeded"
            assert len([e async for e in client.fine_tuning.jobs.list_events(job.id)]) > 24
        assert all(count > 0 for count in server.faults_injected.values()), server.faults_injected
