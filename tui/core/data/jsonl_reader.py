"""Random access to a huge JSONL file: an index of line offsets, lines parsed only when shown."""

from __future__ import annotations

import json
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCAN_CHUNK = 4 << 20
"""Bytes read per step while indexing (the file is streamed, never held whole)."""

ROW_CACHE = 512
"""Parsed rows kept for paging back and forth."""

DbOf = Callable[[Any], str | None]
"""Returns the database a parsed record is about (None when unknown)."""


@dataclass(frozen=True)
class Row:
    """One line of the file, parsed on demand."""

    index: int
    """0-based position among the file's lines."""
    data: Any
    """The parsed JSON value (None when the line does not parse)."""
    error: str | None = None
    """Why the line does not parse, when it does not."""

    @property
    def line(self) -> int:
        """1-based line number."""
        return self.index + 1

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Chat messages of a chat-format record (empty otherwise)."""
        found = self.data.get("messages") if isinstance(self.data, dict) else None
        return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []

    def _content(self, role: str) -> str | None:
        for message in self.messages:
            if message.get("role") == role and isinstance(message.get("content"), str):
                return str(message["content"])
        return None

    @property
    def question(self) -> str | None:
        """The Spider ``question``, or the first user message of a chat record."""
        if isinstance(self.data, dict) and isinstance(self.data.get("question"), str):
            return str(self.data["question"])
        return self._content("user")

    @property
    def sql(self) -> str | None:
        """The Spider ``query``, or the first assistant message of a chat record."""
        if isinstance(self.data, dict) and isinstance(self.data.get("query"), str):
            return str(self.data["query"])
        return self._content("assistant")

    @property
    def db_id(self) -> str | None:
        """The Spider ``db_id`` (chat records do not carry one)."""
        value = self.data.get("db_id") if isinstance(self.data, dict) else None
        return value if isinstance(value, str) else None


def _record_db(data: Any) -> str | None:
    value = data.get("db_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def searchable_text(data: Any) -> Iterator[str]:
    """What a text filter looks at: a chat record's non-system contents (question and SQL, not
    the schema every example of a database shares), or every string of any other record."""
    messages = data.get("messages") if isinstance(data, dict) else None
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and message.get("role") not in ("system", "developer"):
                yield from _strings(message.get("content"))
        return
    yield from _strings(data)


class JsonlReader:
    """A JSONL file opened by indexing line starts (array('q')); ``len()`` is instant after
    the scan and ``reader[i]`` parses one line. Thread-safe; close it (or use ``with``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        """The file read."""
        self._file = open(self.path, "rb")  # noqa: SIM115 - kept open for random access
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, Row] = OrderedDict()
        self._starts = array("q")
        try:
            self._end = self._index()
        except BaseException:
            self._file.close()
            raise

    def _index(self) -> int:
        starts = self._starts
        starts.append(0)
        offset = 0
        read = self._file.read
        while chunk := read(SCAN_CHUNK):
            find = chunk.find
            position = find(b"\n")
            while position != -1:
                starts.append(offset + position + 1)
                position = find(b"\n", position + 1)
            offset += len(chunk)
        if starts[-1] == offset:  # the file ends with a newline (or is empty): no line after it
            starts.pop()
        return offset

    @property
    def size(self) -> int:
        """File size in bytes when it was indexed."""
        return self._end

    def __len__(self) -> int:
        return len(self._starts)

    def __enter__(self) -> JsonlReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        with self._lock:
            self._file.close()

    def _span(self, first: int, last: int) -> tuple[int, int]:
        """Byte range of lines ``first`` to ``last`` inclusive."""
        return self._starts[first], self._start(last + 1)

    def rows_within(self, first: int, max_bytes: int, max_rows: int) -> int:
        """How many rows from ``first`` fit in ``max_bytes`` (at least one, at most
        ``max_rows``), so that sequential reads stay bounded in memory."""
        most = min(max_rows, len(self) - first)
        if most <= 0:
            return 0
        base = self._starts[first]
        lo, hi = 1, most  # largest k in [1, most] whose rows fit (k = 1 always allowed)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._start(first + mid) - base <= max_bytes:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _start(self, index: int) -> int:
        return self._starts[index] if index < len(self._starts) else self._end

    def raw_lines(self, first: int, count: int) -> list[bytes]:
        """Raw bytes (without terminators) of up to ``count`` lines from ``first``, one read."""
        last = min(len(self), first + count) - 1
        if first < 0 or first > last:
            return []
        start, end = self._span(first, last)
        with self._lock:
            self._file.seek(start)
            block = self._file.read(end - start)
        out = []
        for i in range(first, last + 1):
            line_start, line_end = self._span(i, i)
            line = block[line_start - start : line_end - start]
            out.append(line.rstrip(b"\n").rstrip(b"\r"))
        return out

    def raw(self, index: int) -> bytes:
        """Raw bytes of one line (without its terminator)."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.raw_lines(index, 1)[0]

    def __getitem__(self, index: int) -> Row:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        with self._lock:
            cached = self._cache.get(index)
            if cached is not None:
                self._cache.move_to_end(index)
                return cached
        row = _parse(index, self.raw(index))
        self._remember(row)
        return row

    def _remember(self, row: Row) -> None:
        with self._lock:
            self._cache[row.index] = row
            while len(self._cache) > ROW_CACHE:
                self._cache.popitem(last=False)

    def page(self, first: int, count: int) -> list[Row]:
        """Parsed rows ``first`` .. ``first + count - 1`` (fewer at the end of the file)."""
        rows = [_parse(first + i, raw) for i, raw in enumerate(self.raw_lines(first, count))]
        for row in rows:
            self._remember(row)
        return rows

    def filter(self, text: str = "", db_id: str | None = None,
               db_of: DbOf | None = None) -> FilterScan:
        """An incremental scan for rows whose strings contain ``text`` (any case) and whose
        database is ``db_id`` (``db_of`` finds it in a record; default: the ``db_id`` key)."""
        return FilterScan(self, text, db_id, db_of)


def _parse(index: int, raw: bytes) -> Row:
    if not raw.strip():
        return Row(index, None, "blank line")
    try:
        return Row(index, json.loads(raw))
    except UnicodeDecodeError:
        return Row(index, None, "not valid UTF-8")
    except ValueError as error:
        return Row(index, None, f"not valid JSON: {error}")


class FilterScan:
    """Matching row indexes, found a block at a time so a UI can show partial results."""

    def __init__(self, reader: JsonlReader, text: str = "", db_id: str | None = None,
                 db_of: DbOf | None = None) -> None:
        self.reader = reader
        """The file scanned."""
        self.text = text.casefold()
        """Lower-cased text looked for ("" = any)."""
        self.db_id = db_id
        """Database looked for (None = any)."""
        self.matches = array("q")
        """Indexes of matching rows found so far, ascending."""
        self.scanned = 0
        """Rows examined so far."""
        self._db_of = db_of or _record_db
        # Raw prefilters are exact only for what JSON writes verbatim: ASCII without escapes.
        plain = text.isascii() and not any(c in text for c in '"\\/') and text.isprintable()
        self._raw_text = self.text.encode() if plain and self.text else None
        self._raw_db = (json.dumps(db_id).encode()
                        if db_id is not None and db_of is None and db_id.isascii() else None)

    @property
    def done(self) -> bool:
        """Whether every row has been examined."""
        return self.scanned >= len(self.reader)

    def advance(self, max_rows: int = 20_000) -> bool:
        """Examine up to ``max_rows`` more rows; True when the scan is complete."""
        stop = min(len(self.reader), self.scanned + max_rows)
        while self.scanned < stop:
            first = self.scanned
            count = self.reader.rows_within(first, SCAN_CHUNK, stop - first)
            for offset, raw in enumerate(self.reader.raw_lines(first, count)):
                if self._matches(raw):
                    self.matches.append(first + offset)
            self.scanned = first + count
        return self.done

    def run(self, should_stop: Callable[[], bool] | None = None,
            step: int = 20_000) -> array[int]:
        """Scan to the end (or until ``should_stop()``); returns the matches."""
        while not self.done and not (should_stop is not None and should_stop()):
            self.advance(step)
        return self.matches

    def _matches(self, raw: bytes) -> bool:
        if self._raw_db is not None and self._raw_db not in raw and b"\\u" not in raw:
            return False
        if self._raw_text is not None:
            lowered = raw.lower()
            if self._raw_text not in lowered and b"\\u" not in raw:
                return False
        try:
            data = json.loads(raw)
        except ValueError:
            return False
        if self.db_id is not None and self._db_of(data) != self.db_id:
            return False
        if not self.text:
            return True
        return any(self.text in value.casefold() for value in searchable_text(data))
