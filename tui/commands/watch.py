"""``sqltune watch JOB_ID``: print a fine-tuning job's events as lines until the job ends."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from typing import TextIO

from tui.core.config import ConfigError
from tui.core.follower import ConnectionState, EventFollower, FollowerError
from tui.core.providers import (
    LocalEndpoint,
    ProviderError,
    install_secret_redaction,
    make_async_client,
    resolve_provider,
)
from tui.launch import local_endpoint

SUCCESS_STATUS = "succeeded"
EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""


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


async def print_events(follower: EventFollower, out: TextIO) -> str | None:
    """Each event as a line on ``out`` until the job ends (or the follower stops); the job's
    final status. FollowerError when following fails."""
    async for batch in follower.follow():
        for event in batch.events:
            out.write(event.line() + "\n")
        out.flush()
    return follower.job_status


async def watch(job_id: str, provider: str | None, *, out: TextIO, err: TextIO,
                start_local: Callable[[], LocalEndpoint] = local_endpoint) -> int:
    """Follow ``job_id`` and print its events; 0 when it succeeded, 1 otherwise, 130 on Ctrl-C."""
    interrupt = _Interrupt()
    loop = asyncio.get_running_loop()
    # Not on Windows or off the main thread: there asyncio.run's own Ctrl-C handling stays.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, interrupt)
    try:
        return await _watch(job_id, provider, out=out, err=err, start_local=start_local,
                            interrupt=interrupt)
    except asyncio.CancelledError:
        if interrupt.seen:
            return EXIT_INTERRUPTED
        raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)


async def _watch(job_id: str, provider: str | None, *, out: TextIO, err: TextIO,
                 start_local: Callable[[], LocalEndpoint], interrupt: _Interrupt) -> int:
    install_secret_redaction()
    try:
        resolved = resolve_provider(provider, start_local=start_local)
    except (ProviderError, ConfigError) as error:
        print(f"sqltune watch: {error}", file=err)
        return 2
    try:
        client = make_async_client(resolved)
        follower = interrupt.follower = EventFollower(
            client, job_id, on_state=reconnect_notice("sqltune watch", err))
        try:
            status = await print_events(follower, out)
        except FollowerError as error:
            print(f"sqltune watch: {error}", file=err)
            return 1
        finally:
            await client.close()
        if interrupt.seen:
            return EXIT_INTERRUPTED
        print(f"sqltune watch: job {job_id} {status}", file=err, flush=True)
        return 0 if status == SUCCESS_STATUS else 1
    finally:
        resolved.close()


def run(args: argparse.Namespace) -> int:
    """Entry point from tui.cli; Ctrl-C becomes exit status 130 there."""
    try:
        return asyncio.run(watch(args.job_id, getattr(args, "provider", None),
                                 out=sys.stdout, err=sys.stderr))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
