"""One evaluation run of the pane: its plan, the messages it posts, and the loop over models."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:  # the evaluation core loads when a run starts, not with the app
    from tui.core.datasets import Example
    from tui.core.eval_runs import EvalRun
    from tui.core.evaluate import Progress
    from tui.core.report import EvalReport

DEFAULT_CONCURRENCY = 8
"""Questions in flight at once."""
MAX_CONCURRENCY = 64
"""The most the pane accepts (providers rate-limit well before this)."""


@dataclass(frozen=True)
class RunPlan:
    """What the user asked to evaluate."""

    models: tuple[str, ...]
    """Models, evaluated one after the other."""
    root: Path
    """The Spider-format folder."""
    split: str
    """The split to read."""
    concurrency: int = DEFAULT_CONCURRENCY
    """Questions in flight at once."""
    limit: int | None = None
    """Only the first K questions (None: all)."""


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
    """Evaluate each model of the plan in turn, posting progress; never raises."""
    from tui.core.datasets import DatasetError, load_dataset
    from tui.core.eval_runs import save_run, template_for
    from tui.core.evaluate import EvaluationError, evaluate, model_predictor

    try:
        dataset = await asyncio.to_thread(load_dataset, plan.root, plan.split)
    except DatasetError as error:
        post(EvalFailed(f"{plan.root} ({plan.split}): {error}"))
        post(EvalEnded(cancelled=False))
        return
    examples = dataset.examples if plan.limit is None else dataset.examples[: plan.limit]

    def db_path_for(example: Example) -> Path | None:
        return dataset.db_path(example.db_id)

    for position, model in enumerate(plan.models):
        if cancel.is_set():
            break
        post(EvalStarted(model, position, len(plan.models), len(examples)))
        template = await asyncio.to_thread(template_for, model, provider)
        predict = model_predictor(client, model, db_path_for=db_path_for, template=template)
        try:
            report = await evaluate(
                examples, predict=predict, db_path_for=db_path_for,
                concurrency=plan.concurrency, progress=lambda p: post(EvalProgressed(p)),
                cancel=cancel, model=model, split=dataset.split)
        except EvaluationError as error:
            post(EvalFailed(str(error)))
            continue
        run = None
        if not report.cancelled and report.n:
            try:
                run = await asyncio.to_thread(save_run, report, provider=provider)
            except Exception as error:  # the numbers stay on screen; history is a convenience
                post(EvalFailed(f"could not record the run in history: {error}"))
        post(EvalFinished(report, run))
    post(EvalEnded(cancelled=cancel.is_set()))
