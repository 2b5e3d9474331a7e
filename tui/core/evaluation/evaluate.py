"""Evaluate a model or a predictions file on a split: bounded concurrency, progress, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tui.core.data.datasets import Example
from tui.core.data.prompts import DEFAULT_TEMPLATE, PromptTemplate, messages_for
from tui.core.data.schema import SchemaCache
from tui.core.evaluation.hardness import HardnessError
from tui.core.evaluation.report import EvalReport, QuestionResult, SkippedQuestion
from tui.core.inference.ask import DEFAULT_MAX_TOKENS, InferenceError, ask_for_sql
from tui.core.sql.matching import order_matters, results_match
from tui.core.sql.sqlexec import QueryError, QueryResult, run_readonly

if TYPE_CHECKING:  # the SDK costs ~0.5 s to import: not before the app's first frame
    import openai

__all__ = [
    "EvalReport", "EvaluationError", "Prediction", "Progress", "QuestionResult",
    "SkippedQuestion", "evaluate", "model_predictor", "predictions_predictor",
    "results_match",
]

SQL_TIMEOUT_S = 30.0
EVAL_RETRIES = 8
"""The SDK's retries for each question: an evaluation is a batch that waits out rate limits
(with the SDK's backoff and the provider's retry-after) rather than score a 429 as wrong."""
# Results are compared whole; a result past this many rows cannot be scored.
MAX_RESULT_ROWS = 100_000


class EvaluationError(Exception):
    """The run cannot go on (the provider rejects the key, the model does not exist...)."""


class CancelFlag(Protocol):
    """asyncio.Event, threading.Event or anything with is_set()."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Prediction:
    """What a predictor produced for one question."""

    sql: str
    """The SQL to run ("" when there is none)."""
    raw_text: str = ""
    """The model's reply as written."""
    latency_s: float | None = None
    """Seconds the model took (None when no model was called)."""
    prompt_tokens: int = 0
    """Input tokens billed."""
    completion_tokens: int = 0
    """Output tokens billed."""
    cost_usd: float | None = None
    """Dollars for the call, when priced."""
    error_type: str | None = None
    """Set when the model call failed (rate_limited, timeout, ...): the answer is wrong."""
    error: str | None = None
    """The failure's message."""


Predictor = Callable[[Example], Awaitable[Prediction]]


@dataclass(frozen=True)
class Progress:
    """Sent after each question."""

    done: int
    """Questions finished (scored or skipped)."""
    total: int
    """Questions in the run."""
    matched: int
    """Scored questions that matched so far."""
    last: QuestionResult | SkippedQuestion
    """The question just finished."""


def model_predictor(client: openai.AsyncOpenAI, model: str, *,
                    db_path_for: Callable[[Example], Path | None],
                    template: PromptTemplate = DEFAULT_TEMPLATE,
                    schema_cache: SchemaCache | None = None, temperature: float | None = 0.0,
                    max_tokens: int = DEFAULT_MAX_TOKENS,
                    max_retries: int = EVAL_RETRIES) -> Predictor:
    """Ask `model` each question with the one training prompt (render_messages); each call
    is retried by the SDK alone, ``max_retries`` times at most."""
    cache = schema_cache or SchemaCache()
    client = client.with_options(max_retries=max_retries)

    async def predict(example: Example) -> Prediction:
        db = db_path_for(example)
        if db is None:
            raise EvaluationError(f"no database for {example.db_id}")
        messages = await asyncio.to_thread(messages_for, template, cache, db, example.question)
        try:
            answer = await ask_for_sql(client, model, messages, temperature=temperature,
                                       max_tokens=max_tokens)
        except InferenceError as error:
            if error.fatal:
                raise EvaluationError(f"{model}: {error}") from None
            return Prediction(sql="", error_type=error.kind, error=error.message)
        return Prediction(sql=answer.sql, raw_text=answer.raw_text, latency_s=answer.latency_s,
                          prompt_tokens=answer.prompt_tokens,
                          completion_tokens=answer.completion_tokens, cost_usd=answer.cost_usd)

    return predict


