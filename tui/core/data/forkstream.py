"""Run a function over items in a forked child process and stream the results back in order."""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_END = object()


class ChildFailed(RuntimeError):
    """The child process raised, died, or stopped before sending every result."""


def fork_available() -> bool:
    """True where forking is safe: POSIX fork, and this is the only thread of the process.

    Forking a process that runs other threads (the app's workers) can deadlock the child, so
    callers fall back to doing the work in-process there.
    """
    return (hasattr(os, "fork") and threading.active_count() == 1
            and threading.current_thread() is threading.main_thread())


class ChildStream(Generic[R]):
    """Forks at construction; iterating yields ``work(item)`` for each item, in order.

    The child only computes and pickles; the parent is free meanwhile (to load a tokenizer,
    say) and consumes results as they arrive. A reader thread drains the pipe so the child
    never blocks on a full pipe.
    """

    def __init__(self, work: Callable[[T], R], items: Sequence[T]) -> None:
        self._expected = len(items)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compute, send, and leave without running the parent's cleanup
            os.close(read_fd)
            _child(work, items, write_fd)
        os.close(write_fd)
        self._pid = pid
        self._done = False
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._drain, args=(read_fd,), daemon=True)
        self._reader.start()

    def _drain(self, read_fd: int) -> None:
        with os.fdopen(read_fd, "rb") as source:
            while True:
                try:
                    self._queue.put(pickle.load(source))
                except EOFError:
                    break
                except Exception as error:  # a torn record: report it, stop reading
                    self._queue.put((False, f"unreadable result from the child: {error!r}"))
                    break
        self._queue.put(_END)

    def __iter__(self) -> Iterator[R]:
        received = 0
        try:
            while True:
                record = self._queue.get()
                if record is _END:
                    break
                ok, value = record
                if not ok:
                    raise ChildFailed(str(value))
                received += 1
                yield value
            if received != self._expected:
                raise ChildFailed(f"the child sent {received} of {self._expected} results")
            self._done = True
        finally:
            self.close()

    def close(self) -> None:
        """Reap the child (killing it first when its results were not all consumed)."""
        if self._pid <= 0:
            return
        if not self._done:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
        os.waitpid(self._pid, 0)
        self._pid = 0
        self._reader.join(timeout=5)


def _child(work: Callable[[Any], Any], items: Sequence[Any], write_fd: int) -> None:
    code = 0
    try:
        with os.fdopen(write_fd, "wb") as sink:
            try:
                for item in items:
                    pickle.dump((True, work(item)), sink, protocol=pickle.HIGHEST_PROTOCOL)
                    sink.flush()
            except BaseException as error:
                code = 1
                pickle.dump((False, f"{type(error).__name__}: {error}"), sink)
    except BaseException:
        code = 1
    finally:
        os._exit(code)
