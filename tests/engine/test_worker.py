"""The lora engine's worker process: lock-step steps, states, crashes and abort."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.engine.test_trainer import example
from tui.server.engines.base import ChatExample, EngineError, Hyperparameters
from tui.server.engines.lora import throughput
from tui.server.engines.lora.worker import FAIL_AT_STEP_ENV

pytest.importorskip("peft")


@pytest.fixture
def engine(tiny_model_dir: Path, tmp_path: Path) -> object:
    from tui.server.engines.lora.engine import LoraEngine
    from tui.server.engines.lora.registry import BaseRegistry
    from tui.server.engines.lora.serving import Serving
    from tui.server.engines.lora.sources import make_spec

    registry = BaseRegistry([make_spec("tiny", str(tiny_model_dir))], tmp_path / "bases")
    return LoraEngine(registry, Serving(registry), tmp_path)


def examples(n: int) -> list[ChatExample]:
    return [ChatExample(messages=example(i)) for i in range(n)]


def test_the_worker_trains_reports_and_its_model_answers(engine: object, tmp_path: Path) -> None:
    from tui.server.engines.lora.engine import LoraEngine

    assert isinstance(engine, LoraEngine)
    hp = engine.resolve_hyperparameters(2, {"n_epochs": 15, "learning_rate_multiplier": 10})
    assert hp.batch_size == 1
    run = engine.start(examples(1) * 2, examples(1), hp, 3, base_model="tiny")
    try:
        assert (run.total_steps, run.steps_done) == (30, 0)
        first = run.step()
        assert (first.step, first.valid_loss is not None) == (1, True)
        while run.steps_done < run.total_steps:
            last = run.step()
        assert last.train_loss < first.train_loss
        state = run.state()
    finally:
        run.close()
    assert not run._process.is_alive()
    measured = throughput.lookup(tmp_path, "tiny", run.device)
    assert measured is not None and measured > 0
    assert engine.tokens_per_second("tiny") == measured
    model = engine.load(state)
    answer = model.complete(example(0)[:2], max_tokens=24)
    assert answer.text == "SELECT name FROM singer WHERE id = 0"
    assert len(list((tmp_path / "adapters").iterdir())) == 1
    engine.load(state)  # unpacked once
    assert len(list((tmp_path / "adapters").iterdir())) == 1


def test_a_worker_that_dies_fails_the_step_with_its_exit_code(
        engine: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.server.engines.lora.engine import LoraEngine

    assert isinstance(engine, LoraEngine)
    hp = Hyperparameters(n_epochs=3, batch_size=1, learning_rate_multiplier=1)
    monkeypatch.setenv(FAIL_AT_STEP_ENV, "2:exit")  # an exception is tested over loopback
    run = engine.start(examples(2), None, hp, 1, base_model="tiny")
    run.step()
    with pytest.raises(EngineError, match="worker process exited with code 3"):
        run.step()
    run.close()


def test_abort_stops_a_step_in_flight_at_once(engine: object) -> None:
    from tui.server.engines.lora.engine import LoraEngine

    assert isinstance(engine, LoraEngine)
    hp = Hyperparameters(n_epochs=1, batch_size=200, learning_rate_multiplier=1)  # a long step
    run = engine.start(examples(200), None, hp, 1, base_model="tiny")
    errors: list[Exception] = []

    def step() -> None:
        try:
            run.step()
        except EngineError as error:
            errors.append(error)

    thread = threading.Thread(target=step)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    run.abort()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 3
    assert errors and "stopped" in str(errors[0])
    assert not run._process.is_alive()
