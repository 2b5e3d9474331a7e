"""Budget on a real open-weight base at 80x24: the base joins the model list, its own tokenizer
counts the examples (the same figures as prepare with that counter), it is free, and a base
whose tokenizer is not here is counted with tiktoken and says it is approximate."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Select

from tests.app.helpers import screen_text, wait_until
from tests.app.panes_support import choose, no_local_server, static_text
from tui.app import SqltuneApp, make_app
from tui.core.budget.counters import BaseModelInfo, counter_for
from tui.core.data.prepare import PrepareOptions, prepare
from tui.core.paths import demo_dir
from tui.widgets.token_meter import TokenMeter

SIZE = (80, 24)


def meter(app: SqltuneApp) -> TokenMeter:
    pane = app.pane("budget")
    assert isinstance(pane, TokenMeter)
    return pane


async def test_a_real_base_counts_with_its_own_tokenizer_and_is_free(
        tiny_model_dir: Path) -> None:
    tiny = BaseModelInfo("tiny", str(tiny_model_dir), kind="folder", device="cpu",
                         context_length=1024, tokens_per_second=50.0,
                         folder=str(tiny_model_dir))
    ghost = BaseModelInfo("ghost", "/elsewhere/ghost", kind="folder", context_length=4096)
    want = prepare(demo_dir(), PrepareOptions(model="tiny"),
                   counter=counter_for("tiny", [tiny])).budget
    app = make_app(start_local=no_local_server)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        pane = meter(app)
        await wait_until(pilot, lambda: pane.budget is not None, what="the first count")
        # what find_bases posts once a local server lists its bases
        pane.post_message(TokenMeter.BasesFound([tiny, ghost]))
        select = pane.query_one("#budget-model", Select)
        await wait_until(pilot, lambda: pane.bases == [tiny, ghost], what="the bases")
        await choose(pilot, select, "m", "tiny")
        await wait_until(pilot, lambda: pane.budget is not None and pane.budget.model == "tiny",
                         what="the count with the tiny tokenizer")
        assert pane.budget == want
        summary = static_text(pane.query_one("#budget-summary"))  # type: ignore[arg-type]
        assert f"trained {want.trained_tokens:,} tokens · tiny free" in summary
        assert "tiny tokenizer · context 1,024" in summary
        table = pane.query_one("#budget-costs", DataTable)
        assert table.row_count == 1 and table.get_row_at(0)[2].plain == "free"
        # the demo's schemas are over the tiny model's context: its server would refuse them all
        assert want.kept == 0 and want.over_context == want.examples
        assert f"{want.examples} over context (left out: the server refuses them)" in summary
        assert "duration: nothing to train" in summary
        await pilot.press("t")
        message = (f"No example to train on: {want.examples} are over tiny's context of 1,024 "
                   "tokens")
        await wait_until(pilot, lambda: message in [n.message for n in app._notifications],
                         what="train this refused")

        await choose(pilot, select, "m", "ghost")
        await wait_until(pilot, lambda: pane.budget is not None and pane.budget.model == "ghost",
                         what="the approximate count")
        assert pane.budget.encoding == "o200k_base" and pane.budget.free
        assert pane.budget.context_limit == 4096
        flat = " ".join(screen_text(app).split())
        assert "approximate: the tokenizer of ghost is not available here" in flat
