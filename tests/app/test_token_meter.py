"""Pilot tests of the token-budget meter at 80x24, keyboard only, against tui.core computed
directly (prompts + reference token count + fit_to_budget)."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import Any

from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Select, Static

from tests.app.helpers import screen_text
from tests.app.panes_support import (
    choose,
    clear_input,
    expected_examples,
    no_local_server,
    static_text,
    wait_until,
    workers_idle,
)
from tui.app import SqltuneApp, make_app
from tui.core.budget.fit import Budget, Epochs, Strategy, fit_to_budget
from tui.core.budget.pricing import training_cost
from tui.core.data.jsonl import validate_jsonl
from tui.core.paths import demo_dir
from tui.messages import DatasetExported
from tui.widgets.token_meter import BudgetBar, TokenMeter

SIZE = (80, 24)


def meter(app: SqltuneApp) -> TokenMeter:
    pane = app.pane("budget")
    assert isinstance(pane, TokenMeter)
    return pane


def direct(model: str, *, epochs: Epochs = "auto", limit: int = 50_000_000,
           strategy: Strategy = "stratified", root: Path | None = None) -> Budget:
    """The budget of the demo (or ``root``'s) train split, computed without the app."""
    examples = expected_examples(model, root=root)
    return fit_to_budget([e.tokens for e in examples], model=model,
                         groups=[e.db_id for e in examples], epochs=epochs, token_limit=limit,
                         strategy=strategy)


def summary(app: SqltuneApp) -> str:
    return static_text(meter(app).query_one("#budget-summary", Static))


def state(app: SqltuneApp) -> str:
    return str(meter(app).query_one("#budget-state", Label).render())


async def wait_for_budget(pilot: Pilot[Any], app: SqltuneApp, want: Budget) -> None:
    """Until the meter shows ``want`` (the fit settles after the last keystroke)."""
    await wait_until(pilot, lambda: meter(app).budget == want and not state(app),
                     what=f"the budget {want.model} {want.epochs_setting} {want.token_limit} "
                          f"{want.strategy} (has {meter(app).budget})")
    await workers_idle(pilot)
    assert meter(app).budget == want


def assert_shown(app: SqltuneApp, want: Budget) -> None:
    """The figures on screen are those of ``want``."""
    text = summary(app)
    auto = " (auto)" if want.epochs_setting == "auto" else ""
    assert (f"kept {want.kept:,} of {want.examples:,} examples · {want.epochs} epochs{auto}"
            f" · {want.tokens_per_epoch:,} tokens/epoch") in text
    assert want.estimated_cost_usd is not None
    assert f"trained {want.trained_tokens:,} tokens · {want.model} " \
           f"${want.estimated_cost_usd:,.2f}" in text
    assert f"{want.encoding} · context {want.context_limit:,}" in text
    assert f"longest {want.max_example_tokens:,}" in text
    bar = meter(app).query_one(BudgetBar)
    assert bar.has_class("-over") is (want.kept < want.examples)
    assert f"tokens ({want.fraction_of_limit:.1%})" in str(bar.render())
    costs = meter(app).query_one("#budget-costs", DataTable)
    rows = {str(costs.get_row_at(r)[0]): str(costs.get_row_at(r)[2])
            for r in range(costs.row_count)}
    assert rows == {name: f"${cost:,.2f}" for name, cost in want.costs_usd.items()}
    for name, cost in want.costs_usd.items():
        assert cost == training_cost(name, want.trained_tokens)


async def open_meter(pilot: Pilot[Any], app: SqltuneApp) -> None:
    await pilot.press("2")
    assert app.focused is meter(app).query_one("#budget-costs")
    await wait_for_budget(pilot, app, direct("gpt-4.1-mini"))


async def type_into(pilot: Pilot[Any], key: str, text: str) -> None:
    """Focus a field with its pane key, replace its text, and go back to the table."""
    await pilot.press(key)
    await clear_input(pilot)
    await pilot.press(*text)


async def test_shows_the_demo_budget_as_core_computes_it() -> None:
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=SIZE) as pilot:
        await open_meter(pilot, app)
        want = direct("gpt-4.1-mini")
        assert want.kept == want.examples == len(expected_examples("gpt-4.1-mini"))
        assert_shown(app, want)
        assert "gpt-4.1-mini" in screen_text(app)


