"""Epochs, trained tokens, cost, and the largest subset of examples that fits a job token limit."""

from __future__ import annotations

import heapq
import random
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Literal

from tui.core.budget.pricing import price_for, priced_models, training_cost
from tui.core.budget.tokens import context_limit, encoding_for_model

if TYPE_CHECKING:
    from tui.core.budget.counters import ChatCounter

# OpenAI cookbook "Data preparation and analysis for chat model fine-tuning": how the API
# picks n_epochs when it is "auto".
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25

DEFAULT_TOKEN_LIMIT = 50_000_000
STRATEGIES = ("stratified", "shortest", "random")
Strategy = Literal["stratified", "shortest", "random"]
Epochs = int | Literal["auto"]


class BudgetError(ValueError):
    """Budget arguments that make no sense (negative limit, unknown strategy, ...)."""


def resolve_epochs(epochs: Epochs, n_examples: int) -> int:
    """Epochs as given, or OpenAI's ``auto`` rule for ``n_examples`` training examples.

    auto: 3 epochs, raised so that small files see >= 100 examples (at most 25 epochs), lowered
    so that large files see <= 25,000 (at least 1). With no examples auto gives 3.
    """
    if epochs != "auto":
        if not isinstance(epochs, int) or epochs < 1:
            raise BudgetError(f"epochs must be 'auto' or a positive whole number, not {epochs!r}")
        return epochs
    if n_examples <= 0:
        return TARGET_EPOCHS
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


