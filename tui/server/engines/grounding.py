"""Re-grounding of a retrieved SQL query onto another schema and question (sqlglot rewrites)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from tui.core.schema import quote_name
from tui.server.engines.schema_parse import Schema, SchemaColumn, SchemaTable, name_words

_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"|“([^”]+)”")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]*\w)")
_QWORD = re.compile(r"[A-Za-z0-9]+")
_CAPITALISED = re.compile(r"(?<!^)(?<![.?!]\s)\b([A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*)*)")
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10}
_NUMERIC_AGGS = (exp.Sum, exp.Avg)


def stem(word: str) -> str:
    """A crude plural/suffix stem so that ``singers`` meets ``singer`` and ``cities`` ``city``."""
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("es") and w[-3] in "sxz":
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def question_words(question: str) -> set[str]:
    """Stemmed lower-case words of a question."""
    return {stem(w) for w in _QWORD.findall(question)}


def _name_stems(name: str) -> list[str]:
    return [stem(w) for w in name_words(name)]


def name_similarity(a: str, b: str) -> float:
    """1 for equal names, else the Jaccard overlap of their stemmed words."""
    if a.lower() == b.lower():
        return 1.0
    wa, wb = set(_name_stems(a)), set(_name_stems(b))
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def mention(name: str, words: set[str], table: str = "") -> float:
    """Share of a name's words that the question uses (``id``, and for a column the words of
    its own ``table``'s name, ignored)."""
    skip = {"id", *_name_stems(table)}
    parts = [w for w in _name_stems(name) if w not in skip] or _name_stems(name)
    return sum(w in words for w in parts) / len(parts) if parts else 0.0


def _identifier(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=quote_name(name) != name)


@dataclass
class _Context:
    """What a rewrite knows: both schemas, the question and the choices made so far."""

    target: Schema
    source: Schema | None
    words: set[str]
    question: str
    tables: dict[str, SchemaTable] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    used_columns: dict[tuple[str, str], str] = field(default_factory=dict)
    changed: bool = False


def _source_columns(tree: exp.Expr, ctx: _Context, table: str) -> list[str]:
    """Columns the query reads from source table ``table`` (by qualifier or unique name)."""
    found = []
    for column in tree.find_all(exp.Column):
        if _source_table_of(column, ctx, tree) == table:
            found.append(column.name)
    return found


def _source_table_of(column: exp.Column, ctx: _Context, tree: exp.Expr) -> str | None:
    qualifier = column.table.lower()
    if qualifier:
        return ctx.aliases.get(qualifier, qualifier)
    names = list(dict.fromkeys(t.name.lower() for t in tree.find_all(exp.Table)))
    for name in names:
        source = ctx.source.table(name) if ctx.source else None
        if source is not None and source.column(column.name) is not None:
            return name
    for name in names:
        target = ctx.target.table(name)
        if target is not None and target.column(column.name) is not None:
            return name
    return names[0] if names else None


def _table_score(name: str, table: SchemaTable, used: list[str], ctx: _Context) -> float:
    """How well target ``table`` fits source table ``name`` on its own."""
    fit = sum(max((name_similarity(u, c.name) for c in table.columns), default=0.0)
              for u in used if u != "*") / max(1, len(used))
    source = ctx.source.table(name) if ctx.source else None
    shape = 0.0
    if source is not None:
        shape = sum(max((name_similarity(a.name, b.name) for b in table.columns), default=0.0)
                    for a in source.columns) / len(source.columns)
    columns = sum(mention(c.name, ctx.words, table.name) for c in table.columns)
    return (2.0 * name_similarity(name, table.name) + 2.0 * mention(table.name, ctx.words)
            + 0.3 * columns / len(table.columns) + 1.0 * fit + 0.5 * shape)


def _linked(a: SchemaTable, b: SchemaTable) -> bool:
    return any(fk[1].lower() == b.name.lower() for fk in a.foreign_keys)


def _map_tables(tree: exp.Expr, ctx: _Context) -> None:
    """Map the query's tables: same names first, then the best joint assignment of the rest
    (individual fit plus foreign keys that keep pointing the same way)."""
    names = list(dict.fromkeys(t.name.lower() for t in tree.find_all(exp.Table)))
    for name in names:
        found = ctx.target.table(name)
        if found is not None:
            ctx.tables[name] = found
    free = [n for n in names if n not in ctx.tables][:4]
    if not free or not ctx.target.tables:
        return
    taken = {t.name.lower() for t in ctx.tables.values()}
    single = {n: {t.name.lower(): _table_score(n, t, _source_columns(tree, ctx, n), ctx)
                  for t in ctx.target.tables} for n in free}
    options = {n: sorted(ctx.target.tables, key=lambda t, n=n: -single[n][t.name.lower()])[:6]
               for n in free}
    source_links = {(a, b) for a in names for b in names if a != b and ctx.source
                    and (sa := ctx.source.table(a)) is not None
                    and (sb := ctx.source.table(b)) is not None and _linked(sa, sb)}
    best: tuple[float, tuple[SchemaTable, ...]] | None = None
    for combo in itertools.product(*(options[n] for n in free)):
        chosen = dict(ctx.tables) | dict(zip(free, combo, strict=True))
        lowered = [t.name.lower() for t in combo]
        score = sum(single[n][t.name.lower()] for n, t in zip(free, combo, strict=True))
        score -= 3.0 * (len(lowered) - len(set(lowered)) + len(set(lowered) & taken))
        for a, b in source_links:
            if a in chosen and b in chosen:
                score += 1.5 if _linked(chosen[a], chosen[b]) else -0.5
        if best is None or score > best[0]:
            best = (score, combo)
    if best is not None:
        ctx.tables.update(zip(free, best[1], strict=True))


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
                 ctx: _Context) -> SchemaColumn:
    src = ctx.source.table(source_table) if ctx.source else None
    src_col = src.column(column.name) if src else None
    numeric = _wants_numeric(column) or bool(src_col and src_col.numeric)
    key = (table.name.lower(), column.name.lower())
    assigned = {v for (t, s), v in ctx.used_columns.items() if t == key[0] and s != key[1]}
    idish = "id" in name_words(column.name)
    valued = _compared_with_string(column)
    lower_q = ctx.question.lower()

    def score(c: SchemaColumn) -> float:
        c_id = "id" in name_words(c.name) or c.name in table.primary_key
        seen = valued and any(isinstance(v, str) and len(v) > 1 and v.lower() in lower_q
                              for v in c.samples)
        return (2.0 * name_similarity(column.name, c.name)
                + 1.5 * mention(c.name, ctx.words, table.name)
                + 0.4 * (c.numeric == numeric) + 0.6 * (idish and c_id)
                - 0.6 * (c_id and not idish) - 1.0 * (c.name.lower() in assigned)
                + 2.0 * seen)

    return max(table.columns, key=score)


