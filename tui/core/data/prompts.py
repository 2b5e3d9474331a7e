"""The prompt template and THE one function that renders an example's chat messages."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from tui.core.data.schema import SchemaCache

DEFAULT_INSTRUCTIONS = (
    "You write SQL for the SQLite database described below. "
    "Answer the user's question with one SQL query and nothing else."
)
"""Short on purpose: these tokens are paid for in every training example."""

TEMPLATE_FORMAT = 1
"""Version of the ``to_dict`` layout, recorded so old jobs stay readable."""

Message = dict[str, str]


class PromptTemplateError(ValueError):
    """A recorded template cannot be rebuilt (wrong types or values)."""


@dataclass(frozen=True)
class PromptTemplate:
    """How an example becomes chat messages; recorded with each job to rebuild its prompt."""

    instructions: str = DEFAULT_INSTRUCTIONS
    """First part of the system message."""
    sample_values: int = 3
    """Distinct sample values per column shown in the schema (0 = off)."""
    sample_rows: int = 0
    """Example rows per table shown in the schema (0 = off)."""
    dialect: str = ""
    """Optional line such as ``SQLite 3`` added after the instructions ("" = none)."""

    def __post_init__(self) -> None:
        if not isinstance(self.instructions, str):
            raise PromptTemplateError("instructions must be a string")
        if not isinstance(self.dialect, str):
            raise PromptTemplateError("dialect must be a string")
        for name in ("sample_values", "sample_rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise PromptTemplateError(f"{name} must be a whole number from 0 to 100")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (with a format version) to store beside a job."""
        return {"format": TEMPLATE_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptTemplate:
        """Rebuild a recorded template; unknown keys from newer versions are ignored."""
        if not isinstance(data, dict):
            raise PromptTemplateError("a prompt template must be a JSON object")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as error:
            raise PromptTemplateError(str(error)) from error

    def fingerprint(self) -> str:
        """Short stable hash of the template (same template, same prompts)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def with_samples(self, sample_values: int | None = None,
                     sample_rows: int | None = None) -> PromptTemplate:
        """A copy with other sample settings."""
        return replace(
            self,
            sample_values=self.sample_values if sample_values is None else sample_values,
            sample_rows=self.sample_rows if sample_rows is None else sample_rows,
        )


DEFAULT_TEMPLATE = PromptTemplate()
"""Schema with 3 sample values per column, no sample rows."""

COMPACT_TEMPLATE = PromptTemplate(sample_values=0)
"""Schema only: the cheapest prompt."""

RICH_TEMPLATE = PromptTemplate(sample_values=5, sample_rows=10)
"""Schema, 5 values per column and 10 example rows per table (~1,700 tokens on Spider)."""

TEMPLATES: dict[str, PromptTemplate] = {
    "default": DEFAULT_TEMPLATE,
    "compact": COMPACT_TEMPLATE,
    "rich": RICH_TEMPLATE,
}
"""Named presets offered by the app and the CLI."""


def preset_name(template: PromptTemplate) -> str | None:
    """``default``, ``compact`` or ``rich`` when the template is one of the presets."""
    return next((name for name, preset in TEMPLATES.items() if preset == template), None)


def template_label(template: PromptTemplate, name: str | None) -> str | None:
    """The name to record: ``name`` unless it names a preset the template is not (then the
    preset it is, or ``name+custom``); a preset's name when none is given."""
    if name in TEMPLATES and TEMPLATES[name] != template:
        return preset_name(template) or f"{name}+custom"
    return name if name is not None else preset_name(template)


def template_json(template: PromptTemplate, name: str | None) -> dict[str, Any]:
    """The ``"prompt_template"`` object of ``prepare --json``: name and fingerprint."""
    return {"name": template_label(template, name), "fingerprint": template.fingerprint()}


@functools.lru_cache(maxsize=256)
def system_text(template: PromptTemplate, schema_text: str) -> str:
    """The system message: instructions, optional dialect line, then the schema.

    Memoized: the examples of one database share one string (memory, and hashing it once)."""
    head = template.instructions.strip()
    if template.dialect.strip():
        head += f"\nDialect: {template.dialect.strip()}"
    return f"{head}\n\n{schema_text.strip()}" if schema_text.strip() else head


def render_messages(template: PromptTemplate, schema_text: str, question: str,
                    sql: str | None = None) -> list[Message]:
    """Chat messages for one example: system = instructions + schema, user = question,
    assistant = SQL when given. Training, playground and evaluator all call this."""
    messages = [
        {"role": "system", "content": system_text(template, schema_text)},
        {"role": "user", "content": question.strip()},
    ]
    if sql is not None:
        messages.append({"role": "assistant", "content": normalize_sql(sql)})
    return messages


def normalize_sql(sql: str) -> str:
    """Gold SQL as the model should learn it: single spaces outside quotes and comments, no
    trailing ';'. A ``--`` comment keeps its line break so it cannot swallow what follows."""
    out: list[str] = []
    pending_space = False
    after_comment_break = True  # no space at the start, nor after a comment's line break
    for index, part in enumerate(_VERBATIM.split(sql.strip())):
        if not part:
            continue
        if index % 2:  # a quoted name or string, or a comment: as written
            if pending_space and not after_comment_break:
                out.append(" ")
            out.append(part)
            pending_space = False
            after_comment_break = part.startswith("--") and part.endswith("\n")
            continue
        words = part.split()
        if not words:
            pending_space = True
            continue
        if (pending_space or part[0].isspace()) and not after_comment_break:
            out.append(" ")
        out.append(" ".join(words))
        pending_space = part[-1].isspace()
        after_comment_break = False
    result = "".join(out).rstrip()
    while result.endswith(";"):
        result = result[:-1].rstrip()
    return result


_VERBATIM = re.compile(r"""('[^']*'?|"[^"]*"?|`[^`]*`?|\[[^\]]*\]?|--[^\n]*\n?)""")
"""Quoted strings and names (to their closing quote or the end) and ``--`` comments (with their
line break): normalize_sql copies them unchanged."""


def messages_for(template: PromptTemplate, cache: SchemaCache, db_path: Path, question: str,
                 sql: str | None = None) -> list[Message]:
    """Messages for a question on a database file, with the schema from ``cache``."""
    schema = cache.schema_text(db_path, template.sample_values, sample_rows=template.sample_rows)
    return render_messages(template, schema, question, sql)
