"""The local base model: a simple schema-grounded SQL guess that no training improved."""

from __future__ import annotations

import re
from typing import Any

from tui.core.data.schema import quote_name
from tui.server.engines.base import Completion
from tui.server.engines.retrieval import prompt_parts
from tui.server.engines.schema_parse import Schema, SchemaColumn, SchemaTable, parse_schema
from tui.server.engines.usage import make_completion
from tui.server.engines.words import mention, question_words

_COUNTING = re.compile(r"\b(how many|number of|count)\b", re.IGNORECASE)
_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"")


def _best_table(schema: Schema, words: set[str]) -> SchemaTable:
    def score(table: SchemaTable) -> float:
        columns = sum(mention(c.name, words) for c in table.columns) / len(table.columns)
        return 2.0 * mention(table.name, words) + columns

    return max(schema.tables, key=score)


def _value_column(table: SchemaTable, value: str, words: set[str]) -> SchemaColumn:
    for column in table.columns:
        if any(isinstance(s, str) and s.lower() == value.lower() for s in column.samples):
            return column
    text = [c for c in table.columns if not c.numeric] or table.columns
    return max(text, key=lambda c: mention(c.name, words))


def baseline_sql(schema: Schema, question: str) -> str:
    """``SELECT count(*)`` for counting questions, else the mentioned columns of the best table,
    with ``WHERE column = 'value'`` when the question quotes a value."""
    if not schema.tables:
        return "SELECT 1"
    words = question_words(question)
    table = _best_table(schema, words)
    where = ""
    quoted = next((a or b for a, b in _QUOTED.findall(question)), None)
    if quoted:
        column = _value_column(table, quoted, words)
        where = f" WHERE {quote_name(column.name)} = '{quoted.replace(chr(39), chr(39) * 2)}'"
    if _COUNTING.search(question):
        return f"SELECT count(*) FROM {quote_name(table.name)}{where}"
    chosen = [c.name for c in table.columns if mention(c.name, words) > 0.5
              and c.name not in table.primary_key]
    if not chosen:
        plain = [c.name for c in table.columns if c.name not in table.primary_key]
        chosen = plain[:1] or [table.columns[0].name]
    columns = ", ".join(quote_name(c) for c in chosen)
    return f"SELECT {columns} FROM {quote_name(table.name)}{where}"


class SchemaBaseline:
    """``sqltune-local-base``: answers from the schema in the system message alone."""

    def complete(self, messages: list[dict[str, Any]], *, max_tokens: int | None = None,
                 temperature: float = 0.0) -> Completion:
        """A schema-grounded guess for the last user question."""
        system, question, _ = prompt_parts(messages)
        return make_completion(messages, baseline_sql(parse_schema(system), question), max_tokens)
