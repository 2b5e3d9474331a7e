"""The tuned model's answers: BM25 over training questions, the answer re-grounded (sqlglot)."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tui.server.engines.base import ChatExample
from tui.server.engines.cues import SchemaChecker, cue_agreement
from tui.server.engines.grounding import ground
from tui.server.engines.schema_parse import Schema, name_words, parse_schema
from tui.server.engines.usage import message_text
from tui.server.engines.words import stem

K1 = 1.2
"""BM25 term-frequency saturation."""
B = 0.75
"""BM25 length normalisation."""
SAME_SCHEMA_BOOST = 1.5
"""Score multiplier for training questions asked about the same database as the target."""
CANDIDATES = 15
"""Nearest questions whose answers are re-grounded and compared before answering."""
SIMILARITY_WEIGHT = 2.0
"""Weight of the (normalised) BM25 similarity against the re-grounded query's fit."""

_WORD = re.compile(r"[A-Za-z0-9]+|'[^']*'|\"[^\"]*\"")


def prompt_parts(messages: list[dict[str, Any]]) -> tuple[str, str, str | None]:
    """(system text, last user question, the answer after it or None) of a chat."""
    system = "\n".join(message_text(m) for m in messages if m.get("role") == "system")
    question, answer = "", None
    for message in messages:
        role = message.get("role")
        if role == "user":
            question, answer = message_text(message), None
        elif role == "assistant" and message.get("weight", 1) != 0:
            answer = message_text(message)
    return system, question, answer


def question_terms(question: str, schema: Schema | None) -> list[str]:
    """Stemmed words and word bigrams, plus bigrams with schema names and values masked.

    The masked bigrams (``how many <s>``) let questions about other databases match on shape.
    """
    names = {stem(w) for t in (schema.tables if schema else []) for n in
             [t.name, *(c.name for c in t.columns)] for w in name_words(n)}
    words: list[str] = []
    masked: list[str] = []
    for token in _WORD.findall(question):
        if token[0] in "'\"":
            masked.append("<v>")
            continue
        word = stem(token)
        words.append(word)
        masked.append("<n>" if word.isdigit() else "<s>" if word in names else word)
    terms = list(words)
    terms += [f"{a} {b}" for a, b in itertools.pairwise(words)]
    terms += [f"~{a} {b}" for a, b in itertools.pairwise(masked)
              if "<" in a or "<" in b]
    return terms


@dataclass
class Entry:
    """One training question with its answer and the schema it was asked about."""

    question: str
    """The user question."""
    answer: str
    """The assistant answer (SQL for text-to-SQL data)."""
    schema: int
    """Index into ``RetrievalIndex.schemas`` (-1 when the prompt had no CREATE TABLE)."""


class RetrievalIndex:
    """BM25 index of training questions; answers a chat with the nearest one's SQL, re-grounded."""

    def __init__(self, entries: list[Entry], schemas: list[Schema]) -> None:
        self.entries = entries
        """Training questions in upload order."""
        self.schemas = schemas
        """Distinct schemas of the training prompts."""
        self._fingerprints = [s.fingerprint for s in schemas]
        self._docs = [Counter(question_terms(e.question, self._schema(e.schema)))
                      for e in entries]
        self._lengths = [sum(d.values()) for d in self._docs]
        self._avg = sum(self._lengths) / len(self._lengths) if self._lengths else 1.0
        self._postings: dict[str, list[int]] = {}
        for i, doc in enumerate(self._docs):
            for term in doc:
                self._postings.setdefault(term, []).append(i)
        n = len(entries)
        self._idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5))
                     for t, p in self._postings.items()}

    def _schema(self, index: int) -> Schema | None:
        return self.schemas[index] if 0 <= index < len(self.schemas) else None

    @classmethod
    def build(cls, examples: list[ChatExample]) -> RetrievalIndex:
        """Index the examples' questions and answers, parsing each distinct prompt schema once."""
        by_text: dict[str, int] = {}
        by_print: dict[str, int] = {}
        schemas: list[Schema] = []
        entries = []
        for example in examples:
            system, question, answer = prompt_parts(example.messages)
            if answer is None:
                continue
            if system not in by_text:
                schema = parse_schema(system)
                if not schema.tables:
                    by_text[system] = -1
                else:
                    if schema.fingerprint not in by_print:
                        by_print[schema.fingerprint] = len(schemas)
                        schemas.append(schema)
                    by_text[system] = by_print[schema.fingerprint]
            entries.append(Entry(question, answer, by_text[system]))
        return cls(entries, schemas)

    def search(self, question: str, schema: Schema | None, k: int = 1) -> list[tuple[float, int]]:
        """The ``k`` best (score, entry index) pairs for a question about ``schema``."""
        scores: dict[int, float] = {}
        for term, tf in Counter(question_terms(question, schema)).items():
            idf = self._idf.get(term)
            if idf is None:
                continue
            for i in self._postings[term]:
                f = self._docs[i][term]
                norm = f * (K1 + 1) / (f + K1 * (1 - B + B * self._lengths[i] / self._avg))
                scores[i] = scores.get(i, 0.0) + idf * norm * tf
        target = schema.fingerprint if schema and schema.tables else None
        if target is not None:
            for i in scores:
                s = self.entries[i].schema
                if s >= 0 and self._fingerprints[s] == target:
                    scores[i] *= SAME_SCHEMA_BOOST
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        return [(score, i) for i, score in ranked]

    def answer(self, messages: list[dict[str, Any]]) -> str:
        """The best of the nearest training answers, each re-grounded onto the chat's schema
        and question, judged by similarity, coverage of the question, wording cues and whether
        it compiles against the schema."""
        system, question, _ = prompt_parts(messages)
        if not self.entries:
            return ""
        schema = parse_schema(system) if system else None
        hits = self.search(question, schema, CANDIDATES)
        if not hits:
            return self.entries[0].answer
        if schema is None or not schema.tables:
            return self.entries[hits[0][1]].answer
        checker = SchemaChecker(schema)
        try:
            best: tuple[float, str] | None = None
            for score, i in hits:
                entry = self.entries[i]
                grounded = ground(entry.answer, schema, question, self._schema(entry.schema),
                                  entry.question)
                total = (SIMILARITY_WEIGHT * score / hits[0][0] + grounded.fit
                         + cue_agreement(question, grounded.sql)
                         - (0.0 if checker.compiles(grounded.sql) else 5.0))
                if best is None or total > best[0]:
                    best = (total, grounded.sql)
        finally:
            checker.close()
        return best[1] if best else self.entries[hits[0][1]].answer

    def to_json(self) -> dict[str, Any]:
        """JSON form: entries and schemas (the BM25 statistics are rebuilt on load)."""
        return {"entries": [[e.question, e.answer, e.schema] for e in self.entries],
                "schemas": [s.to_json() for s in self.schemas]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RetrievalIndex:
        """Inverse of ``to_json``."""
        return cls([Entry(str(q), str(a), int(s)) for q, a, s in data["entries"]],
                   [Schema.from_json(s) for s in data["schemas"]])
