"""What the headless commands share: the provider, exit codes, tables, progress."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from tui.core.elide import elide_middle

# asyncio and tui.core.finetune.files load when a command runs: tui.cli imports this module for the
# exit-code epilog while it builds the parser, at every sqltune start.
if TYPE_CHECKING:
    from tui.core.finetune.files import ListPage, UploadProgress
    from tui.core.provider.connection import Connection
    from tui.core.provider.providers import LocalEndpoint

T = TypeVar("T")
ServiceT = TypeVar("ServiceT")

EXIT_OK = 0
"""The operation succeeded (for ``jobs create --wait``: the job succeeded)."""
EXIT_FAILED = 1
"""The operation failed: the provider refused it, not found, the job failed or was cancelled."""
EXIT_USAGE = 2
"""Bad usage or bad input: unknown option or provider profile, a malformed training file."""
EXIT_INTERRUPTED = 130
"""Ctrl-C."""

EXIT_CODES_EPILOG = """\
exit codes:
  0    the operation succeeded (jobs create --wait: the job succeeded)
  1    the operation failed: the provider refused it, an id was not found,
       the job failed or was cancelled
  2    bad usage or bad input: unknown option or provider profile,
       a malformed training file (nothing is uploaded)
  130  interrupted (Ctrl-C); a job being waited for keeps running

--json prints the provider's JSON object unchanged on stdout (a list: the page
object with "data"); messages, progress and followed events go to stderr."""


class CommandError(Exception):
    """A failure to report in one line (or a few) and exit with ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILED,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        """The exit status."""
        self.details = details or {}
        """Extra fields of the ``--json`` error object."""


@contextlib.asynccontextmanager
async def open_provider(args: argparse.Namespace) -> AsyncIterator[Connection]:
    """Connect to ``--provider`` (else config, environment, the local server): the app's
    connect(), off the event loop, so Ctrl-C ends even a wait for the local server to start."""
    from tui.core.provider.config import ConfigError
    from tui.core.provider.connection import open_connection
    from tui.core.provider.providers import ProviderError
    from tui.launch import local_endpoint

    def start_local() -> LocalEndpoint:
        try:
            return local_endpoint()
        except ProviderError as error:  # the server could not start: not a usage error
            raise CommandError(str(error), EXIT_FAILED) from None

    try:
        connection = await open_connection(getattr(args, "provider", None), start_local)
    except (ProviderError, ConfigError) as error:
        raise CommandError(str(error), EXIT_USAGE) from None
    try:
        yield connection
    finally:
        await connection.aclose()


async def call_service(args: argparse.Namespace, make: Callable[[Connection], ServiceT],
                       call: Callable[[ServiceT], Awaitable[T]],
                       errors: type[Exception]) -> T:
    """Open the provider, make its service and await one call; ``errors`` exit 1 with their
    message."""
    async with open_provider(args) as provider:
        try:
            return await call(make(provider))
        except errors as error:
            raise CommandError(str(error)) from None