async def test_epochs_limit_strategy_and_model_change_live() -> None:
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=SIZE) as pilot:
        await open_meter(pilot, app)
        # epochs 2
        await type_into(pilot, "e", "2")
        want = direct("gpt-4.1-mini", epochs=2)
        await wait_for_budget(pilot, app, want)
        assert_shown(app, want)
        assert want.trained_tokens == 2 * want.tokens_per_epoch
        # a bad value is refused with a reason; the last good fit stays
        await pilot.press("end", "x")
        await wait_until(pilot, lambda: "epochs must be auto or 1-50" in state(app),
                         what="the epochs error")
        await workers_idle(pilot)
        assert meter(app).budget == want
        await pilot.press("backspace", "escape")
        await wait_for_budget(pilot, app, want)
        assert app.focused is meter(app).query_one("#budget-costs")
        # a limit that cuts examples: the bar turns red, every database is still kept
        full = want.trained_tokens
        limit = full * 6 // 10
        await type_into(pilot, "l", str(limit))
        await pilot.press("escape")
        want = direct("gpt-4.1-mini", epochs=2, limit=limit)
        await wait_for_budget(pilot, app, want)
        assert 0 < want.kept < want.examples and want.trained_tokens <= limit
        assert all(kept > 0 for _, kept in want.by_database.values())
        assert_shown(app, want)
        # strategy: shortest keeps more examples under the same limit
        await choose(pilot, meter(app).query_one("#budget-strategy", Select), "s", "shortest")
        shortest = direct("gpt-4.1-mini", epochs=2, limit=limit, strategy="shortest")
        await wait_for_budget(pilot, app, shortest)
        assert shortest.kept >= want.kept
        assert_shown(app, shortest)
        await choose(pilot, meter(app).query_one("#budget-strategy", Select), "s", "random")
        want = direct("gpt-4.1-mini", epochs=2, limit=limit, strategy="random")
        await wait_for_budget(pilot, app, want)
        assert_shown(app, want)
        # model: gpt-3.5-turbo counts with cl100k_base, so every example is recounted
        await choose(pilot, meter(app).query_one("#budget-model", Select), "m", "gpt-3.5-turbo")
        want = direct("gpt-3.5-turbo", epochs=2, limit=limit, strategy="random")
        await wait_for_budget(pilot, app, want)
        assert want.encoding == "cl100k_base"
        assert want.total_tokens != direct("gpt-4.1-mini").total_tokens
        assert_shown(app, want)


async def test_export_writes_valid_jsonl_of_the_kept_examples() -> None:
    seen: list[Message] = []
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await open_meter(pilot, app)
        limit = direct("gpt-4.1-mini", epochs=3).trained_tokens // 2
        await type_into(pilot, "e", "3")
        await pilot.press("escape")
        await type_into(pilot, "l", str(limit))
        await pilot.press("escape")
        want = direct("gpt-4.1-mini", epochs=3, limit=limit)
        await wait_for_budget(pilot, app, want)
        await pilot.press("x")
        await wait_until(pilot, lambda: "Export" in screen_text(app) and
                         app.screen.query("#export-train"), what="the export dialog")
        suggested = app.screen.query_one("#export-train", Input).value
        assert suggested.endswith(f"demo-gpt-4.1-mini-{want.kept}.jsonl")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: any(isinstance(m, DatasetExported) for m in seen),
                         what="DatasetExported")
        exported = next(m for m in seen if isinstance(m, DatasetExported))
        assert str(exported.train) == suggested and exported.validation is None
        assert exported.examples == want.kept and exported.model == "gpt-4.1-mini"
        assert app.session.last_export == exported.train
        report = validate_jsonl(exported.train, "gpt-4.1-mini")
        assert report.ok and not report.errors and report.examples == want.kept
        examples = expected_examples("gpt-4.1-mini")
        lines = exported.train.read_text(encoding="utf-8").splitlines()
        assert [json.loads(line)["messages"] for line in lines] == \
            [examples[i].messages for i in want.kept_indices]


