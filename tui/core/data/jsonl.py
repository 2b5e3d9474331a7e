"""Chat-format JSONL: an atomic streaming writer with a validation split, and OpenAI's checks."""

from __future__ import annotations

import io
import json
import os
import random
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tui.core.data.jsonl_rules import (
    MIN_EXAMPLES,
    ExampleTokens,
    Issue,
    check_example,
    openai_error_message,
)
from tui.core.models import DEFAULT_MODEL

__all__ = [
    "MIN_EXAMPLES",
    "ChatExample",
    "ExampleTokens",
    "Issue",
    "ValidationReport",
    "ValidationSplit",
    "WriteResult",
    "default_token_check",
    "openai_error_message",
    "validate_bytes",
    "validate_jsonl",
    "validate_stream",
    "write_chat_jsonl",
]

MAX_ISSUES = 100
"""Errors (and, separately, warnings) kept in a report; the rest are only counted."""


# ---------------------------------------------------------------- writing


@dataclass(frozen=True)
class ChatExample:
    """One training example: its chat messages and the database it is about (not written)."""

    messages: Sequence[Mapping[str, Any]]
    """The chat messages, written as ``{"messages": [...]}``."""
    db_id: str = ""
    """Used to route the example to the validation split by database."""


@dataclass(frozen=True)
class ValidationSplit:
    """How to carve a validation file out of the examples."""

    fraction: float = 0.0
    """Share of examples sent to validation (seeded, exact when the examples have a length)."""
    db_ids: frozenset[str] = frozenset()
    """Databases whose examples all go to validation."""
    seed: int = 0
    """Seed of the fraction draw."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction < 1.0:
            raise ValueError("validation fraction must be at least 0 and below 1")

    @property
    def active(self) -> bool:
        """Whether anything can go to validation."""
        return self.fraction > 0 or bool(self.db_ids)


@dataclass(frozen=True)
class WriteResult:
    """What ``write_chat_jsonl`` wrote."""

    path: Path
    """The training file."""
    examples: int
    """Lines in the training file."""
    bytes: int
    """Size of the training file."""
    validation_path: Path | None = None
    """The validation file, when one was asked for."""
    validation_examples: int = 0
    """Lines in the validation file."""


def _dump(messages: Sequence[Mapping[str, Any]]) -> bytes:
    text = json.dumps({"messages": list(messages)}, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


class _AtomicFile:
    """A temp file beside the target, renamed over it on commit, removed on failure."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                    dir=self.path.parent)
        self.temp = Path(name)
        self.file: IO[bytes] = os.fdopen(fd, "wb", buffering=1 << 20)
        self.lines = 0
        self.size = 0

    def write(self, line: bytes) -> None:
        self.file.write(line)
        self.lines += 1
        self.size += len(line)

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        try:  # keep the mode of a file being replaced; new files get the usual 0644
            mode = self.path.stat().st_mode & 0o777
        except OSError:
            mode = 0o644
        os.chmod(self.temp, mode)
        os.replace(self.temp, self.path)

    def abort(self) -> None:
        self.file.close()
        self.temp.unlink(missing_ok=True)


def write_chat_jsonl(path: Path, examples: Iterable[ChatExample | Sequence[Mapping[str, Any]]],
                     *, validation: ValidationSplit | None = None,
                     validation_path: Path | None = None) -> WriteResult:
    """Stream examples to ``path`` as chat JSONL, atomically (temp file + rename).

    With ``validation`` and ``validation_path``, examples of ``validation.db_ids`` and a seeded
    ``validation.fraction`` of the others go to the validation file instead. Neither file is
    replaced unless both are written completely.
    """
    if validation is not None and validation.active and validation_path is None:
        raise ValueError("a validation split needs a validation_path to write it to")
    split = validation if validation is not None and validation_path is not None else None
    pick = _fraction_picker(examples, split) if split is not None else None
    train = _AtomicFile(path)
    valid = _AtomicFile(validation_path) if split is not None and validation_path else None
    try:
        for position, item in enumerate(examples):
            example = item if isinstance(item, ChatExample) else ChatExample(item)
            line = _dump(example.messages)
            to_valid = valid is not None and split is not None and (
                example.db_id in split.db_ids or (pick is not None and pick(position)))
            (valid if to_valid and valid is not None else train).write(line)
    except BaseException:
        train.abort()
        if valid is not None:
            valid.abort()
        raise
    if valid is not None:
        valid.commit()
    train.commit()
    return WriteResult(train.path, train.lines, train.size,
                       valid.path if valid else None, valid.lines if valid else 0)


def _fraction_picker(examples: Iterable[Any],
                     split: ValidationSplit) -> Callable[[int], bool] | None:
    if split.fraction <= 0:
        return None
    rng = random.Random(split.seed)
    if isinstance(examples, Collection):
        # An exact, seeded share when the total is known (db-routed ones may also be drawn).
        count = round(len(examples) * split.fraction)
        chosen = set(rng.sample(range(len(examples)), count))
        return chosen.__contains__
    return lambda _position: rng.random() < split.fraction


# ---------------------------------------------------------------- validation

TokenCheck = Callable[[Sequence[Mapping[str, Any]]], int]
"""Counts the tokens of one example's messages (per-message overhead included)."""


