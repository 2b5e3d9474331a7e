"""printf()/format() for the read-only executor that refuse a huge %.Nc.

SQLite fills `printf('%.*c', N, 'x')` in one uninterruptible step, so neither the progress
handler nor interrupt() could stop it; this replacement checks the sizes first.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any, Protocol

_CONVERSION = re.compile(r"%([-+ 0#,!]*)(\*|\d+)?(?:\.(\*|\d+))?([a-zA-Z%])")


class FailureSink(Protocol):
    """Where the executor reads why a statement failed."""

    failure: tuple[str, str] | None


class BoundedPrintf:
    """printf()/format() that refuse a %.Nc longer than `max_bytes`.

    Everything else is delegated unchanged to SQLite's own printf on a private in-memory
    connection with the same length limit.
    """

    def __init__(self, guard: FailureSink, max_bytes: int) -> None:
        self._guard = guard
        self._max_bytes = max_bytes
        self._engine: sqlite3.Connection | None = None

    def __call__(self, *args: Any) -> Any:
        if not args or args[0] is None:
            return None
        pattern, values = str(args[0]), list(args[1:])
        for match in _CONVERSION.finditer(pattern):
            width, precision, kind = match.group(2), match.group(3), match.group(4)
            if kind == "%":
                continue
            if width == "*":
                values.pop(0) if values else None
            size = values.pop(0) if precision == "*" and values else precision
            if kind == "c" and _as_int(size) > self._max_bytes:
                self._guard.failure = ("too_large",
                                       f"printf %.Nc of {size} characters is too large")
                raise OverflowError(self._guard.failure[1])
            if values:
                values.pop(0)
        if self._engine is None:
            self._engine = sqlite3.connect(":memory:", check_same_thread=False)
            self._engine.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, self._max_bytes)
        marks = ", ".join("?" * len(args))
        try:
            return self._engine.execute(f"SELECT printf({marks})", args).fetchone()[0]
        except sqlite3.Error as error:
            self._guard.failure = ("too_large" if "too big" in str(error) else "runtime_error",
                                   str(error))
            raise


def _as_int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return 0
