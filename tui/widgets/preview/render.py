"""Rendering an example's chat messages and counting their tokens, for the preview's workers."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from tui.core.models import DEFAULT_MODEL
from tui.widgets.preview.source import ExampleSource, Row

if TYPE_CHECKING:  # prompts and schema (hashlib, sqlite3) load in the pane's workers
    from tui.core.data.prompts import PromptTemplate
    from tui.core.data.schema import SchemaCache


class ExampleRenderer:
    """THE rendering function (tui.core.data.prompts) plus a schema cache and a token counter.

    Thread-safe; called from thread workers only (reads SQLite, loads the encoding).
    """

    def __init__(self, template: PromptTemplate | None = None,
                 model: str = DEFAULT_MODEL) -> None:
        self._template = template
        self.model = model
        """Whose encoding counts the tokens."""
        self._schemas: SchemaCache | None = None
        self._counter: Any = None
        self._lock = threading.Lock()

    @property
    def template(self) -> PromptTemplate:
        """How examples become messages (the default template unless one was given)."""
        if self._template is None:
            from tui.core.data.prompts import DEFAULT_TEMPLATE

            self._template = DEFAULT_TEMPLATE
        return self._template

    @property
    def schemas(self) -> SchemaCache:
        """Schema text, read once per database."""
        with self._lock:
            if self._schemas is None:
                from tui.core.data.schema import SchemaCache

                self._schemas = SchemaCache()
        return self._schemas

    def clear(self) -> None:
        """Forget cached schemas (another dataset was opened)."""
        if self._schemas is not None:
            self._schemas.clear()

    def _count(self, messages: list[dict[str, Any]]) -> int:
        with self._lock:
            if self._counter is None:
                from tui.core.budget.tokens import TokenCounter, encoding_for_model, get_encoding

                choice = encoding_for_model(self.model)
                self._counter = TokenCounter(get_encoding(choice.name))
        return int(self._counter.count(messages))

    def messages(self, source: ExampleSource | None, row: Row) -> list[dict[str, Any]] | None:
        """The example's chat messages (as written, for chat JSONL), None without a schema."""
        if row.messages is not None:
            return [dict(m) for m in row.messages]
        path = source.db_path(row.db_id) if source is not None else None
        if path is None:
            return None
        schema = self.schemas.schema_text(path, self.template.sample_values,
                                          sample_rows=self.template.sample_rows)
        from tui.core.data.prompts import render_messages

        return render_messages(self.template, schema, row.question, row.sql)

    def render(self, source: ExampleSource | None,
               row: Row) -> tuple[list[dict[str, Any]], int | None]:
        """(messages, tokens); without a database only the question and SQL are shown."""
        try:
            messages = self.messages(source, row)
        except Exception as error:
            return [{"role": "error", "content": f"cannot read the schema: {error}"}], None
        if messages is None:
            note = "database file missing: the schema cannot be rendered"
            return [{"role": "note", "content": note}], None
        return messages, self._count(messages)

    def tokens(self, source: ExampleSource | None, row: Row) -> int | None:
        """Tokens of the example in chat format, None when it cannot be rendered."""
        try:
            messages = self.messages(source, row)
        except Exception:
            return None
        return None if messages is None else self._count(messages)
