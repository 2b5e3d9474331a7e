"""`sqltune eval`: execution accuracy of a model, or of a predictions file, on a split."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.commands._headless import CommandError
from tui.core.data.datasets import DatasetError, Example, SpiderDataset, load_dataset
from tui.core.evaluation.evaluate import (
    EvalReport,
    EvaluationError,
    Predictor,
    predictions_predictor,
)

if TYPE_CHECKING:
    from tui.core.evaluation.runner import ModelRun

EXIT_USAGE = 2


def read_predictions(path: Path) -> list[str]:
    """One SQL per line (Spider's format); a `SQL<TAB>db_id` line keeps the SQL part.

    A UTF-8 byte-order mark (Windows editors write one) is not part of the first SQL."""
    text = path.read_text(encoding="utf-8-sig")
    return [line.split("\t", 1)[0].strip() for line in text.splitlines()]


def _tell(result: ModelRun) -> None:
    """On stderr: a template that may not be the model's own, a run history did not keep."""
    if result.prompt.warning:
        print(f"sqltune eval: warning: {result.prompt.model}: {result.prompt.warning}",
              file=sys.stderr)
    if result.record_error is not None:  # the numbers are printed; history is a convenience
        print(f"sqltune eval: could not record the evaluation in history: "
              f"{result.record_error}", file=sys.stderr)


async def _run_model(args: argparse.Namespace, dataset: SpiderDataset,
                     examples: list[Example]) -> ModelRun:
    """Ask the model with its training template (core runner), scored and kept in history."""
    from tui.commands._headless import open_provider
    from tui.core.evaluation.runner import evaluate_model

    async with open_provider(args) as provider:
        return await evaluate_model(provider.client, args.model, dataset, examples,
                                    provider=provider.name, concurrency=args.concurrency)


def _db_path_for(dataset: SpiderDataset) -> Any:
    def db_path_for(example: Example) -> Path | None:
        return dataset.db_path(example.db_id)

    return db_path_for


def _summary(report: EvalReport) -> str:
    def share(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    lines = [f"questions scored {report.n}, skipped {len(report.skipped)}"
             + (" (cancelled)" if report.cancelled else ""),
             f"execution accuracy {share(report.execution_accuracy)}, "
             f"valid SQL {share(report.valid_sql_rate)}"]
    for level, numbers in report.by_hardness.items():
        lines.append(f"  {level:<8} n={numbers['n']:<5} EX {share(numbers['execution_accuracy'])}")
    if report.latency_p50_s is not None:
        lines.append(f"latency p50 {report.latency_p50_s:.3f} s, p95 {report.latency_p95_s:.3f} s")
        lines.append(f"tokens {report.prompt_tokens} in, {report.completion_tokens} out")
    if report.cost_per_question_usd is not None:
        lines.append(f"cost ${report.cost_per_question_usd:.6f} per question")
    prompt = report.prompt_template
    if prompt is not None:
        lines.append(f"prompt template {prompt['name']} ({prompt['fingerprint']}, "
                     f"{prompt['source']})" + (f": {prompt['warning']}"
                                              if prompt.get("warning") else ""))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the report (one JSON object with --json); exit 2 on unusable input."""
    if args.concurrency < 1 or (args.limit is not None and args.limit < 0):
        return _fail(args, "--concurrency must be >= 1 and --limit >= 0")
    try:
        dataset = load_dataset(args.dir, args.split)
    except DatasetError as error:
        return _fail(args, str(error))
    examples = dataset.examples if args.limit is None else dataset.examples[: args.limit]
    try:
        if args.predictions is not None:
            try:
                lines = read_predictions(args.predictions)
            except (OSError, UnicodeDecodeError) as error:
                return _fail(args, f"cannot read predictions: {error}")
            if args.limit is None and len(lines) != len(dataset.examples):
                return _fail(args, f"{args.predictions} has {len(lines)} lines but split "
                                   f"{args.split!r} has {len(dataset.examples)} questions")
            report = asyncio.run(_run_file(dataset, examples, lines, args.concurrency))
        else:
            result = asyncio.run(_run_model(args, dataset, examples))
            _tell(result)
            report = result.report
    except EvaluationError as error:
        return _fail(args, str(error), code=1)
    except CommandError as error:  # no provider (exit 2), or the local server did not start (1)
        from tui.core.provider.providers import redact

        return _fail(args, redact(str(error)), code=error.code)
    # The numbers are printed whatever happens to --out: a failed export loses nothing.
    print(json.dumps(report.to_json()) if args.json else _summary(report))
    if args.out is not None:
        try:
            report.write(args.out)
        except OSError as error:
            print(f"sqltune eval: cannot write {args.out}: {error.strerror or error}",
                  file=sys.stderr)
            return 1
    return 0


async def _run_file(dataset: SpiderDataset, examples: list[Example], lines: list[str],
                    concurrency: int) -> EvalReport:
    from tui.core.evaluation.evaluate import evaluate

    predict: Predictor = predictions_predictor(examples, lines)
    return await evaluate(examples, predict=predict, db_path_for=_db_path_for(dataset),
                          concurrency=concurrency, split=dataset.split)


def _fail(args: argparse.Namespace, message: str, code: int = EXIT_USAGE) -> int:
    if args.json:
        print(json.dumps({"error": {"type": "usage" if code == EXIT_USAGE else "evaluation",
                                    "message": message}}))
    else:
        print(f"sqltune eval: {message}", file=sys.stderr)
    return code
