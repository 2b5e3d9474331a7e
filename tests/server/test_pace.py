"""--speed: the demo job's planned duration from the pacing schedule (no test waits that long;
bench/bench_server.py measures the per-step compute that has to fit inside it)."""

from __future__ import annotations

import math

import pytest

from tui.core.data.prepare import PrepareOptions, prepare
from tui.core.paths import demo_dir
from tui.server.engines import get_engine
from tui.server.pace import Pace, SpeedError


def planned_seconds(pace: Pace, n_examples: int) -> tuple[int, float]:
    """(steps, seconds) a default (all ``auto``) job of ``n_examples`` is paced to take."""
    hp = get_engine("ngram").resolve_hyperparameters(n_examples, {})
    steps = math.ceil(n_examples / hp.batch_size) * hp.n_epochs
    return steps, 2 * pace.phase_delay() + steps * pace.step_delay(steps)


def test_demo_speed_paces_the_demo_job_to_30_to_90_seconds() -> None:
    root = demo_dir()
    if not (root / "train.json").is_file():
        pytest.skip("demo data is not built")
    kept = prepare(root, PrepareOptions(parallel=False)).budget.kept  # what `prepare` uploads
    assert 140 <= kept <= 160  # "a demo job of about 150 examples"
    steps, seconds = planned_seconds(Pace.parse("demo"), kept)
    assert steps == 3 * kept  # 3 epochs, batch 1: a metrics event per example pass
    assert 30 <= seconds <= 90
    assert 30 <= planned_seconds(Pace.parse("demo"), 150)[1] <= 90


def test_speed_factors_max_and_long_jobs() -> None:
    demo = Pace.parse("demo")
    steps, seconds = planned_seconds(demo, 150)
    assert planned_seconds(Pace.parse("4"), 150)[1] == pytest.approx(seconds / 4)
    assert planned_seconds(Pace.parse("2x"), 150)[1] == pytest.approx(seconds / 2)
    assert planned_seconds(Pace.parse("max"), 150)[1] == 0.0
    for n in (2_000, 20_000):  # bigger jobs take smaller steps: training stays about a minute
        big_steps, big_seconds = planned_seconds(demo, n)
        assert big_steps > steps and 30 <= big_seconds <= 90
    assert [Pace.parse(s).label for s in ("demo", "max", "3")] == ["demo", "max", "3.0x"]
    for bad in ("warp", "0", "-2"):
        with pytest.raises(SpeedError):
            Pace.parse(bad)
