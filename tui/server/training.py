"""What a job needs around the engine: validated examples, token counts and result files."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.core.budget import tokens
from tui.server.engines import ChatExample, EngineError, ModelTokens

MIN_EXAMPLES = 10
"""OpenAI refuses training files with fewer examples."""
RESULT_COLUMNS = ("step", "train_loss", "train_accuracy", "valid_loss",
                  "valid_mean_token_accuracy", "full_valid_loss",
                  "full_valid_mean_token_accuracy")
"""Columns of the results CSV (OpenAI's step_metrics.csv plus the full-validation pair)."""


class JobFailed(Exception):
    """A job cannot go on; ``code``/``param`` become the job's ``error`` object."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        """OpenAI error code, e.g. ``invalid_training_file``."""
        self.message = message
        """What went wrong, naming the example when it is the data's fault."""
        self.param = param
        """``training_file`` or ``validation_file`` when one of them is at fault."""

    def error(self) -> dict[str, Any]:
        """The job's ``error`` object."""
        return {"code": self.code, "message": self.message, "param": self.param}


@dataclass
class Dataset:
    """A validated file's examples and what they cost."""

    examples: list[ChatExample]
    """One per JSONL line."""
    tokens: int
    """Billable tokens in one pass over the file."""


def parse_examples(data: bytes) -> list[tuple[int, ChatExample]]:
    """(line number, example) of each non-blank line of a validated JSONL, numbered as the
    validator numbers them (lines end at ``\n`` only; a leading byte order mark is dropped)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return [(number, ChatExample(messages=json.loads(line)["messages"]))
            for number, line in enumerate(data.split(b"\n"), start=1) if line.strip()]


def validate_file(path: Path, file_id: str, model: str, *, param: str,
                  counter: ModelTokens | None = None) -> Dataset:
    """Validate an uploaded JSONL with the shared validator; raise JobFailed naming the example.

    The file is read once. With ``counter`` (a real base model) tokens are the model's own and
    an example longer than its context is an error; otherwise they are tiktoken's, capped at the
    OpenAI context.
    """
    from tui.core.data.jsonl import validate_bytes
    from tui.core.data.jsonl_rules import openai_error_message

    kind = "training" if param == "training_file" else "validation"
    minimum = MIN_EXAMPLES if param == "training_file" else 1
    data = path.read_bytes()
    # Tokens are counted once, below: the validator's count would only add warnings.
    report = validate_bytes(data, model, min_examples=minimum, count_tokens=False)
    if report.errors:
        first = report.errors[0]
        if first.code == "too_few_examples":
            code = "invalid_n_examples"
            message = first.message if param == "training_file" else \
                f"The validation file ({file_id}) has no examples"
        else:
            code = f"invalid_{kind}_file"
            more = len(report.errors) - 1 + report.omitted_errors
            tail = f" ({more} more problem{'s' if more != 1 else ''} in the file)" if more else ""
            message = (f"The job failed due to an invalid {kind} file ({file_id}). "
                       f"{openai_error_message(first)}{tail}")
        raise JobFailed(code, message, param)
    lines = parse_examples(data)
    examples = [example for _number, example in lines]
    if counter is not None:
        return Dataset(examples, _count_own(counter, examples, [n for n, _ in lines], file_id,
                                            kind))
    encoding = tokens.get_encoding(tokens.encoding_for_model(model).name)
    limit = tokens.context_limit(model)
    total = sum(min(limit, tokens.count_message_tokens(example.messages, encoding))
                for example in examples)
    return Dataset(examples, total)


def _count_own(counter: ModelTokens, examples: list[ChatExample], numbers: list[int],
               file_id: str, kind: str) -> int:
    """Sum of the model's own token counts; the first example over its context fails the job."""
    total = 0
    for number, example in zip(numbers, examples, strict=True):
        where = f"The job failed due to an invalid {kind} file ({file_id}). Invalid file format. "
        try:
            count = counter.count(example.messages)
        except EngineError as error:
            raise JobFailed(f"invalid_{kind}_file", f"{where}Example {number}: {error}",
                            f"{kind}_file") from None
        if count > counter.context_length:
            raise JobFailed(f"invalid_{kind}_file",
                            f"{where}Example {number}: the example has {count:,} tokens, over "
                            f"the maximum of {counter.context_length:,} tokens per example "
                            f"(the context length of {counter.model})", f"{kind}_file")
        total += count
    return total


def metrics_data(step: Any) -> dict[str, Any]:
    """The ``data`` of a metrics event, from an engine's StepMetrics."""
    return {"step": step.step, "total_steps": step.total_steps,
            "train_loss": step.train_loss,
            "train_mean_token_accuracy": step.train_mean_token_accuracy,
            "valid_loss": step.valid_loss,
            "valid_mean_token_accuracy": step.valid_mean_token_accuracy,
            "full_valid_loss": step.full_valid_loss,
            "full_valid_mean_token_accuracy": step.full_valid_mean_token_accuracy}


def step_message(data: dict[str, Any]) -> str:
    """OpenAI's wording: ``Step 12/300: training loss=0.84, validation loss=0.91``."""
    text = f"Step {data['step']}/{data['total_steps']}: training loss={data['train_loss']:.2f}"
    if data.get("valid_loss") is not None:
        text += f", validation loss={data['valid_loss']:.2f}"
    if data.get("full_valid_loss") is not None:
        text += f", full validation loss={data['full_valid_loss']:.2f}"
    return text


def checkpoint_metrics(data: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's ``metrics``: the step's numbers, absent ones left out."""
    keys = ("train_loss", "train_mean_token_accuracy", "valid_loss",
            "valid_mean_token_accuracy", "full_valid_loss", "full_valid_mean_token_accuracy")
    out: dict[str, Any] = {"step": float(data["step"])}
    out.update({key: data[key] for key in keys if data.get(key) is not None})
    return out


def results_csv(rows: list[dict[str, Any]]) -> bytes:
    """The per-step results file; a step run twice (after a restart) keeps its last numbers."""
    by_step = {int(row["step"]): row for row in rows}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RESULT_COLUMNS)
    for step in sorted(by_step):
        row = by_step[step]
        writer.writerow([step, *(_cell(row.get(key)) for key in (
            "train_loss", "train_mean_token_accuracy", "valid_loss", "valid_mean_token_accuracy",
            "full_valid_loss", "full_valid_mean_token_accuracy"))])
    return out.getvalue().encode("utf-8")


def _cell(value: Any) -> str:
    return "" if value is None else f"{float(value):.6g}"
