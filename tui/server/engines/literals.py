"""Literal values of a re-grounded query: taken from the new question, and checked against it."""

from __future__ import annotations

import re
from typing import NamedTuple, Protocol

from sqlglot import exp

from tui.server.engines.schema_parse import Schema, SchemaColumn, SchemaTable
from tui.server.engines.words import numbers, quoted_values

_CAPITALISED = re.compile(r"(?<!^)(?<![.?!]\s)\b([A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*)*)")
_NOT_VALUES = frozenset({"i", "what", "which", "who", "how", "show", "list", "give", "find"})


class Scope(Protocol):
    """What literal grounding reads of a rewrite (tui.server.engines.grounding.Context)."""

    question: str
    """The question the query must answer."""
    target: Schema
    """The schema the query is rewritten for."""

    def tables_for(self, qualifier: str) -> list[SchemaTable]:
        """The target tables a column with this qualifier (maybe "") can belong to."""
        ...


class LiteralFit(NamedTuple):
    """What ground_literals did."""

    penalty: float
    """1 per literal the question leaves unexplained."""
    changed: bool
    """Whether a literal was replaced."""


def _said(value: str, lower_question: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(value.lower())}(?!\w)", lower_question) is not None


def _compared_column(literal: exp.Literal, scope: Scope) -> SchemaColumn | None:
    parent = literal.parent
    while isinstance(parent, exp.Tuple | exp.Paren):
        parent = parent.parent
    if parent is None:
        return None
    for node in parent.iter_expressions():
        if isinstance(node, exp.Column):
            for table in scope.tables_for(node.table.lower()):
                found = table.column(node.name)
                if found is not None:
                    return found
    return None


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


def ground_literals(tree: exp.Expr, scope: Scope) -> LiteralFit:
    """Replace the query's literals with values the question cites; a penalty for literals
    that stay unexplained by the question."""
    quoted = quoted_values(scope.question)
    spare = numbers(scope.question)
    lower_q = scope.question.lower()
    used: set[str] = set()
    capitalised = [c for c in _CAPITALISED.findall(scope.question)
                   if not scope.target.table(c) and c.lower() not in _NOT_VALUES]
    penalty = 0.0
    changed = False
    for literal in list(tree.find_all(exp.Literal)):
        if literal.is_string:
            text = literal.this
            core = text.strip("%")
            if not core or core.lower() in lower_q:
                used.add(core.lower())
                continue
            column = _compared_column(literal, scope)
            options = [str(v) for v in (column.samples if column else [])
                       if isinstance(v, str) and len(v) > 1 and _said(v, lower_q)]
            options += quoted + capitalised
            pick = next((o for o in options if o.lower() not in used), None)
            if pick is None:
                penalty += 1.0
                continue
            used.add(pick.lower())
            literal.replace(exp.Literal.string(text.replace(core, pick) if core != text else pick))
            changed = True
            continue
        try:
            value = float(literal.this)
        except ValueError:
            continue
        if value in spare:
            spare.remove(value)
            continue
        if isinstance(literal.parent, exp.Limit) and not spare:
            new_value = 1.0  # a superlative without a count asks for one row
        elif spare:
            new_value = spare.pop(0)
        else:
            penalty += 1.0
            continue
        if new_value != value:
            literal.replace(exp.Literal.number(_format_number(new_value)))
            changed = True
    return LiteralFit(penalty, changed)


def question_value_fit(tree: exp.Expr, scope: Scope) -> float:
    """+0.5 per value the question cites that the query uses, -1 per one it ignores."""
    texts = [str(lit.this).strip("%").lower() for lit in tree.find_all(exp.Literal)]
    score = 0.0
    for value in quoted_values(scope.question):
        score += 0.5 if value.lower() in texts else -1.0
    for number in set(numbers(scope.question)):
        hit = any(text == _format_number(number) or _format_number(number) in text
                  for text in texts)
        score += 0.5 if hit else -1.0
    lower_q = scope.question.lower()
    seen: set[str] = set()
    used_tables = {t.name.lower() for t in tree.find_all(exp.Table)}
    for table in scope.target.tables:
        if table.name.lower() not in used_tables:
            continue
        for column in table.columns:
            for sample in column.samples:
                if isinstance(sample, str) and len(sample) > 2 and sample.lower() not in seen \
                        and _said(sample, lower_q):
                    seen.add(sample.lower())
                    score += 0.5 if sample.lower() in texts else -1.0
    return score
