"""The job runner drives every engine through the TrainingEngine protocol alone: the base model
reaches each engine, and an engine that releases paused jobs gets its run closed on pause and a
new one from the snapshot on resume (the stand-in here, so no torch is needed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import openai

from tests.server.conftest import PAIRS, chat_lines
from tests.server.helpers import all_events, data, wait_for, wait_for_event
from tui.server.context import CTX
from tui.server.engines import ChatExample, Hyperparameters
from tui.server.engines.training import NgramRetrievalEngine, NgramRun
from tui.server.inprocess import start_local_server


class ReleasingEngine(NgramRetrievalEngine):
    """The stand-in, recording what the runner asks of it, and releasing paused jobs."""

    release_paused_jobs = True

    def __init__(self) -> None:
        super().__init__()
        self.prepared: list[str] = []
        self.started: list[tuple[str, bool]] = []
        """(base model, resumed from a state) of each run started."""
        self.closed = 0

    def prepare(self, base_model: str,
                progress: Callable[[str], None] | None = None) -> Path | None:
        self.prepared.append(base_model)
        return None

    def start(self, train: list[ChatExample], valid: list[ChatExample] | None,
              hp: Hyperparameters, seed: int, resume_state: bytes | None = None, *,
              base_model: str = "") -> NgramRun:
        self.started.append((base_model, resume_state is not None))
        run = super().start(train, valid, hp, seed, resume_state, base_model=base_model)
        engine = self

        class Counted(NgramRun):
            def close(self) -> None:
                engine.closed += 1

        run.__class__ = Counted
        return run


def test_a_releasing_engine_is_closed_on_pause_and_resumes_from_its_snapshot(
        tmp_path: Path) -> None:
    with start_local_server(tmp_path, speed="2") as server, openai.OpenAI(
            base_url=server.base_url, api_key=server.api_key, max_retries=0) as client:
        engine = ReleasingEngine()
        server._app[CTX].engines["ngram"] = engine  # type: ignore[index]
        train = client.files.create(file=("t.jsonl", chat_lines(PAIRS)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model="sqltune-local-base", training_file=train.id,
                                             hyperparameters={"n_epochs": 2, "batch_size": 1},
                                             seed=3)
        wait_for_event(client, job.id, "Step 3/")
        assert client.fine_tuning.jobs.pause(job.id).status == "paused"
        wait_for_event(client, job.id, "Paused at step")
        deadline = time.monotonic() + 10
        while engine.closed < 1:  # the run is closed just after its snapshot is saved
            assert time.monotonic() < deadline, "the paused run was not closed"
            time.sleep(0.02)
        assert engine.closed == 1 and len(engine.started) == 1  # nothing held while paused
        assert client.fine_tuning.jobs.resume(job.id).status == "queued"
        done = wait_for(client, job.id)
        assert done.status == "succeeded", done.error
        assert engine.prepared == ["sqltune-local-base"] * 3  # validation, two runs
        assert engine.started == [("sqltune-local-base", False), ("sqltune-local-base", True)]
        assert engine.closed == 2
        steps = [data(e)["step"] for e in all_events(client, job.id) if e.type == "metrics"]
        assert steps == list(range(1, 2 * len(PAIRS) + 1))
