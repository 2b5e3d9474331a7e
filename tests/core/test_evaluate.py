"""Evaluation end to end on the local server: a demo-tuned model against its base model."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from tests.demo_entries import demo_entries
from tests.eval_support import BASE, tree_digest, tune_demo_model
from tui.core.data.datasets import Example, SpiderDataset, load_dataset
from tui.core.data.prompts import DEFAULT_TEMPLATE, messages_for
from tui.core.data.schema import SchemaCache
from tui.core.evaluation.components import hardness
from tui.core.evaluation.evaluate import (
    EvalReport,
    EvaluationError,
    Prediction,
    Predictor,
    Progress,
    QuestionResult,
    evaluate,
    model_predictor,
    predictions_predictor,
)
from tui.core.inference.ask import ask_for_sql
from tui.core.paths import demo_dir
from tui.core.sql.matching import order_matters, results_match
from tui.core.sql.sqlexec import QueryError, run_readonly
from tui.server.inprocess import LocalServer, start_local_server

LEVELS = ("easy", "medium", "hard", "extra")
REQUIRED = ("n", "execution_accuracy", "by_hardness", "valid_sql_rate", "latency_p50_s",
            "latency_p95_s", "prompt_tokens", "completion_tokens", "cost_per_question_usd")


@pytest.fixture(scope="module")
def dev() -> SpiderDataset:
    return load_dataset(demo_dir(), "dev")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with start_local_server(tmp_path_factory.mktemp("server"), speed="max") as running:
        yield running


@pytest.fixture(scope="module")
def tuned(server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    return tune_demo_model(server, tmp_path_factory.mktemp("train"))


def _db(dataset: SpiderDataset) -> Callable[[Example], Path | None]:
    return lambda example: dataset.db_path(example.db_id)


async def _run(server: LocalServer, model: str, dataset: SpiderDataset, *,
               concurrency: int = 4, sdk_retries: int = 2,
               progress: list[Progress] | None = None,
               calls: Counter[tuple[str, int]] | None = None) -> EvalReport:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key,
                                  max_retries=sdk_retries) as client:
        predict = model_predictor(client, model, db_path_for=_db(dataset))
        if calls is not None:
            predict = _counting(predict, calls)
        return await evaluate(dataset.examples, predict=predict, db_path_for=_db(dataset),
                              concurrency=concurrency, model=model, split=dataset.split,
                              progress=None if progress is None else progress.append)


def _counting(predict: Predictor, calls: Counter[tuple[str, int]]) -> Predictor:
    async def counted(example: Example) -> Prediction:
        calls[(example.source, example.index)] += 1
        return await predict(example)

    return counted


def _check_shape(report: EvalReport, total: int) -> dict[str, object]:
    data = json.loads(json.dumps(report.to_json()))  # what --json prints, as JSON
    assert all(key in data for key in REQUIRED)
    assert data["n"] == total and data["total"] == total and data["skipped"] == 0
    assert set(data["by_hardness"]) == set(LEVELS)
    assert sum(level["n"] for level in data["by_hardness"].values()) == total
    for name in ("execution_accuracy", "valid_sql_rate", "latency_p50_s", "latency_p95_s",
                 "cost_per_question_usd"):
        assert isinstance(data[name], float), name
    assert 0 < data["latency_p50_s"] <= data["latency_p95_s"]
    assert data["prompt_tokens"] > 0 and data["completion_tokens"] > 0
    assert data["cost_per_question_usd"] == pytest.approx(data["cost_usd"] / total)
    assert [row.index for row in report.rows] == list(range(total))
    return data


async def test_tuned_model_beats_its_base_on_real_execution(
        server: LocalServer, tuned: str, dev: SpiderDataset) -> None:
    databases = demo_dir() / "database"
    before = tree_digest(databases)
    progress: list[Progress] = []
    base = await _run(server, BASE, dev)
    mine = await _run(server, tuned, dev, progress=progress)
    total = len(dev.examples)
    base_json, mine_json = _check_shape(base, total), _check_shape(mine, total)
    # Same questions, same prompts: the same input tokens were billed for both models.
    assert base_json["prompt_tokens"] == mine_json["prompt_tokens"]
    assert mine.model == tuned and mine.split == "dev"
    assert mine.execution_accuracy is not None and base.execution_accuracy is not None
    assert mine.execution_accuracy > base.execution_accuracy
    assert tree_digest(databases) == before  # model-written SQL changed nothing

    # Progress: one report per question, in completion order, with the running match count.
    assert [p.done for p in progress] == list(range(1, total + 1))
    assert progress[-1].matched == sum(row.match for row in mine.rows)
    assert sorted(p.last.index for p in progress) == list(range(total))

    # EX really comes from execution: rerun gold and predicted SQL for every question.
    for row, example in zip(mine.rows, dev.examples, strict=True):
        assert (row.gold, row.db_id, row.hardness) == (example.query, example.db_id,
                                                       hardness(example.query))
        db = dev.db_path(example.db_id)
        assert db is not None
        gold = run_readonly(db, example.query, timeout=10, max_rows=100_000)
        try:
            predicted = run_readonly(db, row.predicted, timeout=10, max_rows=100_000)
        except QueryError as error:
            assert not row.match and row.error_type == error.type
            continue
        assert row.valid_sql
        assert row.match == results_match(gold.rows, predicted.rows,
                                          ordered=order_matters(example.query)), row
    assert mine.execution_accuracy == sum(row.match for row in mine.rows) / total
    for level in LEVELS:
        rows = [row for row in mine.rows if row.hardness == level]
        expected = sum(row.match for row in rows) / len(rows) if rows else None
        assert mine.by_hardness[level] == {"n": len(rows), "execution_accuracy": expected}
    assert 0 < sum(row.match for row in mine.rows) < total  # the check above saw both kinds

    # The SQL scored is the SQL the model gives for the training prompt.
    cache = SchemaCache()
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key) as client:
        for row in mine.rows[::12]:
            db = dev.db_path(row.db_id)
            assert db is not None
            messages = messages_for(DEFAULT_TEMPLATE, cache, db, row.question)
            answer = await ask_for_sql(client, tuned, messages)
            assert answer.sql == row.predicted


async def test_429s_are_waited_out_and_every_question_is_scored_once(
        server: LocalServer, dev: SpiderDataset, tmp_path: Path) -> None:
    clean = await _run(server, BASE, dev)
    calls: Counter[tuple[str, int]] = Counter()
    progress: list[Progress] = []
    with start_local_server(tmp_path / "busy", speed="max",
                            faults="429=0.3,seed=5,retry_after_ms=5") as busy:
        # The client retries nothing: model_predictor's own SDK budget absorbs every 429.
        report = await _run(busy, BASE, dev, concurrency=8, sdk_retries=0,
                            progress=progress, calls=calls)
        injected = busy.faults_injected["429"]
    total = len(dev.examples)
    assert injected >= 5
    assert report.n == total and not report.skipped and not report.cancelled
    assert not [row for row in report.rows if row.error_type]
    assert set(calls.values()) == {1} and len(calls) == total
    assert sorted(p.last.index for p in progress) == list(range(total))
    assert [(r.predicted, r.match) for r in report.rows] == \
        [(r.predicted, r.match) for r in clean.rows]


async def test_unknown_model_stops_the_run(server: LocalServer, dev: SpiderDataset) -> None:
    with pytest.raises(EvaluationError, match="nobody"):
        await _run(server, "ft:gpt-4.1-mini-2025-04-14:nobody::gone", dev)


@pytest.fixture
def partial(tmp_path: Path) -> Path:
    """The demo dev split with clinic's database removed and one gold query that fails."""
    root = tmp_path / "partial"
    (root / "database").mkdir(parents=True)
    for name in ("tables.json",):
        shutil.copy(demo_dir() / name, root / name)
    for db_id in ("bookshop", "airline", "university"):
        shutil.copytree(demo_dir() / "database" / db_id, root / "database" / db_id)
    entries: list[dict[str, str]] = demo_entries("dev")
    entries.insert(3, {"db_id": "bookshop", "question": "Broken gold?",
                       "query": "SELECT no_such_column FROM book"})
    (root / "dev.json").write_text(json.dumps(entries), encoding="utf-8")
    return root