def _map_joins(tree: exp.Expr, ctx: _Context) -> dict[int, str]:
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
        if lt.column(left.name) and rt.column(right.name):
            continue
        for a, b, flip in ((lt, rt, False), (rt, lt, True)):
            fk = next((fk for fk in a.foreign_keys if fk[1].lower() == b.name.lower()), None)
            if fk is not None:
                pair = (fk[0], fk[2] or (b.primary_key[0] if b.primary_key else fk[0]))
                fixed[id(left)], fixed[id(right)] = (pair[1], pair[0]) if flip else pair
                break
    return fixed


def _map_columns(tree: exp.Expr, ctx: _Context) -> None:
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
            exact = table.column(column.name)
            new_name = exact.name if exact else _pick_column(column, source_table or "",
                                                             table, ctx).name
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


def _question_values(question: str) -> tuple[list[str], list[float]]:
    quoted = [next(g for g in m if g) for m in _QUOTED.findall(question)]
    numbers = [float(n) for n in _NUMBER.findall(question)]
    numbers += [float(_NUMBER_WORDS[w]) for w in _QWORD.findall(question.lower())
                if w in _NUMBER_WORDS]
    return quoted, numbers


def _compared_column(literal: exp.Literal, ctx: _Context) -> SchemaColumn | None:
    parent = literal.parent
    while isinstance(parent, exp.Tuple | exp.Paren):
        parent = parent.parent
    if parent is None:
        return None
    for node in parent.iter_expressions():
        if isinstance(node, exp.Column):
            table = ctx.tables.get(ctx.aliases.get(node.table.lower(), node.table.lower()))
            tables = [table] if table else list(ctx.tables.values()) or ctx.target.tables
            for t in tables:
                found = t.column(node.name)
                if found is not None:
                    return found
    return None


def _ground_literals(tree: exp.Expr, ctx: _Context) -> None:
    quoted, numbers = _question_values(ctx.question)
    lower_q = ctx.question.lower()
    used_strings: set[str] = set()
    capitalised = [c for c in _CAPITALISED.findall(ctx.question)
                   if not ctx.target.table(c) and c.lower() not in ("i", "what", "which")]
    for literal in list(tree.find_all(exp.Literal)):
        if literal.is_string:
            text = literal.this
            core = text.strip("%")
            if not core or core.lower() in lower_q:
                used_strings.add(core.lower())
                continue
            column = _compared_column(literal, ctx)
            options = [str(v) for v in (column.samples if column else [])
                       if isinstance(v, str) and re.search(rf"\b{re.escape(v.lower())}\b",
                                                           lower_q)]
            options += quoted + capitalised
            pick = next((o for o in options if o.lower() not in used_strings), None)
            if pick is None:
                continue
            used_strings.add(pick.lower())
            new = text.replace(core, pick) if core != text else pick
            literal.replace(exp.Literal.string(new))
            ctx.changed = True
        else:
            try:
                value = float(literal.this)
            except ValueError:
                continue
            if value in numbers or (isinstance(literal.parent, exp.Limit) and value == 1):
                if value in numbers:
                    numbers.remove(value)
                continue
            if numbers:
                new_value = numbers.pop(0)
                text = str(int(new_value)) if new_value.is_integer() else str(new_value)
                literal.replace(exp.Literal.number(text))
                ctx.changed = True


def ground_sql(sql: str, target: Schema, question: str, source: Schema | None = None) -> str:
    """``sql`` rewritten for ``target``: tables and columns mapped by name, question mentions,
    types and foreign keys; literals replaced by values the question mentions. Unparseable
    SQL, or SQL that needs no change, comes back unchanged."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except (sqlglot.errors.SqlglotError, ValueError):
        return sql
    if tree is None:
        return sql
    ctx = _Context(target=target, source=source, words=question_words(question),
                   question=question)
    for node in tree.find_all(exp.Table):
        if node.alias:
            ctx.aliases[node.alias.lower()] = node.name.lower()
    same_db = source is not None and source.fingerprint == target.fingerprint
    if target.tables and not same_db:
        _map_tables(tree, ctx)
        _map_columns(tree, ctx)
    elif target.tables:
        for name in {t.name.lower() for t in tree.find_all(exp.Table)}:
            found = target.table(name)
            if found is not None:
                ctx.tables[name] = found
    _ground_literals(tree, ctx)
    if not ctx.changed:
        return sql
    try:
        return tree.sql(dialect="sqlite")
    except (sqlglot.errors.SqlglotError, ValueError):
        return sql