def predictions_predictor(examples: Sequence[Example], sql: Sequence[str]) -> Predictor:
    """Predictions given in advance, one SQL per example in the same order (Spider's format)."""
    if len(sql) < len(examples):
        raise EvaluationError(f"{len(sql)} predictions for {len(examples)} questions")
    by_example = dict(zip(examples, sql, strict=False))

    async def predict(example: Example) -> Prediction:
        return Prediction(sql=by_example[example])

    return predict


def _execute(db: Path, sql: str, timeout: float) -> QueryResult:
    return run_readonly(db, sql, timeout=timeout, max_rows=MAX_RESULT_ROWS)


def _level(sql: str) -> str:
    from tui.core.evaluation.components import hardness  # sqlglot: on first use

    try:
        return hardness(sql)
    except HardnessError:
        return "unknown"


async def _score(position: int, example: Example, predict: Predictor,
                 db_path_for: Callable[[Example], Path | None],
                 timeout: float) -> QuestionResult | SkippedQuestion:
    db = db_path_for(example)
    if db is None or not Path(db).is_file():
        return SkippedQuestion(position, example.db_id, example.question, "missing_database",
                               f"no database file for {example.db_id}")
    try:
        gold = await asyncio.to_thread(_execute, db, example.query, timeout)
        if gold.truncated:
            raise QueryError("too_large", f"more than {MAX_RESULT_ROWS} rows")
    except QueryError as gold_error:
        return SkippedQuestion(position, example.db_id, example.question, "gold_failed",
                               f"{gold_error.type}: {gold_error.message}")
    prediction = await predict(example)
    error_type, message = prediction.error_type, prediction.error
    match = False
    if error_type is None:
        try:
            predicted = await asyncio.to_thread(_execute, db, prediction.sql, timeout)
            if predicted.truncated:
                raise QueryError("too_large", f"more than {MAX_RESULT_ROWS} rows")
            match = results_match(gold.rows, predicted.rows,
                                  ordered=order_matters(example.query))
        except QueryError as failure:
            error_type, message = failure.type, failure.message
    return QuestionResult(
        index=position, db_id=example.db_id, question=example.question, gold=example.query,
        predicted=prediction.sql, hardness=_level(example.query), match=match,
        error=None if error_type is None else f"{error_type}: {message}", error_type=error_type,
        latency_s=prediction.latency_s, prompt_tokens=prediction.prompt_tokens,
        completion_tokens=prediction.completion_tokens, cost_usd=prediction.cost_usd)


async def evaluate(
    examples: Sequence[Example],
    *,
    predict: Predictor,
    db_path_for: Callable[[Example], Path | None],
    concurrency: int = 4,
    timeout: float = SQL_TIMEOUT_S,
    progress: Callable[[Progress], object] | None = None,
    cancel: CancelFlag | None = None,
    model: str | None = None,
    split: str | None = None,
) -> EvalReport:
    """Score every example: at most `concurrency` questions in flight, SQL in threads.

    Questions without a database, or whose gold SQL fails, are skipped (reported, never
    scored, never created). Setting `cancel` stops the run; the report then covers the
    questions finished so far. Raises EvaluationError when the provider refuses outright.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    total = len(examples)
    pending: Iterator[tuple[int, Example]] = iter(enumerate(examples))
    finished: dict[int, QuestionResult | SkippedQuestion] = {}
    matched = 0

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    async def worker() -> None:
        nonlocal matched
        for position, example in pending:
            if cancelled():
                return
            outcome = await _score(position, example, predict, db_path_for, timeout)
            finished[position] = outcome
            matched += isinstance(outcome, QuestionResult) and outcome.match
            if progress is not None:
                progress(Progress(len(finished), total, matched, outcome))

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, max(total, 1)))]
    try:
        while True:
            done, running = await asyncio.wait(workers, timeout=0.05,
                                               return_when=asyncio.FIRST_EXCEPTION)
            failed = [task for task in done if not task.cancelled() and task.exception()]
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
            if not running:
                break
            if cancelled():
                break
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    ordered = [finished[key] for key in sorted(finished)]
    return EvalReport(
        rows=[item for item in ordered if isinstance(item, QuestionResult)],
        skipped=[item for item in ordered if isinstance(item, SkippedQuestion)],
        model=model, split=split, cancelled=cancelled() and len(finished) < total, total=total)
