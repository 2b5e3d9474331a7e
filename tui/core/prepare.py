"""Spider folder to counted chat examples and a fitted token budget (CLI prepare and the meter)."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tui.core.budget import DEFAULT_TOKEN_LIMIT, Budget, Epochs, Strategy, fit_to_budget
from tui.core.datasets import DatasetError, Example, SpiderDataset, check_gold, load_dataset
from tui.core.forkstream import ChildFailed, ChildStream, fork_available
from tui.core.jsonl import ChatExample, WriteResult, write_chat_jsonl
from tui.core.pricing import load_table
from tui.core.prompts import DEFAULT_TEMPLATE, TEMPLATES, Message, PromptTemplate, render_messages
from tui.core.schema import SchemaCache, SchemaError
from tui.core.sqlite_ro import MissingDatabase, connect_readonly
from tui.core.tokens import TokenCounter, encoding_for_model, get_encoding

GoldCheck = Literal["compile", "run", "off"]
GOLD_CHECKS = ("compile", "run", "off")
DEFAULT_MODEL = "gpt-4.1-mini-2025-04-14"

# Loader problems that take examples out of the training set (reason -> skip).
_SKIPPING_PROBLEMS = frozenset({"missing_database", "unreadable_database", "empty_database"})


class PrepareError(Exception):
    """The folder cannot be prepared at all (missing, no tables.json, no example files)."""


@dataclass(frozen=True)
class PrepareOptions:
    """Everything that decides which examples are kept and how they are counted."""

    model: str = DEFAULT_MODEL
    """Base (or fine-tuned) model: decides encoding, context limit and price."""
    epochs: Epochs = "auto"
    """A number of epochs, or "auto" for OpenAI's rule."""
    token_limit: int = DEFAULT_TOKEN_LIMIT
    """Per-job limit on trained tokens."""
    strategy: Strategy = "stratified"
    """How to choose the subset when everything does not fit."""
    seed: int = 0
    """Seed of the random strategy and of the validation draw."""
    split: str = "train"
    """Which split of the folder to prepare."""
    template: PromptTemplate = DEFAULT_TEMPLATE
    """How an example becomes chat messages."""
    template_name: str | None = "default"
    """Name of the preset the template came from (None when customised)."""
    gold_check: GoldCheck = "compile"
    """compile: SQLite compiles each gold query (EXPLAIN, fast); run: execute it; off."""
    gold_timeout: float = 5.0
    """Seconds per gold query when gold_check is "run"."""
    skip_empty_databases: bool = True
    """Leave out examples whose database has no rows (nothing to check their SQL against)."""
    validation_fraction: float = 0.0
    """Share of the usable examples held out for a validation file (seeded)."""
    validation_db_ids: frozenset[str] = frozenset()
    """Databases whose examples all go to validation."""

    parallel: bool = True
    """Read the databases in a forked helper process when that is safe (single-threaded)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.validation_fraction < 1.0:
            raise PrepareError("validation fraction must be at least 0 and below 1")
        if self.token_limit < 1:
            raise PrepareError("token limit must be a positive number of tokens")
        if self.gold_check not in GOLD_CHECKS:
            raise PrepareError(f"gold check must be one of {', '.join(GOLD_CHECKS)}")


@dataclass(frozen=True)
class Skipped:
    """Examples left out before counting, and why."""

    reason: str
    """missing_database, empty_database, unreadable_database, schema_error, gold_failed,
    gold_timeout or malformed_example."""
    db_id: str | None
    """The database concerned."""
    examples: int
    """How many examples this entry covers."""
    message: str
    """Human-readable explanation."""
    source: str | None = None
    """Example file, for a single example."""
    index: int | None = None
    """Index in that file, for a single example."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"reason": self.reason, "db_id": self.db_id, "examples": self.examples,
                "message": self.message, "source": self.source, "index": self.index}


