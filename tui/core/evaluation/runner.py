"""One evaluation run for `sqltune eval` and the Evaluate pane: prompt, score, record."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the evaluation core loads when a run starts, not with the app
    from tui.core.data.datasets import Example, SpiderDataset
    from tui.core.evaluation.evaluate import CancelFlag, Progress
    from tui.core.evaluation.report import EvalReport
    from tui.core.evaluation.runs import EvalRun
    from tui.core.finetune.lineage import PromptChoice

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


@dataclass(frozen=True)
class ModelRun:
    """One model evaluated: the numbers, the prompt it was asked with, the history record."""

    report: EvalReport
    """Everything measured (partial when cancelled); its JSON carries ``prompt_template``."""
    prompt: PromptChoice
    """The template the questions were asked with, and a warning when it was a guess."""
    run: EvalRun | None = None
    """The history record (None when cancelled, nothing was scored, or recording failed)."""
    record_error: str | None = None
    """Why the finished run could not be recorded in history."""


@dataclass(frozen=True)
class ModelStarted:
    """A model's run is about to ask its first question."""

    model: str
    """The model being evaluated."""
    position: int
    """0-based position of this model in the plan."""
    count: int
    """Models in the plan."""
    total: int
    """Questions in this run."""
    prompt: PromptChoice
    """The template it is asked with (a warning when it is not known to be its own)."""


@dataclass(frozen=True)
class ModelFinished:
    """A model's run ended (finished and recorded, or cancelled)."""

    result: ModelRun
    """Its report, prompt and history record."""


@dataclass(frozen=True)
class RunFailed:
    """A model's run (or the whole plan) could not go on."""

    error: str
    """What went wrong (never holds a key)."""


def examples_of(dataset: SpiderDataset, limit: int | None) -> list[Example]:
    """The split's questions, or only the first ``limit``."""
    return list(dataset.examples if limit is None else dataset.examples[:limit])


async def evaluate_model(client: Any, model: str, dataset: SpiderDataset,
                         examples: list[Example], *, provider: str | None,
                         concurrency: int = DEFAULT_CONCURRENCY,
                         progress: Callable[[Progress], object] | None = None,
                         cancel: CancelFlag | None = None, prompt: PromptChoice | None = None,
                         record: bool = True) -> ModelRun:
    """Ask ``model`` every question with the template it was trained with (prompt_for), score
    it, and record a finished run in history. Raises EvaluationError when the provider refuses."""
    from tui.core.evaluation.evaluate import evaluate, model_predictor
    from tui.core.evaluation.runs import save_run
    from tui.core.finetune.lineage import prompt_for

    if prompt is None:
        prompt = await prompt_for(model, provider, client=client)

    def db_path_for(example: Example) -> Path | None:
        return dataset.db_path(example.db_id)

    predict = model_predictor(client, model, db_path_for=db_path_for, template=prompt.template)
    report = await evaluate(examples, predict=predict, db_path_for=db_path_for,
                            concurrency=concurrency, progress=progress, cancel=cancel,
                            model=model, split=dataset.split)
    report = replace(report, prompt_template=prompt.to_json())
    if not record or report.cancelled or not report.n:
        return ModelRun(report, prompt)
    try:
        run = await asyncio.to_thread(save_run, report, provider=provider)
    except Exception as error:  # the numbers stand; history is a convenience
        return ModelRun(report, prompt, record_error=str(error))
    return ModelRun(report, prompt, run)


async def run_plan(plan: RunPlan, client: Any, provider: str | None,
                   emit: Callable[[RunEvent], object], cancel: asyncio.Event) -> bool:
    """Evaluate each model of the plan in turn, reporting each step through ``emit`` (see
    RunEvent); never raises. True when the run was cancelled."""
    from tui.core.data.datasets import DatasetError, load_dataset
    from tui.core.evaluation.evaluate import EvaluationError
    from tui.core.finetune.lineage import prompt_for

    try:
        dataset = await asyncio.to_thread(load_dataset, plan.root, plan.split)
    except DatasetError as error:
        emit(RunFailed(f"{plan.root} ({plan.split}): {error}"))
        return False
    examples = examples_of(dataset, plan.limit)
    for position, model in enumerate(plan.models):
        if cancel.is_set():
            break
        prompt = await prompt_for(model, provider, client=client)
        emit(ModelStarted(model, position, len(plan.models), len(examples), prompt))
        try:
            result = await evaluate_model(client, model, dataset, examples, provider=provider,
                                          concurrency=plan.concurrency, progress=emit,
                                          cancel=cancel, prompt=prompt)
        except EvaluationError as error:
            emit(RunFailed(str(error)))
            continue
        if result.record_error is not None:
            emit(RunFailed(f"could not record the run in history: {result.record_error}"))
        emit(ModelFinished(result))
    return cancel.is_set()


if TYPE_CHECKING:
    RunEvent = ModelStarted | Progress | ModelFinished | RunFailed
    """What run_plan reports, in order: per model, ModelStarted, Progress..., then
    ModelFinished or RunFailed (a failure to record comes as RunFailed before ModelFinished)."""
