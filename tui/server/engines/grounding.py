"""Re-grounding of a retrieved SQL query onto another schema and question (sqlglot rewrites).

The retrieved example is a template: the tables and columns its own question mentioned are
slots, refilled with what the new question mentions; unmentioned ones (join keys, implied
sort columns) are kept or mapped by name, type and foreign keys. Literals follow the values the
new question cites. ``Grounded.fit`` says how well the result covers the question.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from tui.core.data.schema import quote_name
from tui.server.engines.literals import ground_literals, question_value_fit
from tui.server.engines.schema_parse import Schema, SchemaColumn, SchemaTable, name_words
from tui.server.engines.words import mention, name_similarity, question_words

_NUMERIC_AGGS = (exp.Sum, exp.Avg)


@dataclass
class Grounded:
    """A rewritten query and how well it fits the question."""

    sql: str
    """The SQL to answer with."""
    fit: float
    """Coverage of the question's tables, columns and values, minus unresolved slots."""


@dataclass
class Context:
    """What a rewrite knows: both schemas, both questions and the choices made so far."""

    target: Schema
    source: Schema
    question: str
    words: set[str]
    source_words: set[str]
    tables: dict[str, SchemaTable] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    used_columns: dict[tuple[str, str], str] = field(default_factory=dict)
    changed: bool = False
    penalty: float = 0.0

    def tables_for(self, qualifier: str) -> list[SchemaTable]:
        """The target tables a column with this qualifier (maybe "") can belong to: the one it
        names or its alias maps to, else every mapped table, else every target table."""
        table = self.target.table(qualifier) or self.tables.get(
            self.aliases.get(qualifier, qualifier))
        return [table] if table else [*self.tables.values()] or self.target.tables


def _identifier(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=quote_name(name) != name)


def _source_table_of(column: exp.Column, ctx: Context, tree: exp.Expr) -> str | None:
    qualifier = column.table.lower()
    if qualifier:
        return ctx.aliases.get(qualifier, qualifier)
    names = list(dict.fromkeys(t.name.lower() for t in tree.find_all(exp.Table)))
    for schema in (ctx.source, ctx.target):
        for name in names:
            table = schema.table(name)
            if table is not None and table.column(column.name) is not None:
                return name
    return names[0] if names else None


def _table_score(name: str, table: SchemaTable, used: list[str], ctx: Context) -> float:
    """How well target ``table`` refills source table ``name`` on its own."""
    fit = sum(max((name_similarity(u, c.name) for c in table.columns), default=0.0)
              for u in used if u != "*") / max(1, len(used))
    source = ctx.source.table(name)
    shape = 0.0
    if source is not None:
        shape = sum(max((name_similarity(a.name, b.name) for b in table.columns), default=0.0)
                    for a in source.columns) / len(source.columns)
    said = mention(table.name, ctx.words)
    slot = mention(name, ctx.source_words)
    columns = sum(mention(c.name, ctx.words, table.name) for c in table.columns)
    similar = name_similarity(name, table.name)
    return (2.0 * similar + 2.0 * said - 2.5 * slot * (1.0 - said) * similar
            + 0.3 * columns / len(table.columns) + 1.0 * fit + 0.5 * shape)


def _linked(a: SchemaTable, b: SchemaTable) -> bool:
    return any(fk[1].lower() == b.name.lower() for fk in a.foreign_keys)


def _by_score(scores: dict[str, float]) -> Callable[[SchemaTable], float]:
    return lambda table: -scores[table.name.lower()]


def _map_tables(tree: exp.Expr, ctx: Context) -> None:
    """The best joint assignment of the query's tables (fit, distinct, foreign keys kept)."""
    names = list(dict.fromkeys(t.name.lower() for t in tree.find_all(exp.Table)))[:5]
    if not names or not ctx.target.tables:
        return
    used = {n: [c.name for c in tree.find_all(exp.Column)
                if _source_table_of(c, ctx, tree) == n] for n in names}
    single = {n: {t.name.lower(): _table_score(n, t, used[n], ctx) for t in ctx.target.tables}
              for n in names}
    width = {1: 8, 2: 6, 3: 4}.get(len(names), 3)
    options = {n: sorted(ctx.target.tables, key=_by_score(single[n]))[:width] for n in names}
    links = {(a, b) for a in names for b in names if a != b
             and (sa := ctx.source.table(a)) is not None
             and (sb := ctx.source.table(b)) is not None and _linked(sa, sb)}
    best: tuple[float, tuple[SchemaTable, ...]] | None = None
    for combo in itertools.product(*(options[n] for n in names)):
        chosen = dict(zip(names, combo, strict=True))
        lowered = [t.name.lower() for t in combo]
        score = sum(single[n][t.name.lower()] for n, t in chosen.items())
        score -= 3.0 * (len(lowered) - len(set(lowered)))
        for a, b in links:
            score += 1.5 if _linked(chosen[a], chosen[b]) else -0.5
        if best is None or score > best[0]:
            best = (score, combo)
    if best is not None:
        ctx.tables.update(zip(names, best[1], strict=True))


def _wants_numeric(column: exp.Column) -> bool:
    parent = column.parent
    if isinstance(parent, _NUMERIC_AGGS):
        return True
    if isinstance(parent, exp.GT | exp.LT | exp.GTE | exp.LTE | exp.Between):
        return any(isinstance(n, exp.Literal) and not n.is_string
                   for n in parent.iter_expressions())
    return False


def _compared_with_string(column: exp.Column) -> bool:
    parent = column.parent
    return isinstance(parent, exp.EQ | exp.NEQ | exp.Like | exp.In) and any(
        isinstance(n, exp.Literal) and n.is_string for n in parent.iter_expressions())