@dataclass
class PrepareResult:
    """Counted examples, the fitted budget, and what was skipped."""

    root: Path
    """The dataset folder."""
    options: PrepareOptions
    """The options used."""
    loaded: int
    """Well-formed examples read from the split's files."""
    examples: list[Example]
    """Usable training examples, aligned with ``messages`` and ``tokens``."""
    messages: list[list[Message]]
    """Chat messages of each usable example."""
    tokens: list[int]
    """Exact chat-format tokens of each usable example."""
    budget: Budget
    """The fit of ``tokens`` into the token limit."""
    skipped: list[Skipped] = field(default_factory=list)
    """What was left out before counting."""
    validation: list[int] = field(default_factory=list)
    """Indices (into the loaded usable examples) held out for validation, not in ``examples``."""
    validation_messages: list[list[Message]] = field(default_factory=list)
    """Chat messages of the held-out validation examples."""
    validation_tokens: int = 0
    """Tokens of the validation examples (not part of trained tokens)."""
    warnings: list[str] = field(default_factory=list)
    """Problems that did not remove examples (unknown db_id in tables.json, ...)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per phase."""
    worker: str = "in-process"
    """Where the databases were read: "forked" (a helper process) or "in-process"."""

    @property
    def skipped_examples(self) -> int:
        """Examples left out before counting."""
        return sum(item.examples for item in self.skipped)

    def kept(self) -> Iterator[ChatExample]:
        """The kept training examples in dataset order, ready for write_chat_jsonl."""
        for i in self.budget.kept_indices:
            yield ChatExample(self.messages[i], self.examples[i].db_id)

    def write(self, out: Path, validation_out: Path | None = None) -> WriteResult:
        """Stream the kept examples (and the validation examples) as chat JSONL."""
        result = write_chat_jsonl(out, list(self.kept()))
        if validation_out is not None:
            extra = write_chat_jsonl(validation_out, self.validation_messages)
            result = WriteResult(result.path, result.examples, result.bytes,
                                 extra.path, extra.examples)
        return result

    def to_json(self, written: WriteResult | None = None) -> dict[str, Any]:
        """The object ``sqltune prepare --json`` prints."""
        budget = self.budget
        template = self.options.template
        prices = load_table()
        return {
            "dataset": str(self.root),
            "split": self.options.split,
            "model": budget.model,
            "encoding": budget.encoding,
            "encoding_note": budget.encoding_note,
            "context_limit": budget.context_limit,
            "template": self.options.template_name,
            "template_settings": template.to_dict(),
            "loaded": self.loaded,
            "examples": budget.examples,
            "kept": budget.kept,
            "dropped": budget.dropped,
            "epochs": budget.epochs,
            "epochs_setting": budget.epochs_setting,
            "token_limit": budget.token_limit,
            "strategy": budget.strategy,
            "seed": budget.seed,
            "tokens_per_epoch": budget.tokens_per_epoch,
            "trained_tokens": budget.trained_tokens,
            "total_tokens": budget.total_tokens,
            "fraction_of_limit": round(budget.fraction_of_limit, 6),
            "estimated_cost_usd": _money(budget.estimated_cost_usd),
            "costs_usd": {name: _money(cost) for name, cost in budget.costs_usd.items()},
            "pricing": {"as_of": prices.as_of, "source": prices.source, "note": prices.note},
            "max_example_tokens": budget.max_example_tokens,
            "mean_example_tokens": round(budget.mean_example_tokens, 1),
            "over_context": budget.over_context,
            "skipped_examples": self.skipped_examples,
            "skipped": [item.to_dict() for item in self.skipped],
            "validation_examples": len(self.validation),
            "validation_tokens": self.validation_tokens,
            "by_database": {db: {"examples": total, "kept": kept}
                            for db, (total, kept) in sorted(budget.by_database.items())},
            "warnings": self.warnings,
            "gold_check": self.options.gold_check,
            "out": str(written.path) if written else None,
            "out_examples": written.examples if written else None,
            "validation_out": str(written.validation_path)
            if written and written.validation_path else None,
            "worker": self.worker,
            "timings_s": {name: round(value, 4) for name, value in self.timings.items()},
        }


