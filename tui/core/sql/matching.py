"""Spider's execution match: equal results up to column order, and row order unless sorted.

Values are compared after `canonical()`: a float equal to an integer is that integer (SQLite's
AVG gives 2.0 where COUNT gives 2, and Python already treats them as equal), other floats are
rounded to FLOAT_DIGITS significant digits (so 0.1 + 0.2 matches 0.3), NaN equals NaN, NULL
equals NULL, and text is compared exactly (case and spaces matter). Rows are a multiset
(duplicates count) unless the gold query sorts its result, then they are a sequence.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

FLOAT_DIGITS = 10
# Column assignments tried before giving up (only pathological, highly symmetric results).
MAX_PERMUTATIONS = 20_000

Row = Sequence[Any]


def canonical(value: Any) -> Hashable:
    """One SQLite value in the form that is compared (see the module docstring)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ("nan",)
        if math.isinf(value):
            return value
        if value.is_integer() and abs(value) < 2**63:
            return int(value)
        return float(f"{value:.{FLOAT_DIGITS}g}")
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def order_matters(gold_sql: str) -> bool:
    """True when the gold query's own result is sorted (a top-level ORDER BY).

    Spider's test-suite script looks for "order by" anywhere in the text; an ORDER BY inside
    a subquery does not order the result, so only the outermost one counts here (the text
    test is the fallback when the SQL does not parse).
    """
    import sqlglot  # lazily: it costs a quarter second of the app's start-up
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(gold_sql, read="sqlite")
    except SqlglotError:
        return "order by" in " ".join(gold_sql.lower().split())
    while isinstance(tree, exp.Subquery | exp.Paren):
        tree = tree.this
    return isinstance(tree, exp.Expression) and tree.args.get("order") is not None


def results_match(gold: Sequence[Row], predicted: Sequence[Row], *, ordered: bool) -> bool:
    """Spider's EX equality of two result sets (rows of equal width), see the module docs."""
    if len(gold) != len(predicted):
        return False
    if not gold:
        return True  # as in Spider: two empty results match whatever their columns
    width = len(gold[0])
    if any(len(row) != width for row in gold) or any(len(row) != width for row in predicted):
        return False
    gold_rows = [tuple(canonical(value) for value in row) for row in gold]
    pred_rows = [tuple(canonical(value) for value in row) for row in predicted]
    if gold_rows == pred_rows:
        return True  # the same columns in the same order (the usual right answer)
    if Counter(_sorted_key(row) for row in gold_rows) != Counter(
            _sorted_key(row) for row in pred_rows):
        return False  # no column order can help: the rows differ as bags of values
    target: Counter[tuple[Hashable, ...]] | list[tuple[Hashable, ...]]
    target = gold_rows if ordered else Counter(gold_rows)
    for permutation in _column_permutations(gold_rows, pred_rows, ordered=ordered):
        permuted = [tuple(row[j] for j in permutation) for row in pred_rows]
        if (permuted == target) if ordered else (Counter(permuted) == target):
            return True
    return False


def _sorted_key(row: tuple[Hashable, ...]) -> tuple[Hashable, ...]:
    """A row's values in a type-safe canonical order (a bag of values, column order lost)."""
    return tuple(sorted(row, key=lambda value: (type(value).__name__, repr(value))))


def _column_permutations(gold: list[tuple[Hashable, ...]], pred: list[tuple[Hashable, ...]],
                         *, ordered: bool) -> Iterator[tuple[int, ...]]:
    """Assignments gold column i -> predicted column p[i] that could make the results equal.

    A predicted column is a candidate for a gold column only when their values agree as a
    sequence (ordered) or as a multiset; columns with identical contents are interchangeable,
    so only one of each such group is tried at a time.
    """
    width = len(gold[0])
    gold_columns = [tuple(row[i] for row in gold) for i in range(width)]
    pred_columns = [tuple(row[j] for row in pred) for j in range(width)]

    def signature(column: tuple[Hashable, ...]) -> Hashable:
        return column if ordered else frozenset(Counter(column).items())

    by_signature: dict[Hashable, list[int]] = {}
    for j, column in enumerate(pred_columns):
        by_signature.setdefault(signature(column), []).append(j)
    candidates = [by_signature.get(signature(column), []) for column in gold_columns]
    if any(not options for options in candidates):
        return
    # Most constrained gold columns first: fewer branches near the root.
    order = sorted(range(width), key=lambda i: len(candidates[i]))
    chosen: list[int] = [-1] * width
    used: set[int] = set()
    budget = [MAX_PERMUTATIONS]

    def extend(depth: int) -> Iterator[tuple[int, ...]]:
        if depth == width:
            budget[0] -= 1
            yield tuple(chosen)
            return
        gold_index = order[depth]
        tried: set[tuple[Hashable, ...]] = set()
        for j in candidates[gold_index]:
            if j in used or pred_columns[j] in tried or budget[0] <= 0:
                continue
            tried.add(pred_columns[j])
            chosen[gold_index] = j
            used.add(j)
            yield from extend(depth + 1)
            used.discard(j)

    yield from extend(0)