async def test_missing_databases_and_failing_gold_are_skipped(partial: Path) -> None:
    dataset = load_dataset(partial, "dev")
    before = tree_digest(partial)
    examples = dataset.examples
    predictions = [example.query for example in examples]
    predictions[0] = "SELECT count(*) FROM author WHERE 0"  # one wrong, still valid SQL
    predictions[1] = "SELECT FROM"  # one invalid
    report = await evaluate(examples, predict=predictions_predictor(examples, predictions),
                            db_path_for=_db(dataset), concurrency=3, split="dev")
    clinic = [i for i, e in enumerate(examples) if e.db_id == "clinic"]
    assert len(clinic) == 12
    assert [s.index for s in report.skipped if s.reason == "missing_database"] == clinic
    assert [(s.index, s.reason) for s in report.skipped if s.reason != "missing_database"] == \
        [(3, "gold_failed")]
    broken = next(s for s in report.skipped if s.reason == "gold_failed")
    assert broken.message.startswith("schema_error") and "no_such_column" in broken.message
    assert report.n == len(examples) - 13 and report.total == len(examples)
    assert {row.index for row in report.rows}.isdisjoint({*clinic, 3})
    assert [row.match for row in report.rows[:2]] == [False, False]
    assert report.rows[1].error_type == "syntax_error" and report.rows[0].error is None
    assert all(row.match for row in report.rows[2:])
    assert report.valid_sql_rate == pytest.approx((report.n - 1) / report.n)
    assert report.latency_p50_s is None and report.cost_per_question_usd is None
    data = report.to_json()
    assert data["skipped"] == 13
    assert data["skipped_reasons"] == {"missing_database": 12, "gold_failed": 1}
    assert not (partial / "database" / "clinic").exists()
    assert tree_digest(partial) == before