def _pick_column(column: exp.Column, source_table: str, table: SchemaTable,
                 ctx: Context) -> SchemaColumn:
    src = ctx.source.table(source_table)
    src_col = src.column(column.name) if src else None
    numeric = _wants_numeric(column) or bool(src_col and src_col.numeric)
    key = (table.name.lower(), column.name.lower())
    assigned = {v for (t, s), v in ctx.used_columns.items() if t == key[0] and s != key[1]}
    idish = "id" in name_words(column.name)
    valued = _compared_with_string(column)
    lower_q = ctx.question.lower()
    slot = mention(column.name, ctx.source_words, source_table) if not idish else 0.0

    def score(c: SchemaColumn) -> float:
        c_id = "id" in name_words(c.name) or c.name in table.primary_key
        seen = valued and any(isinstance(v, str) and len(v) > 1 and v.lower() in lower_q
                              for v in c.samples)
        said = mention(c.name, ctx.words, table.name)
        similar = name_similarity(column.name, c.name)
        return (2.0 * similar + 1.5 * said - 1.5 * slot * (1.0 - said) * similar
                + 0.4 * (c.numeric == numeric) + 0.6 * (idish and c_id)
                - 0.6 * (c_id and not idish) - 1.0 * (c.name.lower() in assigned)
                + 2.0 * seen)

    best = max(table.columns, key=score)
    if slot >= 1.0 and mention(best.name, ctx.words, table.name) == 0:
        ctx.penalty += 0.5  # the example's question named this column; the new one names none
    return best


def _map_joins(tree: exp.Expr, ctx: Context) -> dict[int, str]:
    """Join equalities between two mapped tables, rewritten along a target foreign key."""
    fixed: dict[int, str] = {}
    for eq in tree.find_all(exp.EQ):
        left, right = eq.this, eq.expression
        if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
            continue
        ls, rs = _source_table_of(left, ctx, tree), _source_table_of(right, ctx, tree)
        lt, rt = ctx.tables.get(ls or ""), ctx.tables.get(rs or "")
        if lt is None or rt is None or lt is rt:
            continue
        if lt.name.lower() == ls and rt.name.lower() == rs and lt.column(left.name) \
                and rt.column(right.name):
            continue
        for a, b, flip in ((lt, rt, False), (rt, lt, True)):
            fk = next((fk for fk in a.foreign_keys if fk[1].lower() == b.name.lower()), None)
            if fk is not None:
                pair = (fk[0], fk[2] or (b.primary_key[0] if b.primary_key else fk[0]))
                fixed[id(left)], fixed[id(right)] = (pair[1], pair[0]) if flip else pair
                break
    return fixed


def _map_columns(tree: exp.Expr, ctx: Context) -> None:
    fixed = _map_joins(tree, ctx)
    for column in list(tree.find_all(exp.Column)):
        if isinstance(column.this, exp.Star):
            continue
        source_table = _source_table_of(column, ctx, tree)
        table = ctx.tables.get(source_table or "")
        if table is None:
            continue
        new_name = fixed.get(id(column))
        if new_name is None:
            new_name = _pick_column(column, source_table or "", table, ctx).name
            ctx.used_columns[(table.name.lower(), column.name.lower())] = new_name.lower()
        if new_name != column.name:
            column.set("this", _identifier(new_name))
            ctx.changed = True
        if column.table and column.table.lower() not in ctx.aliases \
                and column.table != table.name:
            column.set("table", _identifier(table.name))
            ctx.changed = True
    for node in tree.find_all(exp.Table):
        table = ctx.tables.get(node.name.lower())
        if table is not None and table.name != node.name:
            node.set("this", _identifier(table.name))
            ctx.changed = True


def _coverage(tree: exp.Expr, ctx: Context) -> float:
    """+1 per question-named table the query reads (-1 when it does not), +-0.5 per column."""
    tables = {t.name.lower() for t in tree.find_all(exp.Table)}
    columns = {c.name.lower() for c in tree.find_all(exp.Column)}
    score = 0.0
    for table in ctx.target.tables:
        inside = table.name.lower() in tables
        if mention(table.name, ctx.words) >= 1.0:
            score += 1.0 if inside else -1.0
        if inside:
            for column in table.columns:
                if column.name not in table.primary_key and \
                        mention(column.name, ctx.words, table.name) >= 1.0:
                    score += 0.5 if column.name.lower() in columns else -0.5
    return score


def ground(sql: str, target: Schema, question: str, source: Schema | None = None,
           source_question: str = "") -> Grounded:
    """``sql`` rewritten for ``target`` and ``question`` (see the module docstring).

    ``source`` is the schema the SQL was written for (None: the target's names) and
    ``source_question`` the question it answered. Unparseable SQL comes back unchanged.
    """
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except (sqlglot.errors.SqlglotError, ValueError):
        return Grounded(sql, -10.0)
    if tree is None:
        return Grounded(sql, -10.0)
    ctx = Context(target=target, source=source or target, question=question,
                  words=question_words(question), source_words=question_words(source_question))
    for node in tree.find_all(exp.Table):
        if node.alias:
            ctx.aliases[node.alias.lower()] = node.name.lower()
    if target.tables:
        _map_tables(tree, ctx)
        _map_columns(tree, ctx)
    literals = ground_literals(tree, ctx)
    ctx.penalty += literals.penalty
    ctx.changed = ctx.changed or literals.changed
    fit = _coverage(tree, ctx) + question_value_fit(tree, ctx) - ctx.penalty
    if not ctx.changed:
        return Grounded(sql, fit)
    try:
        return Grounded(tree.sql(dialect="sqlite"), fit)
    except (sqlglot.errors.SqlglotError, ValueError):
        return Grounded(sql, -10.0)
