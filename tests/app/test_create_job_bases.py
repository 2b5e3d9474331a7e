"""The create form on a real open-weight base at 80x24: the base's own tokenizer counts the
training file, the duration comes only from measured throughput, CPU training is said to suit
small datasets, and a local server without the train extra says how to get real training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.app import App

from tests.app.helpers import screen_text, wait_until
from tui.core.budget.counters import BaseModelInfo, counter_for
from tui.core.finetune.form import CPU_NOTE, human_duration, train_extra_missing
from tui.screens.create_job import CreateJobScreen, FileChoice, base_model_choices

SIZE = (80, 24)
MESSAGES = [
    [{"role": "system", "content": "CREATE TABLE singer (id INTEGER, name TEXT, age INTEGER);"},
     {"role": "user", "content": f"Which singers are older than {age}?"},
     {"role": "assistant", "content": f"SELECT name FROM singer WHERE age > {age}"}]
    for age in range(20, 32)
]


def training_file(folder: Path) -> Path:
    path = folder / "singers.jsonl"
    path.write_text("".join(json.dumps({"messages": m}) + "\n" for m in MESSAGES),
                    encoding="utf-8")
    return path


def flat(app: App[Any]) -> str:
    """The screen's words in order, the dialog's borders and wrapping taken out."""
    return " ".join(screen_text(app).replace("│", " ").replace("╰", " ").split())


async def show_form(base: BaseModelInfo | None, path: Path, *, epochs: int = 2,
                    hint: str | None = None) -> tuple[App[Any], Any]:
    models = base_model_choices(["sqltune-local-base", *([base.id] if base else [])],
                                [base] if base else [])
    screen = CreateJobScreen(models, [FileChoice("file-1", path.name, str(path))],
                             training="file-1", note=None, fetch=None, provider_kind="local",
                             model=base.id if base else "sqltune-local-base", epochs=epochs,
                             bases=[base] if base else [], real_training_hint=hint)
    app: App[Any] = App()
    return app, screen


@pytest.mark.parametrize("speed", [None, 40.0])
async def test_a_real_base_is_estimated_with_its_own_tokenizer(
        tiny_model_dir: Path, tmp_path: Path, speed: float | None) -> None:
    base = BaseModelInfo("tiny", str(tiny_model_dir), kind="folder", device="cpu",
                         context_length=1024, tokens_per_second=speed,
                         folder=str(tiny_model_dir))
    per_epoch = sum(counter_for("tiny", [base]).count(m) for m in MESSAGES)
    app, screen = await show_form(base, training_file(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(screen)
        await wait_until(pilot, lambda: "trained tokens" in flat(app), what="the estimate")
        text = flat(app)
        assert screen.query_one("#create-model").value == "tiny"
        assert f"≈ {2 * per_epoch:,} trained tokens (2 epochs × {per_epoch:,}, 12 examples)" \
            in text
        assert "free on the local server" in text
        if speed is None:
            assert "duration: no measurement yet on cpu (the first job measures it)" in text
        else:
            minutes = human_duration(2 * per_epoch / speed)
            assert f"≈ {minutes} at 40 tokens/s measured on cpu" in text
        assert CPU_NOTE in text


async def test_without_real_bases_the_form_says_how_to_get_real_training(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "peft" else real(name, *a))
    hint = train_extra_missing()
    assert hint is not None and "pip install -e '.[train]'" in hint and "peft" in hint
    app, screen = await show_form(None, training_file(tmp_path), hint=hint)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(screen)
        await wait_until(pilot, lambda: "trained tokens" in flat(app), what="the estimate")
        assert "real training needs peft: pip install -e '.[train]'" in flat(app)


def test_with_the_train_extra_nothing_is_missing() -> None:
    pytest.importorskip("peft")
    assert train_extra_missing() is None


def test_real_bases_come_first_in_the_model_list() -> None:
    base = BaseModelInfo("Qwen/Qwen2.5-Coder-0.5B-Instruct", "Qwen/Qwen2.5-Coder-0.5B-Instruct")
    models = base_model_choices(["sqltune-local-base", base.id, "ft:x:y"], [base])
    assert models[0] == base.id and models[-2:] == ["sqltune-local-base", "ft:x:y"]
    assert "gpt-4.1-mini-2025-04-14" in models


def test_examples_over_the_base_context_are_flagged(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tui.core.data.jsonl import validate_jsonl
    from tui.screens.create_job import estimate_text

    base = BaseModelInfo("tiny", str(tiny_model_dir), kind="folder", device="cpu",
                         context_length=64, folder=str(tiny_model_dir))
    counter = counter_for("tiny", [base])
    path = training_file(tmp_path)
    report = validate_jsonl(path, "tiny", token_check=counter.count, context=64)
    text = estimate_text(report, "tiny", 1, "local", base=base).plain
    assert "examples over tiny's context of 64 tokens (line 1, 2, 3, …): the server refuses" \
        in text


async def test_a_base_without_its_tokenizer_here_is_estimated_approximately(
        tmp_path: Path) -> None:
    ghost = BaseModelInfo("ghost", "/elsewhere/ghost", kind="folder", device="cuda",
                          context_length=4096, tokens_per_second=2000.0)
    app, screen = await show_form(ghost, training_file(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(screen)
        await wait_until(pilot, lambda: "trained tokens" in flat(app), what="the estimate")
        text = flat(app)
        assert "approximate: the tokenizer of ghost is not available here" in text
        assert "measured on cuda" in text and CPU_NOTE not in text