def _money(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def template_named(name: str) -> PromptTemplate:
    """A preset template by name (default, compact, rich); PrepareError for an unknown one."""
    try:
        return TEMPLATES[name]
    except KeyError:
        raise PrepareError(f"unknown template {name!r}; choose one of "
                           f"{', '.join(TEMPLATES)}") from None


def prepare(root: Path, options: PrepareOptions | None = None, *,
            schema_cache: SchemaCache | None = None) -> PrepareResult:
    """Load a Spider-format folder, skip what cannot be used, count every example, fit the budget.

    Reports missing, unreadable and empty databases and gold SQL that fails, then goes on.
    Raises PrepareError when the folder or its tables.json is missing. When the process is
    single-threaded (the CLI), a forked helper reads the databases (gold check, schema text)
    while this process loads the tokenizer and counts what the helper has sent so far.
    """
    options = options or PrepareOptions()
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    dataset = _load(Path(root), options)
    skipped, warnings = _problems(dataset, options)
    jobs = _jobs(dataset, _usable(dataset, skipped))
    clock = _lap(timings, "load", clock)
    cache = schema_cache or SchemaCache()

    def work(job: _DatabaseJob) -> _DatabaseReady:
        return _prepare_database(dataset, job, options, cache)

    forked = (options.parallel and schema_cache is None and len(jobs) >= _MIN_JOBS_TO_FORK
              and fork_available())
    stream = ChildStream(work, jobs) if forked else None
    encoding = get_encoding(encoding_for_model(options.model).name)
    clock = _lap(timings, "encoding", clock)
    pipeline = _Pipeline(options.template, TokenCounter(encoding))
    try:
        pipeline.consume(jobs, stream if stream is not None else map(work, jobs))
    except ChildFailed as error:  # the work is redone here; nothing was lost but time
        warnings.append(f"the helper process failed ({error}); prepared in-process instead")
        forked = False
        pipeline = _Pipeline(options.template, TokenCounter(encoding))
        pipeline.consume(jobs, map(work, jobs))
    finally:
        if stream is not None:
            stream.close()
    skipped.extend(pipeline.skipped)
    clock = _lap(timings, "databases_and_count", clock)

    usable = [e for job in jobs for e in job.examples if _key(e) in pipeline.counted]
    usable.sort(key=lambda e: e.position)
    held = _validation_indices(usable, options)
    examples, messages, tokens = [], [], []
    held_out: list[list[Message]] = []
    held_tokens = 0
    for position, example in enumerate(usable):
        rendered, count = pipeline.counted[_key(example)]
        if position in held:
            held_out.append(rendered)
            held_tokens += count
        else:
            examples.append(example.example)
            messages.append(rendered)
            tokens.append(count)
    budget = fit_to_budget(tokens, groups=[e.db_id for e in examples], model=options.model,
                           epochs=options.epochs, token_limit=options.token_limit,
                           strategy=options.strategy, seed=options.seed)
    _lap(timings, "fit", clock)
    return PrepareResult(root=dataset.root, options=options, loaded=len(dataset.examples),
                         examples=examples, messages=messages, tokens=tokens, budget=budget,
                         skipped=skipped, validation=sorted(held),
                         validation_messages=held_out, validation_tokens=held_tokens,
                         warnings=warnings, timings=timings,
                         worker="forked" if forked else "in-process")


_MIN_JOBS_TO_FORK = 8  # below this, forking costs more than it saves


@dataclass(frozen=True)
class _Positioned:
    """An example with its place in the dataset (examples of a database travel together)."""

    position: int
    example: Example

    @property
    def db_id(self) -> str:
        return self.example.db_id


@dataclass(frozen=True)
class _DatabaseJob:
    """One database and its usable examples."""

    db_id: str
    examples: list[_Positioned]


@dataclass(frozen=True)
class _DatabaseReady:
    """What the database side produced for a job: its schema text, and what to skip."""

    db_id: str
    schema: str | None
    skipped: list[Skipped]


def _key(item: _Positioned) -> tuple[str, int]:
    return item.example.source, item.example.index


def _jobs(dataset: SpiderDataset, usable: Sequence[Example]) -> list[_DatabaseJob]:
    by_db: dict[str, list[_Positioned]] = {}
    for position, example in enumerate(usable):
        by_db.setdefault(example.db_id, []).append(_Positioned(position, example))
    return [_DatabaseJob(db_id, items) for db_id, items in by_db.items()]


class _Pipeline:
    """Renders and counts each database's examples as its schema arrives."""

    def __init__(self, template: PromptTemplate, counter: TokenCounter) -> None:
        self.template = template
        self.counter = counter
        self.counted: dict[tuple[str, int], tuple[list[Message], int]] = {}
        self.skipped: list[Skipped] = []

    def consume(self, jobs: Sequence[_DatabaseJob], results: Iterable[_DatabaseReady]) -> None:
        for job, ready in zip(jobs, results, strict=False):
            self.skipped.extend(ready.skipped)
            if ready.schema is None:
                continue
            failed = {(item.source, item.index) for item in ready.skipped}
            for item in job.examples:
                key = _key(item)
                if key in failed:
                    continue
                example = item.example
                rendered = render_messages(self.template, ready.schema, example.question,
                                           example.query)
                self.counted[key] = (rendered, self.counter.count(rendered))


def _prepare_database(dataset: SpiderDataset, job: _DatabaseJob, options: PrepareOptions,
                      cache: SchemaCache) -> _DatabaseReady:
    """Gold check and schema text of one database (runs in the helper process when forked)."""
    examples = [item.example for item in job.examples]
    path = dataset.db_path(job.db_id)
    if path is None:
        return _DatabaseReady(job.db_id, None, [Skipped(
            "missing_database", job.db_id, len(examples),
            f"{job.db_id}: database/{job.db_id}/{job.db_id}.sqlite is missing")])
    failures = _check_gold(dataset, path, examples, options)
    remaining = len(examples) - len(failures)
    if remaining == 0:
        return _DatabaseReady(job.db_id, None, failures)
    template = options.template
    try:
        schema = cache.schema_text(path, template.sample_values,
                                   sample_rows=template.sample_rows)
    except SchemaError as error:
        return _DatabaseReady(job.db_id, None, [*failures, Skipped(
            "schema_error", job.db_id, remaining, f"{job.db_id}: {error}")])
    return _DatabaseReady(job.db_id, schema, failures)


def _lap(timings: dict[str, float], name: str, since: float) -> float:
    now = time.perf_counter()
    timings[name] = now - since
    return now


def _load(root: Path, options: PrepareOptions) -> SpiderDataset:
    if not root.exists():
        raise PrepareError(f"dataset folder not found: {root}")
    folder = root if root.is_dir() else root.parent
    if not (folder / "tables.json").is_file():
        raise PrepareError(f"{folder} has no tables.json: not a Spider-format folder")
    try:
        return load_dataset(root, options.split)
    except DatasetError as error:
        raise PrepareError(str(error)) from None


def _problems(dataset: SpiderDataset,
              options: PrepareOptions) -> tuple[list[Skipped], list[str]]:
    counts = dataset.counts_by_db()
    skipped: list[Skipped] = []
    warnings: list[str] = []
    for problem in dataset.problems:
        if problem.kind == "empty_database" and not options.skip_empty_databases:
            warnings.append(problem.message)
        elif problem.kind in _SKIPPING_PROBLEMS and problem.db_id is not None:
            skipped.append(Skipped(problem.kind, problem.db_id, counts.get(problem.db_id, 0),
                                   problem.message))
        elif problem.kind == "malformed_example":
            skipped.append(Skipped(problem.kind, problem.db_id, 1, problem.message,
                                   problem.source, problem.index))
        else:
            warnings.append(problem.message)
    return skipped, warnings


def _usable(dataset: SpiderDataset, skipped: Sequence[Skipped]) -> list[Example]:
    excluded = {item.db_id for item in skipped if item.reason in _SKIPPING_PROBLEMS}
    return [e for e in dataset.examples if e.db_id not in excluded]


def _check_gold(dataset: SpiderDataset, path: Path, examples: Sequence[Example],
                options: PrepareOptions) -> list[Skipped]:
    if options.gold_check == "off":
        return []
    if options.gold_check == "run":
        wanted = {(e.source, e.index) for e in examples}
        db_ids = {e.db_id for e in examples}
        return [Skipped(p.kind, p.db_id, 1, p.message, p.source, p.index)
                for p in check_gold(dataset, timeout=options.gold_timeout, db_ids=db_ids)
                if (p.source, p.index) in wanted]
    return _compile_gold(path, examples)


def _compile_gold(path: Path, examples: Sequence[Example]) -> list[Skipped]:
    """Gold queries SQLite cannot compile (no such table or column, syntax): EXPLAIN, no run."""
    failures = []
    try:
        connection = connect_readonly(path)
    except (MissingDatabase, sqlite3.Error) as error:
        return [Skipped("gold_failed", e.db_id, 1, f"gold SQL not checked: {error}", e.source,
                        e.index) for e in examples]
    try:
        for example in examples:
            try:
                connection.execute("EXPLAIN " + example.query)
            except (sqlite3.Error, ValueError, OverflowError) as error:
                failures.append(Skipped("gold_failed", example.db_id, 1,
                                        f"gold SQL fails: {error}", example.source,
                                        example.index))
    finally:
        connection.close()
    return failures


def _validation_indices(usable: Sequence[_Positioned], options: PrepareOptions) -> set[int]:
    chosen = {i for i, e in enumerate(usable) if e.db_id in options.validation_db_ids}
    if options.validation_fraction > 0:
        rest = [i for i in range(len(usable)) if i not in chosen]
        count = round(len(rest) * options.validation_fraction)
        chosen.update(random.Random(options.seed).sample(rest, count))
    return chosen