def test_predictions_must_cover_the_split(dev: SpiderDataset) -> None:
    with pytest.raises(EvaluationError, match="49 predictions for 50 questions"):
        predictions_predictor(dev.examples, ["SELECT 1"] * 49)


async def test_cancel_keeps_the_finished_questions(dev: SpiderDataset) -> None:
    stop = threading.Event()
    seen: list[Progress] = []

    def progress(update: Progress) -> None:
        seen.append(update)
        if update.done == 10:
            stop.set()

    async def slow(example: Example) -> Prediction:
        await asyncio.sleep(0.01)
        return Prediction(sql=example.query)

    report = await evaluate(dev.examples, predict=slow, db_path_for=_db(dev), concurrency=2,
                            progress=progress, cancel=stop)
    assert report.cancelled and report.total == len(dev.examples)
    assert 10 <= report.n < len(dev.examples)
    assert report.n == len(seen) and all(isinstance(p.last, QuestionResult) for p in seen)
    assert report.execution_accuracy == 1.0


async def test_skipped_questions_never_reach_the_model(server: LocalServer, partial: Path) -> None:
    dataset = load_dataset(partial, "dev")
    before = tree_digest(partial)
    calls: Counter[tuple[str, int]] = Counter()
    report = await _run(server, BASE, dataset, calls=calls)
    asked = {(dataset.examples[row.index].source, dataset.examples[row.index].index)
             for row in report.rows}
    assert len(report.skipped) == 13 and report.n == len(dataset.examples) - 13
    assert set(calls) == asked and set(calls.values()) == {1}  # no tokens spent on skips
    assert report.prompt_tokens > 0 and report.cost_per_question_usd is not None
    assert not (partial / "database" / "clinic").exists()
    assert tree_digest(partial) == before
