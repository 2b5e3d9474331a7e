"""Spider folder to counted chat examples and a fitted token budget (CLI prepare and the meter)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.core.budget.counters import ChatCounter, tiktoken_counter
from tui.core.budget.fit import DEFAULT_TOKEN_LIMIT, Budget, Epochs, Strategy, fit_to_budget
from tui.core.budget.pricing import load_table
from tui.core.data.database_stage import (
    GOLD_CHECKS,
    DatabaseJob,
    DatabaseReady,
    GoldCheck,
    Positioned,
    Skipped,
    database_jobs,
    example_key,
    prepare_database,
)
from tui.core.data.datasets import DatasetError, Example, SpiderDataset, load_dataset
from tui.core.data.forkstream import ChildFailed, ChildStream, fork_available
from tui.core.data.jsonl import ChatExample, WriteResult, write_chat_jsonl
from tui.core.data.prompts import (
    DEFAULT_TEMPLATE,
    TEMPLATES,
    Message,
    PromptTemplate,
    render_messages,
    template_json,
)
from tui.core.data.schema import SchemaCache
from tui.core.models import DEFAULT_MODEL

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
    counter: ChatCounter | None = field(default=None, compare=False, repr=False)
    """The counter that counted ``tokens``: a refit passes it to fit_to_budget, so a real
    base's budget stays free and within that base's context."""

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
            "prompt_template": template_json(template, self.options.template_name),
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
            schema_cache: SchemaCache | None = None,
            counter: ChatCounter | None = None) -> PrepareResult:
    """Load a Spider-format folder, skip what cannot be used, count every example, fit the budget.

    Reports missing, unreadable and empty databases and gold SQL that fails, then goes on.
    Raises PrepareError when the folder or its tables.json is missing. When the process is
    single-threaded (the CLI), a forked helper reads the databases (gold check, schema text)
    while this process loads the tokenizer and counts what the helper has sent so far.
    ``counter`` counts with another tokenizer than the model's tiktoken encoding (an
    open-weight base's own, see tui.core.budget.counters).
    """
    options = options or PrepareOptions()
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    dataset = _load(Path(root), options)
    skipped, warnings = _problems(dataset, options)
    jobs = database_jobs(dataset, _usable(dataset, skipped))
    clock = _lap(timings, "load", clock)
    cache = schema_cache or SchemaCache()

    def work(job: DatabaseJob) -> DatabaseReady:
        return prepare_database(dataset, job, cache, template=options.template,
                                gold_check=options.gold_check,
                                gold_timeout=options.gold_timeout)

    forked = (options.parallel and schema_cache is None and len(jobs) >= _MIN_JOBS_TO_FORK
              and fork_available())
    stream = ChildStream(work, jobs) if forked else None
    counter = counter if counter is not None else tiktoken_counter(options.model)
    clock = _lap(timings, "encoding", clock)
    pipeline = CountingPipeline(options.template, counter)
    try:
        pipeline.consume(jobs, stream if stream is not None else map(work, jobs))
    except ChildFailed as error:  # the work is redone here; nothing was lost but time
        warnings.append(f"the helper process failed ({error}); prepared in-process instead")
        forked = False
        pipeline = CountingPipeline(options.template, counter)
        pipeline.consume(jobs, map(work, jobs))
    finally:
        if stream is not None:
            stream.close()
    skipped.extend(pipeline.skipped)
    clock = _lap(timings, "databases_and_count", clock)

    usable = [e for job in jobs for e in job.examples if example_key(e) in pipeline.counted]
    usable.sort(key=lambda e: e.position)
    held = _validation_indices(usable, options)
    examples, messages, tokens = [], [], []
    held_out: list[list[Message]] = []
    held_tokens = 0
    for position, example in enumerate(usable):
        rendered, count = pipeline.counted[example_key(example)]
        if position in held:
            held_out.append(rendered)
            held_tokens += count
        else:
            examples.append(example.example)
            messages.append(rendered)
            tokens.append(count)
    budget = fit_to_budget(tokens, groups=[e.db_id for e in examples], model=options.model,
                           epochs=options.epochs, token_limit=options.token_limit,
                           strategy=options.strategy, seed=options.seed, counter=counter)
    _lap(timings, "fit", clock)
    return PrepareResult(root=dataset.root, options=options, loaded=len(dataset.examples),
                         examples=examples, messages=messages, tokens=tokens, budget=budget,
                         skipped=skipped, validation=sorted(held),
                         validation_messages=held_out, validation_tokens=held_tokens,
                         warnings=warnings, timings=timings,
                         worker="forked" if forked else "in-process", counter=counter)


class CountingPipeline:
    """Renders and counts each database's examples as its schema arrives."""

    def __init__(self, template: PromptTemplate, counter: ChatCounter) -> None:
        self.template = template
        self.counter = counter
        self.counted: dict[tuple[str, int], tuple[list[Message], int]] = {}
        self.skipped: list[Skipped] = []

    def consume(self, jobs: Sequence[DatabaseJob], results: Iterable[DatabaseReady]) -> None:
        for job, ready in zip(jobs, results, strict=False):
            self.skipped.extend(ready.skipped)
            if ready.schema is None:
                continue
            failed = {(item.source, item.index) for item in ready.skipped}
            for item in job.examples:
                key = example_key(item)
                if key in failed:
                    continue
                example = item.example
                rendered = render_messages(self.template, ready.schema, example.question,
                                           example.query)
                self.counted[key] = (rendered, self.counter.count(rendered))


_MIN_JOBS_TO_FORK = 8  # below this, forking costs more than it saves


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


def _validation_indices(usable: Sequence[Positioned], options: PrepareOptions) -> set[int]:
    chosen = {i for i, e in enumerate(usable) if e.db_id in options.validation_db_ids}
    if options.validation_fraction > 0:
        rest = [i for i in range(len(usable)) if i not in chosen]
        count = round(len(rest) * options.validation_fraction)
        chosen.update(random.Random(options.seed).sample(rest, count))
    return chosen