def run_command(prog: str, args: argparse.Namespace,
                action: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run one async action: errors become a message (and a JSON error object) and an exit code."""
    import asyncio

    from tui.core.provider.providers import redact

    try:
        return asyncio.run(action())
    except CommandError as error:
        message = redact(str(error))
        print(f"{prog}: {message}", file=sys.stderr, flush=True)
        if getattr(args, "json", False):
            kind = "usage" if error.code == EXIT_USAGE else "failed"
            emit_json({"error": {"type": kind, "message": message, **error.details}})
        return error.code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def emit_json(obj: Any, out: TextIO | None = None) -> None:
    """One JSON object on one line of stdout."""
    stream = out or sys.stdout
    stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
    stream.flush()


def print_object(args: argparse.Namespace, raw: dict[str, Any], lines: Sequence[str]) -> None:
    """One provider object: its JSON with ``--json``, else its plain-text lines."""
    if args.json:
        emit_json(raw)
    else:
        print_lines(lines)


def print_page(args: argparse.Namespace, page: ListPage[Any], lines: Sequence[str],
               more: str) -> int:
    """A listing: the page object with ``--json``, else ``lines`` and, when more follow, the
    ``--after`` of the next page on stderr."""
    if args.json:
        emit_json(page.raw)
        return EXIT_OK
    print_lines(lines)
    if page.has_more and page.items:
        print(f"{more}: --after {page.items[-1].id}", file=sys.stderr)
    return EXIT_OK


# --- plain text ----------------------------------------------------------------------------------

def env_columns() -> int | None:
    """$COLUMNS when it is a positive number."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def output_width(stream: TextIO | None = None) -> int | None:
    """Columns to fit: $COLUMNS, else the terminal's; None (no cutting) when piped."""
    columns = env_columns()
    if columns is not None:
        return columns
    stream = stream or sys.stdout
    with contextlib.suppress(AttributeError, ValueError, OSError):
        if stream.isatty():
            return shutil.get_terminal_size().columns
    return None


@dataclass(frozen=True)
class Column:
    """One column of a plain-text table."""

    header: str
    """Upper-case title."""
    flexible: bool = False
    """May be cut (in the middle) to fit the width; ids and numbers never are."""
    right: bool = False
    """Right-aligned (numbers)."""
    minimum: int = 10
    """Narrowest a flexible column gets."""
    drop: int | None = None
    """Left out when the table cannot fit otherwise, lowest first (None: always shown)."""


def _fit(columns: Sequence[Column], widths: list[int], width: int, gap: int) -> int:
    """Shrink flexible columns (widest first) toward ``width``; the columns still in excess."""
    excess = sum(widths) + gap * (len(widths) - 1) - width
    while excess > 0:
        floors = {i: max(column.minimum, len(column.header))
                  for i, column in enumerate(columns) if column.flexible}
        shrinkable = [i for i, floor in floors.items() if widths[i] > floor]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        step = min(excess, widths[widest] - floors[widest], max(1, excess // len(shrinkable)))
        widths[widest] -= step
        excess -= step
    return excess


def table(columns: Sequence[Column], rows: Sequence[Sequence[str]],
          width: int | None = None, gap: int = 2) -> list[str]:
    """Aligned lines fitting ``width``: flexible columns are cut in the middle, then the
    droppable ones left out; ``width=None`` (piped output) keeps every cell whole."""
    shown = list(range(len(columns)))
    while True:
        cols = [columns[i] for i in shown]
        widths = [max([len(columns[i].header), *(len(row[i]) for row in rows)]) for i in shown]
        if width is None or _fit(cols, widths, width, gap) <= 0:
            break
        droppable = [i for i in shown if columns[i].drop is not None]
        if not droppable:
            break
        shown.remove(min(droppable, key=lambda i: columns[i].drop or 0))
    lines = []
    for cells in [[column.header for column in columns], *rows]:
        parts = []
        for column, i, wide in zip(cols, shown, widths, strict=True):
            cell = elide_middle(cells[i], wide)
            parts.append(cell.rjust(wide) if column.right else cell.ljust(wide))
        lines.append((" " * gap).join(parts).rstrip())
    return lines


def fields(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """``name   value`` lines with the names aligned."""
    wide = max((len(name) for name, _ in pairs), default=0)
    return [f"{name.ljust(wide)}  {value}" for name, value in pairs]


def timestamp(seconds: int | None) -> str:
    """``2026-12-06 04:57:23`` in UTC (``-`` when unknown)."""
    if not seconds:
        return "-"
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def print_lines(lines: Sequence[str], out: TextIO | None = None) -> None:
    """Lines to stdout (or ``out``)."""
    stream = out or sys.stdout
    for line in lines:
        stream.write(line + "\n")
    stream.flush()


# --- progress ------------------------------------------------------------------------------------

class ProgressBar:
    """An upload's progress on one line of stderr, redrawn in place; silent when not a terminal."""

    def __init__(self, label: str, stream: TextIO | None = None, *,
                 enabled: bool | None = None, interval: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        """Where the bar is drawn."""
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        """False when stderr is not a terminal (scripts, pipes, CI logs)."""
        self.label = label
        """What is uploading (the file name)."""
        self._interval = interval
        self._last_draw = 0.0
        self._drawn = False

    def render(self, progress: UploadProgress, width: int) -> str:
        """``train.jsonl  [#######-------]  48%  1.2 MB/2.6 MB`` in at most ``width`` columns."""
        from tui.core.finetune.files import human_size

        parts = f" part {progress.part}/{progress.parts}" if progress.parts > 1 else ""
        tail = (f"{progress.fraction:4.0%}  "
                f"{human_size(progress.sent)}/{human_size(progress.total)}{parts}")
        label = elide_middle(self.label, max(8, width // 4))
        room = width - len(label) - len(tail) - 6
        if room < 5:
            return elide_middle(f"{label}  {tail}", width)
        filled = round(room * progress.fraction)
        return f"{label}  [{'#' * filled}{'-' * (room - filled)}]  {tail}"

    def __call__(self, progress: UploadProgress) -> None:
        """The FileService progress callback."""
        if not self.enabled:
            return
        now = time.monotonic()
        if progress.fraction < 1.0 and now - self._last_draw < self._interval:
            return
        self._last_draw = now
        width = max(20, self._columns() - 1)
        self.stream.write("\r" + self.render(progress, width).ljust(width))
        self.stream.flush()
        self._drawn = True

    def _columns(self) -> int:
        """$COLUMNS, else the width of the terminal the bar is drawn on (stdout may be piped)."""
        columns = env_columns()
        if columns is not None:
            return columns
        with contextlib.suppress(AttributeError, ValueError, OSError):
            return os.get_terminal_size(self.stream.fileno()).columns
        return shutil.get_terminal_size().columns

    def close(self) -> None:
        """End the bar's line (nothing when it never drew)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