@dataclass(frozen=True)
class Budget:
    """Everything the token meter and ``sqltune prepare`` show about one fit."""

    model: str
    """Model the budget is for (decides encoding, context and price)."""
    encoding: str
    """What counted: a tiktoken encoding, or an open-weight model's own tokenizer."""
    encoding_note: str | None
    """Set when the counts are a guess (unknown model, a base's tokenizer not available)."""
    examples: int
    """Examples offered to the fit."""
    kept: int
    """Examples in the largest subset that fits."""
    epochs: int
    """Epochs the job runs for the kept examples (auto resolved on ``kept``)."""
    epochs_setting: Epochs
    """What was asked: a number or "auto"."""
    token_limit: int
    """Per-job limit on trained tokens."""
    strategy: Strategy
    """How the subset was chosen."""
    seed: int
    """Seed of the random strategy."""
    context_limit: int
    """Per-example training context of the model; longer examples are truncated."""
    tokens_per_epoch: int
    """Billable tokens of the kept examples (each capped at the context)."""
    trained_tokens: int
    """tokens_per_epoch * epochs: what the job is billed for."""
    total_tokens: int
    """Billable tokens of all examples (one epoch), before fitting."""
    max_example_tokens: int
    """Longest example of all, uncapped."""
    mean_example_tokens: float
    """Mean tokens of all examples, uncapped."""
    over_context: int
    """Examples longer than the context (they would be truncated)."""
    estimated_cost_usd: float | None
    """Training cost for ``model``; None when the pricing table does not know it."""
    costs_usd: dict[str, float] = field(default_factory=dict)
    """Training cost of the same trained tokens at each priced base model's rate."""
    by_database: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Database -> (examples, kept)."""
    kept_indices: tuple[int, ...] = ()
    """Indices of the kept examples in the offered order (ascending)."""
    free: bool = False
    """A base of a sqltune server: training costs nothing (no OpenAI price applies)."""

    @property
    def dropped(self) -> int:
        """Examples left out to fit the limit."""
        return self.examples - self.kept

    @property
    def fits_all(self) -> bool:
        """True when no example had to be dropped."""
        return self.kept == self.examples

    @property
    def fraction_of_limit(self) -> float:
        """trained_tokens / token_limit (the meter's fill)."""
        return self.trained_tokens / self.token_limit if self.token_limit else 0.0


def selection_order(
    tokens: Sequence[int], groups: Sequence[str] | None, strategy: Strategy, seed: int = 0
) -> list[int]:
    """A ranking of example indices such that every prefix is that strategy's subset.

    stratified: a house-monotone Sainte-Laguë apportionment over databases. Every database
    first gets one seat, then each next seat goes to the database with the highest
    examples / (seats + 0.5); a database fills its seats with its shortest examples. Any
    prefix (at least one per database) keeps every database, in proportion to its size, and
    is the cheapest subset with those proportions, so the fit keeps the most examples.
    """
    n = len(tokens)
    if strategy == "shortest":
        return sorted(range(n), key=lambda i: (tokens[i], i))
    if strategy == "random":
        order = list(range(n))
        random.Random(seed).shuffle(order)
        return order
    if strategy != "stratified":
        raise BudgetError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    members: dict[str, list[int]] = {}
    for i in range(n):
        members.setdefault(groups[i] if groups is not None else "", []).append(i)
    queues = [sorted(ids, key=lambda i: (tokens[i], i)) for ids in members.values()]
    # one seat each, cheapest first, so a tiny limit still keeps as many databases as it can
    order = sorted((queue[0] for queue in queues), key=lambda i: (tokens[i], i))
    heap = [(-len(queue) / 1.5, g, 1) for g, queue in enumerate(queues) if len(queue) > 1]
    heapq.heapify(heap)
    while heap:
        _, g, seats = heapq.heappop(heap)
        queue = queues[g]
        order.append(queue[seats])
        seats += 1
        if seats < len(queue):
            heapq.heappush(heap, (-len(queue) / (seats + 0.5), g, seats))
    return order


def _largest_fit(prefix: list[int], epochs: Epochs, token_limit: int) -> int:
    """Largest k with prefix[k] * epochs(k) <= token_limit (prefix[0] == 0)."""
    n = len(prefix) - 1
    if epochs != "auto":
        return bisect_right(prefix, token_limit // resolve_epochs(epochs, n)) - 1
    # auto epochs never increase with k: walk down the blocks of equal epochs, largest first
    high = n
    while high > 0:
        e = resolve_epochs("auto", high)
        low, top = 1, high  # smallest k in [1, high] with epochs(k) == e
        while low < top:
            mid = (low + top) // 2
            if resolve_epochs("auto", mid) == e:
                top = mid
            else:
                low = mid + 1
        k = min(high, bisect_right(prefix, token_limit // e) - 1)
        if k >= low:
            return k
        high = low - 1
    return 0


def fit_to_budget(
    tokens: Sequence[int],
    *,
    model: str,
    groups: Sequence[str] | None = None,
    epochs: Epochs = "auto",
    token_limit: int = DEFAULT_TOKEN_LIMIT,
    strategy: Strategy = "stratified",
    seed: int = 0,
    counter: ChatCounter | None = None,
) -> Budget:
    """The largest subset whose billable tokens per epoch times epochs fit ``token_limit``.

    ``tokens`` are exact chat-format counts per example, ``groups`` their database ids (needed
    by ``stratified``; without them all examples form one group). Billable tokens of an
    example are capped at the model's context, as the provider truncates longer examples.
    ``counter`` (the one that counted ``tokens``) names the tokenizer and gives the context; a
    sqltune server's base is free to train, so no OpenAI price applies to it, and its server
    refuses an example over the context, so those are never kept.
    """
    if groups is not None and len(groups) != len(tokens):
        raise BudgetError("groups and tokens must have the same length")
    if token_limit < 0:
        raise BudgetError("token_limit must not be negative")
    resolve_epochs(epochs, 1)  # validates a numeric setting early
    limit = counter.context_limit if counter is not None else context_limit(model)
    free = counter is not None and counter.free
    # OpenAI truncates an example over the context; a sqltune server refuses the whole file, so
    # for its bases such an example is left out of the fit (and counted in over_context).
    billable = list(tokens) if free else [min(t, limit) for t in tokens]
    order = selection_order(billable, groups, strategy, seed)
    if free:
        order = [i for i in order if tokens[i] <= limit]
    prefix = [0, *accumulate(billable[i] for i in order)]
    kept = _largest_fit(prefix, epochs, token_limit)
    kept_indices = tuple(sorted(order[:kept]))
    run_epochs = resolve_epochs(epochs, kept)
    per_epoch = prefix[kept]
    trained = per_epoch * run_epochs
    choice = encoding_for_model(model)
    encoding, note = (counter.name, counter.note) if counter is not None else (
        choice.name, choice.note)
    price = price_for(model)
    costs = {} if free else {name: cost for name in priced_models()
                             if (cost := training_cost(name, trained)) is not None}
    by_database: dict[str, tuple[int, int]] = {}
    if groups is not None:
        totals = Counter(groups)
        kept_counts = Counter(groups[i] for i in kept_indices)
        by_database = {db: (count, kept_counts.get(db, 0)) for db, count in totals.items()}
    n = len(tokens)
    return Budget(
        model=model,
        encoding=encoding,
        encoding_note=note,
        examples=n,
        kept=kept,
        epochs=run_epochs,
        epochs_setting=epochs,
        token_limit=token_limit,
        strategy=strategy,
        seed=seed,
        context_limit=limit,
        tokens_per_epoch=per_epoch,
        trained_tokens=trained,
        total_tokens=sum(billable),
        max_example_tokens=max(tokens, default=0),
        mean_example_tokens=sum(tokens) / n if n else 0.0,
        over_context=sum(1 for t in tokens if t > limit),
        estimated_cost_usd=0.0 if free else None if price is None else training_cost(
            model, trained),
        costs_usd=costs,
        by_database=by_database,
        kept_indices=kept_indices,
        free=free,
    )


def parse_validation_share(text: str) -> float:
    """The share held out for validation from what a user types: ``10``, ``10%`` or ``0.1``.

    A number from 1 up is a percentage, below 1 a fraction; empty is 0. Raises BudgetError
    with what is accepted."""
    cleaned = text.strip().removesuffix("%").strip()
    if not cleaned:
        return 0.0
    try:
        number = float(cleaned)
    except ValueError:
        raise BudgetError(f"validation {text.strip()!r}: type a percentage (10) or a fraction "
                          "(0.1)") from None
    share = number / 100 if number >= 1 or text.strip().endswith("%") else number
    if not 0 <= share < 1:
        raise BudgetError(f"validation {text.strip()!r}: from 0 to below 100% (e.g. 10 or 0.1)")
    return share
