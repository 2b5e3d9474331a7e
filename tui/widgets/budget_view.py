"""What the Budget pane draws: the bar of trained tokens against the limit, and the summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from tui.core.budget.fit import Budget

if TYPE_CHECKING:
    from tui.core.data.prepare import PrepareResult


class BudgetBar(Static):
    """A bar of trained tokens against the per-job limit; red when the limit cut examples."""

    budget: reactive[Budget | None] = reactive(None)
    """The fit shown."""
    over = reactive(False, toggle_class="-over")
    """True when examples had to be dropped to fit the limit."""
    error: reactive[str | None] = reactive(None)
    """Why nothing could be counted (a missing folder...), shown instead of the bar."""

    def watch_budget(self, budget: Budget | None) -> None:
        self.over = budget is not None and not budget.fits_all

    def render(self) -> Text:
        budget = self.budget
        if self.error is not None:
            return Text(self.error, style="bold red", overflow="fold")
        if budget is None:
            return Text("counting tokens…", style="italic")
        width = max(10, self.size.width - 34)
        fraction = min(1.0, budget.fraction_of_limit)
        filled = round(fraction * width)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("█" * filled, style="red" if self.over else "green")
        text.append("░" * (width - filled), style="dim")
        text.append(f" {_short(budget.trained_tokens)} / {_short(budget.token_limit)}"
                    f" tokens ({fraction:.1%})")
        return text


def _short(n: int) -> str:
    for size, unit in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def summary_text(budget: Budget, result: PrepareResult | None,
                 duration: str | None = None) -> Text:
    """Examples kept, epochs, tokens, cost, encoding and what was skipped, in three lines."""
    text = Text()
    text.append("kept ")
    text.append(f"{budget.kept:,}", style="bold")
    text.append(f" of {budget.examples:,} examples · ")
    auto = " (auto)" if budget.epochs_setting == "auto" else ""
    text.append(f"{budget.epochs}", style="bold")
    text.append(f" epochs{auto} · {budget.tokens_per_epoch:,} tokens/epoch\n")
    text.append("trained ")
    text.append(f"{budget.trained_tokens:,}", style="bold")
    cost = budget.estimated_cost_usd
    text.append(f" tokens · {budget.model} ")
    text.append("free" if budget.free else "price unknown" if cost is None else f"${cost:,.2f}",
                style="bold")
    if budget.over_context:
        refused = " (left out: the server refuses them)" if budget.free else ""
        text.append(f" · {budget.over_context} over context{refused}", style="bold red")
    skipped = result.skipped_examples if result is not None else 0
    held = len(result.validation) if result is not None else 0
    text.append(f"\n{budget.encoding} · context {budget.context_limit:,} · longest "
                f"{budget.max_example_tokens:,} · skipped {skipped} · validation {held}",
                style="dim")
    if duration:
        text.append(f"\n{duration}")
    if budget.encoding_note:
        text.append(f"\n{budget.encoding_note}", style="yellow")
    return text
