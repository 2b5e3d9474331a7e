"""The Evaluate pane's messages, posted while the core runner (core.eval_runner) runs a plan."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

from tui.core.evaluation.runner import DEFAULT_CONCURRENCY, MAX_CONCURRENCY, RunPlan

if TYPE_CHECKING:  # the evaluation core loads when a run starts, not with the app
    from tui.core.evaluation.evaluate import Progress
    from tui.core.evaluation.report import EvalReport
    from tui.core.evaluation.runs import EvalRun
    from tui.core.finetune.lineage import PromptChoice

__all__ = ["DEFAULT_CONCURRENCY", "MAX_CONCURRENCY", "EvalEnded", "EvalFailed", "EvalFinished",
           "EvalProgressed", "EvalStarted", "RunPlan", "run_plan"]


@dataclass
class EvalStarted(Message):
    """A model's run started."""

    model: str
    """The model being evaluated."""
    position: int
    """0-based position of this model in the plan."""
    count: int
    """Models in the plan."""
    total: int
    """Questions in this run."""
    prompt: PromptChoice
    """The template the model is asked with (a warning when it is not known to be its own)."""


@dataclass
class EvalProgressed(Message):
    """One more question finished (scored or skipped)."""

    progress: Progress
    """Counts so far and the question just finished."""


@dataclass
class EvalFinished(Message):
    """A model's run ended: recorded when it finished, kept unrecorded when cancelled."""

    report: EvalReport
    """Everything measured (partial when cancelled)."""
    run: EvalRun | None
    """The history record (None when cancelled or nothing was scored)."""


@dataclass
class EvalFailed(Message):
    """The run could not go on (bad split, unknown model, provider refusing...)."""

    error: str
    """What went wrong (never holds a key)."""


@dataclass
class EvalEnded(Message):
    """Every model of the plan is done (or the run was cancelled or failed)."""

    cancelled: bool
    """True when the user stopped it."""


async def run_plan(plan: RunPlan, client: Any, provider: str | None,
                   post: Callable[[Message], object], cancel: asyncio.Event) -> None:
    """Run the plan with the core runner, posting its steps as messages; never raises."""
    from tui.core.evaluation.runner import ModelFinished, ModelStarted, RunFailed
    from tui.core.evaluation.runner import run_plan as run_core

    def emit(event: Any) -> None:
        if isinstance(event, ModelStarted):
            post(EvalStarted(event.model, event.position, event.count, event.total,
                             event.prompt))
        elif isinstance(event, ModelFinished):
            post(EvalFinished(event.result.report, event.result.run))
        elif isinstance(event, RunFailed):
            post(EvalFailed(event.error))
        else:
            post(EvalProgressed(event))

    cancelled = await run_core(plan, client, provider, emit, cancel)
    post(EvalEnded(cancelled=cancelled))