@dataclass
class ValidationReport:
    """Everything wrong with a chat JSONL, as OpenAI would see it."""

    ok: bool
    """True when there are no errors (warnings allowed)."""
    examples: int
    """Non-blank lines (what OpenAI counts as examples)."""
    errors: list[Issue] = field(default_factory=list)
    """Errors, first ``MAX_ISSUES`` of them."""
    warnings: list[Issue] = field(default_factory=list)
    """Warnings (e.g. over the model's context), first ``MAX_ISSUES`` of them."""
    omitted_errors: int = 0
    """Errors found beyond the cap."""
    omitted_warnings: int = 0
    """Warnings found beyond the cap."""
    model: str = ""
    """The model the file was checked for."""
    context_limit: int | None = None
    """Per-example token limit used for the over-context warning (None: not checked)."""
    max_example_tokens: int | None = None
    """Tokens of the longest valid example (None: not counted)."""
    total_tokens: int | None = None
    """Tokens of all valid examples together (None: not counted)."""
    note: str | None = None
    """About the token counts (e.g. an unknown model's fallback encoding)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``sqltune validate --json`` prints)."""
        return {
            "ok": self.ok, "examples": self.examples,
            "errors": [issue.to_dict() for issue in self.errors],
            "warnings": [issue.to_dict() for issue in self.warnings],
            "omitted_errors": self.omitted_errors, "omitted_warnings": self.omitted_warnings,
            "model": self.model, "context_limit": self.context_limit,
            "max_example_tokens": self.max_example_tokens, "total_tokens": self.total_tokens,
            "note": self.note,
        }

    def first_error_message(self) -> str | None:
        """The first error in OpenAI's wording, for a server's error body."""
        return openai_error_message(self.errors[0]) if self.errors else None


def default_token_check(model: str) -> tuple[TokenCheck, int, str | None] | None:
    """(counter, context limit, note) from tui.core.budget.tokens, or None when it cannot load."""
    try:
        from tui.core.budget import tokens
        choice = tokens.encoding_for_model(model)
        counter = tokens.TokenCounter(tokens.get_encoding(choice.name))
        return counter.count, tokens.context_limit(model), choice.note
    except Exception:  # any tokenizer failure only disables the optional context check
        return None


class _Collector:
    def __init__(self, max_issues: int) -> None:
        self.max_issues = max_issues
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []
        self.omitted_errors = 0
        self.omitted_warnings = 0

    def add(self, issue: Issue) -> None:
        if issue.severity == "warning":
            if len(self.warnings) < self.max_issues:
                self.warnings.append(issue)
            else:
                self.omitted_warnings += 1
        elif len(self.errors) < self.max_issues:
            self.errors.append(issue)
        else:
            self.omitted_errors += 1


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(stream, start=1):
        yield number, raw.rstrip(b"\n").rstrip(b"\r")


def validate_stream(stream: IO[bytes], model: str = DEFAULT_MODEL, *,
                    token_check: TokenCheck | None = None, context: int | None = None,
                    count_tokens: bool = True, max_issues: int = MAX_ISSUES,
                    min_examples: int = MIN_EXAMPLES) -> ValidationReport:
    """Validate chat JSONL read from a binary stream; see ``validate_jsonl``."""
    note = None
    if token_check is None and count_tokens:
        found = default_token_check(model)
        if found is not None:
            token_check, default_context, note = found
            context = context if context is not None else default_context
    collector = _Collector(max_issues)
    examples = 0
    totals = ExampleTokens()
    for number, line in _lines(stream):
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
            collector.add(Issue(1, "byte_order_mark", "the file starts with a UTF-8 byte order "
                                "mark; it was ignored", None, "warning"))
        if line.strip():
            examples += 1
        for issue in check_example(number, line, token_check, context, totals):
            collector.add(issue)
    if examples < min_examples:
        collector.add(Issue(0, "too_few_examples",
                            f"Training file has {examples} example(s), but must have at least "
                            f"{min_examples} examples", None))
    counted = token_check is not None
    return ValidationReport(
        ok=not collector.errors, examples=examples, errors=collector.errors,
        warnings=collector.warnings, omitted_errors=collector.omitted_errors,
        omitted_warnings=collector.omitted_warnings, model=model,
        context_limit=context if counted else None,
        max_example_tokens=totals.max_tokens if counted else None,
        total_tokens=totals.total if counted else None, note=note)


def validate_jsonl(path: Path, model: str = DEFAULT_MODEL, *,
                   token_check: TokenCheck | None = None, context: int | None = None,
                   count_tokens: bool = True, max_issues: int = MAX_ISSUES,
                   min_examples: int = MIN_EXAMPLES) -> ValidationReport:
    """Validate a chat JSONL file as OpenAI does for supervised fine-tuning.

    Reports every problem (line, stable code, field path, message) up to ``max_issues`` of
    each severity and keeps going after errors. Examples longer than the model's per-example
    context are warnings (they would be truncated). ``token_check`` and ``context`` replace
    the tokenizer and limit of tui.core.budget.tokens; ``count_tokens=False`` skips counting.
    Raises OSError when the file cannot be opened.
    """
    with open(path, "rb") as stream:
        return validate_stream(stream, model, token_check=token_check, context=context,
                               count_tokens=count_tokens, max_issues=max_issues,
                               min_examples=min_examples)


def validate_bytes(data: bytes, model: str = DEFAULT_MODEL, *,
                   token_check: TokenCheck | None = None, context: int | None = None,
                   count_tokens: bool = True, max_issues: int = MAX_ISSUES,
                   min_examples: int = MIN_EXAMPLES) -> ValidationReport:
    """Validate an uploaded file's bytes (the local server's check); see ``validate_jsonl``."""
    return validate_stream(io.BytesIO(data), model, token_check=token_check, context=context,
                           count_tokens=count_tokens, max_issues=max_issues,
                           min_examples=min_examples)
