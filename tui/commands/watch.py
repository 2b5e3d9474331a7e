"""``sqltune watch JOB_ID``: print a fine-tuning job's events as lines until the job ends."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from tui.commands._headless import EXIT_FAILED, EXIT_INTERRUPTED, CommandError, open_provider
from tui.core.finetune.follower import ConnectionState, EventFollower, FollowerError

if TYPE_CHECKING:
    from tui.core.finetune.jobs import JobInfo

SUCCESS_STATUS = "succeeded"


class _Interrupt:
    """Ctrl-C, handled in the event loop: stop the follower and cancel the watch. The exit
    status comes from this flag, not from how far the cancellation travelled."""

    def __init__(self) -> None:
        self.seen = False
        """SIGINT arrived."""
        self.follower: EventFollower | None = None
        """Stopped on SIGINT (it also ends if a cancellation were ever swallowed)."""
        self._task = asyncio.current_task()

    def __call__(self) -> None:
        self.seen = True
        if self.follower is not None:
            self.follower.stop()
        if self._task is not None:
            self._task.cancel()


def reconnect_notice(prog: str, err: TextIO) -> Callable[[ConnectionState], None]:
    """An ``on_state`` callback: a line on ``err`` at the first retry of a reconnection and every
    tenth."""
    def on_state(state: ConnectionState) -> None:
        if state.status == "reconnecting" and (state.attempt == 1 or state.attempt % 10 == 0):
            print(f"{prog}: {state.last_error}; reconnecting ({state.attempt})", file=err,
                  flush=True)
    return on_state


async def print_events(follower: EventFollower, out: TextIO) -> JobInfo | None:
    """Each event as a line on ``out`` until the job ends (or the follower stops); the job as
    the follower last read it. FollowerError when following fails."""
    async for batch in follower.follow():
        for event in batch.events:
            out.write(event.line() + "\n")
        out.flush()
    return follower.job


async def watch(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """Follow ``args.job_id`` and print its events; 0 when it succeeded, 1 otherwise, 2 on a
    bad provider, 130 on Ctrl-C (also while the provider, maybe the local server, is reached)."""
    interrupt = _Interrupt()
    loop = asyncio.get_running_loop()
    # Not on Windows or off the main thread: there asyncio.run's own Ctrl-C handling stays.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, interrupt)
    try:
        return await _watch(args, out=out, err=err, interrupt=interrupt)
    except CommandError as error:
        from tui.core.provider.providers import redact

        print(f"sqltune watch: {redact(str(error))}", file=err)
        return error.code
    except asyncio.CancelledError:
        if interrupt.seen:
            return EXIT_INTERRUPTED
        raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)


async def _watch(args: argparse.Namespace, *, out: TextIO, err: TextIO,
                 interrupt: _Interrupt) -> int:
    async with open_provider(args) as provider:
        follower = interrupt.follower = EventFollower(
            provider.client, args.job_id, on_state=reconnect_notice("sqltune watch", err))
        try:
            job = await print_events(follower, out)
        except FollowerError as error:
            raise CommandError(str(error)) from None
    if interrupt.seen:
        return EXIT_INTERRUPTED
    if job is None:
        return EXIT_FAILED
    model = f": {job.fine_tuned_model}" if job.fine_tuned_model else ""
    print(f"sqltune watch: job {job.id} {job.status}{model}", file=err, flush=True)
    return 0 if job.status == SUCCESS_STATUS else EXIT_FAILED


def run(args: argparse.Namespace) -> int:
    """Entry point from tui.cli; Ctrl-C becomes exit status 130 there."""
    try:
        return asyncio.run(watch(args, out=sys.stdout, err=sys.stderr))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
