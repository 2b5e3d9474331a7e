"""An evaluation's numbers (EX overall and by hardness, validity, latency, cost) and exports."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tui.core.evaluation.hardness import LEVELS


@dataclass(frozen=True)
class QuestionResult:
    """One scored question."""

    index: int
    """Position in the evaluated split."""
    db_id: str
    """Its database."""
    question: str
    """The question."""
    gold: str
    """Gold SQL."""
    predicted: str
    """The SQL that was run for the prediction ("" when the model gave none)."""
    hardness: str
    """easy, medium, hard, extra (or unknown when the gold SQL does not parse)."""
    match: bool
    """Execution match (Spider's EX)."""
    error: str | None = None
    """Why the prediction failed: "type: message" from the executor or the model call."""
    error_type: str | None = None
    """The error's type alone (syntax_error, timeout, rate_limited, ...)."""
    latency_s: float | None = None
    """Seconds the model took (None for a predictions file)."""
    prompt_tokens: int = 0
    """Input tokens of the model call."""
    completion_tokens: int = 0
    """Output tokens of the model call."""
    cost_usd: float | None = None
    """Dollars for the model call (None when not priced or not called)."""

    @property
    def valid_sql(self) -> bool:
        """The prediction ran without error (whatever its result)."""
        return self.error is None


@dataclass(frozen=True)
class SkippedQuestion:
    """A question that was reported but never scored."""

    index: int
    """Position in the evaluated split."""
    db_id: str
    """Its database."""
    question: str
    """The question."""
    reason: str
    """missing_database, or gold_failed when the gold SQL itself does not run."""
    message: str = ""
    """Details (the gold query's error, the path that was looked for)."""


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class EvalReport:
    """Everything an evaluation measured; `to_json()` is what `sqltune eval --json` prints."""

    rows: list[QuestionResult]
    """Scored questions, in split order."""
    skipped: list[SkippedQuestion] = field(default_factory=list)
    """Questions reported but not scored."""
    model: str | None = None
    """The model evaluated (None for a predictions file)."""
    split: str | None = None
    """The split evaluated."""
    cancelled: bool = False
    """True when the run was cancelled: the numbers cover the questions finished before."""
    total: int = 0
    """Questions the run set out to evaluate (scored + skipped + not reached)."""
    prompt_template: dict[str, Any] | None = None
    """The template a model was asked with (lineage.PromptChoice.to_json()); None for a
    predictions file."""

    @property
    def n(self) -> int:
        """Scored questions."""
        return len(self.rows)

    @property
    def execution_accuracy(self) -> float | None:
        """Share of scored questions whose prediction matches (None when nothing was scored)."""
        return _share(sum(row.match for row in self.rows), self.n)

    @property
    def valid_sql_rate(self) -> float | None:
        """Share of predictions that executed without error."""
        return _share(sum(row.valid_sql for row in self.rows), self.n)

    @property
    def by_hardness(self) -> dict[str, dict[str, Any]]:
        """{level: {n, execution_accuracy}} for Spider's four levels (plus unknown if any)."""
        levels = list(LEVELS) + (["unknown"] if any(r.hardness not in LEVELS
                                                     for r in self.rows) else [])
        result: dict[str, dict[str, Any]] = {}
        for level in levels:
            rows = [row for row in self.rows if (row.hardness == level) or (
                level == "unknown" and row.hardness not in LEVELS)]
            result[level] = {"n": len(rows),
                             "execution_accuracy": _share(sum(r.match for r in rows), len(rows))}
        return result

    @property
    def latencies(self) -> list[float]:
        """Model-call latencies of the scored questions."""
        return [row.latency_s for row in self.rows if row.latency_s is not None]

    @property
    def latency_p50_s(self) -> float | None:
        """Median seconds per model call (None for a predictions file)."""
        return percentile(self.latencies, 0.5)

    @property
    def latency_p95_s(self) -> float | None:
        """95th percentile seconds per model call."""
        return percentile(self.latencies, 0.95)

    @property
    def prompt_tokens(self) -> int:
        """Input tokens over all model calls."""
        return sum(row.prompt_tokens for row in self.rows)

    @property
    def completion_tokens(self) -> int:
        """Output tokens over all model calls."""
        return sum(row.completion_tokens for row in self.rows)

    @property
    def cost_usd(self) -> float | None:
        """Dollars over all model calls; None when no call was priced."""
        costs = [row.cost_usd for row in self.rows if row.cost_usd is not None]
        return sum(costs) if costs else None

    @property
    def cost_per_question_usd(self) -> float | None:
        """Dollars per scored question (None when unpriced or no model was called)."""
        cost = self.cost_usd
        return None if cost is None or not self.n else cost / self.n

    @property
    def seconds_per_question(self) -> float | None:
        """Mean model latency (the s/question column of the comparison table)."""
        latencies = self.latencies
        return sum(latencies) / len(latencies) if latencies else None

    def to_json(self, *, include_rows: bool = False) -> dict[str, Any]:
        """Summary numbers (and the per-question rows when asked) as one JSON object."""
        data: dict[str, Any] = {
            "model": self.model, "split": self.split,
            "n": self.n, "execution_accuracy": self.execution_accuracy,
            "by_hardness": self.by_hardness, "valid_sql_rate": self.valid_sql_rate,
            "latency_p50_s": self.latency_p50_s, "latency_p95_s": self.latency_p95_s,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd, "cost_per_question_usd": self.cost_per_question_usd,
            "seconds_per_question": self.seconds_per_question,
            "skipped": len(self.skipped),
            "skipped_reasons": _count(skip.reason for skip in self.skipped),
            "skipped_questions": [asdict(skip) for skip in self.skipped],
            "errors": _count(row.error_type for row in self.rows if row.error_type),
            "cancelled": self.cancelled, "total": self.total,
        }
        if self.prompt_template is not None:
            data["prompt_template"] = self.prompt_template
        if include_rows:
            data["rows"] = [self.row_dict(row) for row in self.rows]
        return data

    @staticmethod
    def row_dict(row: QuestionResult) -> dict[str, Any]:
        """One per-question row for CSV and JSON export."""
        return {**asdict(row), "valid_sql": row.valid_sql}

    def write(self, path: Path) -> None:
        """Export per-question rows: CSV for a .csv path, otherwise JSON (summary + rows)."""
        path = Path(path)
        if path.suffix.lower() == ".csv":
            columns = list(self.row_dict(self.rows[0]) if self.rows else _ROW_COLUMNS)
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                for row in self.rows:
                    writer.writerow(self.row_dict(row))
        else:
            path.write_text(json.dumps(self.to_json(include_rows=True), indent=2,
                                       ensure_ascii=False) + "\n", encoding="utf-8")


_ROW_COLUMNS = [*QuestionResult.__dataclass_fields__, "valid_sql"]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts
