"""Agreement between a question's wording and a query's shape (counting, grouping, sorting...)."""

from __future__ import annotations

import re
import sqlite3

from tui.core.data.schema import quote_name
from tui.server.engines.schema_parse import Schema

# (question cue, SQL feature, weight when they disagree)
_CUES: tuple[tuple[re.Pattern[str], re.Pattern[str], float], ...] = tuple(
    (re.compile(q, re.IGNORECASE), re.compile(s, re.IGNORECASE), w) for q, s, w in (
        (r"\bhow many\b|\bnumber of\b|\bcount\b", r"\bcount\s*\(", 1.0),
        (r"\beach\b|\bper\b|\bevery\s+\w+\s*,|\bby \w+$", r"\bgroup\s+by\b", 0.8),
        (r"\b(?:average|mean)\b", r"\bavg\s*\(", 1.0),
        (r"\b(?:total|sum)\b", r"\bsum\s*\(", 0.6),
        (r"\b(?:most|least|highest|lowest|largest|smallest|biggest|cheapest|oldest|youngest|"
         r"latest|earliest|newest|longest|shortest|best|worst|top|maximum|minimum|fewest|"
         r"max|min|greatest|first|last|more expensive|priciest|busiest)\b",
         r"\border\s+by\b[^()]*\blimit\b|\b(?:max|min)\s*\(", 0.8),
        (r"\b(?:order(?:ed)?|sort(?:ed)?|ascending|descending|alphabetical(?:ly)?|"
         r"from the \w+ (?:up|down)|first)\b", r"\border\s+by\b", 0.6),
        (r"\b(?:distinct|different|unique|once)\b|without duplicates",
         r"\bdistinct\b|\bgroup\s+by\b", 0.5),
        (r"\b(?:not|no|never|without|none|neither)\b|n't\b|\bunknown\b|\bmissing\b",
         r"\bnot\b|\bexcept\b|\bis\s+null\b|!=|<>", 0.8),
        (r"\bboth\b|\band also\b", r"\bintersect\b|\band\b", 0.6),
        (r"\b(?:more|less|fewer|greater|higher|lower|older|younger|longer|shorter|cheaper|"
         r"above|below|over|under|at least|at most|exceed\w*|before|after|between)\b",
         r"[<>]|\bbetween\b|\blike\b", 0.5),
        (r"\baverage\b.*\b(?:above|below|more|less|higher|lower)\b|"
         r"\b(?:above|below|more|less|higher|lower) than (?:the )?average\b",
         r"\(\s*select\b", 0.8),
    ))


def cue_agreement(question: str, sql: str) -> float:
    """Minus the weight of every cue the query ignores, or feature nothing in the question asks
    for (half weight); plus a little for each one that agrees."""
    score = 0.0
    for cue, feature, weight in _CUES:
        asked, has = cue.search(question) is not None, feature.search(sql) is not None
        if asked and has:
            score += 0.2 * weight
        elif asked:
            score -= weight
        elif has:
            score -= 0.5 * weight
    return score


class SchemaChecker:
    """An empty in-memory copy of a prompt's schema that tells whether SQL compiles against it."""

    def __init__(self, schema: Schema) -> None:
        self._db = sqlite3.connect(":memory:")
        for table in schema.tables:
            columns = ", ".join(quote_name(c.name) for c in table.columns)
            try:
                self._db.execute(f"CREATE TABLE {quote_name(table.name)} ({columns})")
            except sqlite3.Error:
                continue  # a name SQLite refuses cannot be queried either

    def compiles(self, sql: str) -> bool:
        """True when SQLite can prepare ``sql`` as a single read-only statement."""
        if not sql.strip() or ";" in sql.strip().rstrip(";"):
            return False
        try:
            self._db.execute(f"EXPLAIN {sql}")
        except (sqlite3.Error, ValueError):
            return False
        return True

    def close(self) -> None:
        """Release the in-memory database."""
        self._db.close()