async def test_export_with_a_validation_split() -> None:
    seen: list[Message] = []
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await open_meter(pilot, app)
        await type_into(pilot, "v", "0.2")
        await pilot.press("enter", "escape")
        await wait_until(pilot, lambda: meter(app).result is not None
                         and len(meter(app).result.validation) > 0 and not state(app),
                         what="the recount with a validation split")
        await workers_idle(pilot)
        total = len(expected_examples("gpt-4.1-mini"))
        held = round(total * 0.2)
        budget = meter(app).budget
        assert budget is not None and budget.examples == total - held
        assert f"validation {held}" in summary(app)
        await pilot.press("x")
        await wait_until(pilot, lambda: bool(app.screen.query("#export-validation")),
                         what="the export dialog")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: any(isinstance(m, DatasetExported) for m in seen),
                         what="DatasetExported")
        exported = next(m for m in seen if isinstance(m, DatasetExported))
        assert exported.validation is not None
        train = validate_jsonl(exported.train, "gpt-4.1-mini")
        valid = validate_jsonl(exported.validation, "gpt-4.1-mini")
        assert train.ok and valid.ok
        assert (train.examples, valid.examples) == (total - held, held)
        train_lines = set(exported.train.read_text(encoding="utf-8").splitlines())
        valid_lines = set(exported.validation.read_text(encoding="utf-8").splitlines())
        assert not train_lines & valid_lines
        every = {json.dumps(e.messages, ensure_ascii=False, separators=(",", ":"))
                 for e in expected_examples("gpt-4.1-mini")}
        written = {json.dumps(json.loads(line)["messages"], ensure_ascii=False,
                              separators=(",", ":")) for line in train_lines | valid_lines}
        assert written == every


async def test_help_and_palette_list_the_meter_actions() -> None:
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=SIZE) as pilot:
        await open_meter(pilot, app)
        await pilot.press("f1")
        await wait_until(pilot, lambda: "Keys" in screen_text(app), what="help")
        help_text = "\n".join(static_text(s) for s in app.screen.query(Static))
        for binding in TokenMeter.pane_bindings():
            assert binding.description in help_text, binding.description
        await pilot.press("escape")
        await wait_until(pilot, lambda: "Keys" not in screen_text(app), what="help closed")
        await pilot.press("ctrl+p", *"Budget:")
        for binding in TokenMeter.pane_bindings():
            description = binding.description
            await wait_until(pilot, functools.partial(_in_palette, app, description),
                             what=f"palette entry {description}")
        await pilot.press("end", "ctrl+u", *"Budget: Strategy", "enter")
        strategy = meter(app).query_one("#budget-strategy", Select)
        await wait_until(pilot, lambda: strategy.expanded, what="the strategy list")
        assert app.focused is not None and strategy in app.focused.ancestors_with_self


def _in_palette(app: SqltuneApp, description: str) -> bool:
    from textual.command import CommandList

    lists = app.screen.query(CommandList)
    if not lists:
        return False
    options = lists.first()
    return any(f"Budget: {description}" in str(options.get_option_at_index(i).prompt)
               for i in range(options.option_count))


async def test_meter_follows_a_dataset_opened_in_the_preview(tmp_path: Path) -> None:
    """o in the preview opens another folder; the meter then counts that one, not the demo."""
    demo = demo_dir()
    folder = tmp_path / "clinic-only"
    (folder / "database" / "clinic").mkdir(parents=True)
    shutil.copy(demo / "database" / "clinic" / "clinic.sqlite",
                folder / "database" / "clinic" / "clinic.sqlite")
    tables = json.loads((demo / "tables.json").read_text(encoding="utf-8"))
    (folder / "tables.json").write_text(json.dumps([t for t in tables if t["db_id"] == "clinic"]),
                                        encoding="utf-8")
    train = [e for e in json.loads((demo / "train.json").read_text(encoding="utf-8"))
             if e["db_id"] == "clinic"][:12]
    (folder / "train.json").write_text(json.dumps(train), encoding="utf-8")
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=SIZE) as pilot:
        await open_meter(pilot, app)
        await pilot.press("1", "o")
        await wait_until(pilot, lambda: bool(app.screen.query("#prompt-input")), what="the prompt")
        await clear_input(pilot)
        await pilot.press(*str(folder), "enter")
        await wait_until(pilot, lambda: app.pane("dataset").source is not None  # type: ignore[attr-defined]
                         and app.pane("dataset").source.root == folder,  # type: ignore[attr-defined]
                         what="the preview on the new folder")
        await pilot.press("2")
        want = direct("gpt-4.1-mini", root=folder)
        assert want.examples == 12
        await wait_for_budget(pilot, app, want)
        assert_shown(app, want)
