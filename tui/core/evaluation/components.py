"""Spider's component counts of one SQL statement, read with sqlglot, and so its hardness level
(sqlglot takes a quarter second to load: the app's start path imports this on first use)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from tui.core.evaluation.hardness import Hardness, HardnessCounts, HardnessError

# Spider's AGG_OPS (other functions, such as group_concat, are not aggregates there).
_AGGREGATES = (exp.Count, exp.Max, exp.Min, exp.Sum, exp.Avg)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div)
_SET_OPERATIONS = (exp.Union, exp.Intersect, exp.Except)


@dataclass
class _Condition:
    """A condition flattened as Spider stores it: units joined by and/or."""

    units: list[exp.Expression]
    ors: int

    @property
    def connectors(self) -> int:
        return max(0, len(self.units) - 1)


def _flatten(node: exp.Expression | None) -> _Condition:
    condition = _Condition([], 0)

    def visit(item: exp.Expression) -> None:
        while isinstance(item, exp.Paren):
            item = item.this
        if isinstance(item, exp.And | exp.Or):
            condition.ors += isinstance(item, exp.Or)
            visit(item.this)
            visit(item.expression)
        else:
            condition.units.append(item)

    if node is not None:
        visit(node)
    return condition


def _negated(unit: exp.Expression) -> bool:
    """Spider's not_op: NOT IN / NOT LIKE / NOT BETWEEN (IS NOT NULL is the 'is' operator)."""
    return isinstance(unit, exp.Not) and not isinstance(unit.this, exp.Is)


def _is_like(unit: exp.Expression) -> bool:
    inner = unit.this if isinstance(unit, exp.Not) else unit
    return isinstance(inner, exp.Like)


def _nested_in(unit: exp.Expression) -> int:
    """Subqueries used as a condition's values (Spider's val1 and val2)."""
    inner = unit.this if isinstance(unit, exp.Not) else unit
    found = 0
    for key, value in inner.args.items():
        if key == "this" and not isinstance(inner, exp.Exists):
            continue  # the left-hand side is Spider's val_unit, never a nested query
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, (exp.Subquery, exp.Select, *_SET_OPERATIONS)):
                found += 1
    return found


def _leads_with_aggregate(node: exp.Expression) -> bool:
    """Spider tags a select item with an aggregate only when the item starts with one."""
    if isinstance(node, exp.Alias):
        node = node.this
    while isinstance(node, (*_ARITHMETIC, exp.Paren)):
        node = node.this
    return isinstance(node, _AGGREGATES)


def _order_aggregates(order: exp.Order | None) -> int:
    """Aggregates among each ORDER BY val_unit's one or two column units."""
    if order is None:
        return 0
    total = 0
    for ordered in order.expressions:
        node = ordered.this if isinstance(ordered, exp.Ordered) else ordered
        while isinstance(node, exp.Paren):
            node = node.this
        operands = [node.this, node.expression] if isinstance(node, _ARITHMETIC) else [node]
        total += sum(isinstance(operand, _AGGREGATES) for operand in operands)
    return total


def _main_select(tree: exp.Expression) -> tuple[exp.Select | None, int]:
    """The leftmost SELECT (Spider's main query) and 1 when a set operation follows it."""
    set_operation = 0
    node = tree
    while True:
        if isinstance(node, _SET_OPERATIONS):
            set_operation = 1
            node = node.this
        elif isinstance(node, exp.Subquery | exp.Paren):
            node = node.this
        else:
            break
    return (node if isinstance(node, exp.Select) else None), set_operation


def count_components(sql: str) -> HardnessCounts:
    """Spider's component1, component2 and others for one SQL statement."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except SqlglotError as error:
        raise HardnessError(f"cannot parse SQL: {error}") from None
    if not isinstance(tree, exp.Expression):
        raise HardnessError("empty SQL")
    with_clause = tree.args.get("with_")
    ctes = len(with_clause.expressions) if with_clause is not None else 0
    select, set_operation = _main_select(tree)
    if select is None:
        raise HardnessError(f"not a query: {type(tree).__name__}")

    where = _flatten(select.args["where"].this if select.args.get("where") else None)
    having = _flatten(select.args["having"].this if select.args.get("having") else None)
    joins = select.args.get("joins") or []
    on = _Condition([], 0)
    for join in joins:
        part = _flatten(join.args.get("on"))
        on.units += part.units
        on.ors += part.ors
    group = select.args.get("group")
    group_items = len(group.expressions) if group else 0
    order = select.args.get("order")
    tables = (1 if select.args.get("from_") else 0) + len(joins)
    conditions = on.units + where.units + having.units

    component1 = (
        bool(where.units) + bool(group_items) + (order is not None)
        + (select.args.get("limit") is not None) + max(0, tables - 1)
        + on.ors + where.ors + having.ors
        + sum(_is_like(unit) for unit in conditions)
    )
    component2 = sum(_nested_in(unit) for unit in conditions) + set_operation + ctes

    # Spider's count_agg on where/having cond units reads not_op, and counts the and/or
    # strings of the having list: reproduced so levels match the official script.
    aggregates = (
        sum(_leads_with_aggregate(item) for item in select.expressions)
        + sum(_negated(unit) for unit in where.units)
        + _order_aggregates(order)
        + sum(_negated(unit) for unit in having.units) + having.connectors
    )
    others = ((aggregates > 1) + (len(select.expressions) > 1) + (len(where.units) > 1)
              + (group_items > 1))
    return HardnessCounts(component1, component2, others)


@lru_cache(maxsize=16384)
def hardness(sql: str) -> Hardness:
    """Spider's hardness level of `sql`; raises HardnessError when it cannot be parsed."""
    return count_components(sql).level
