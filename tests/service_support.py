"""Tests that start the background server clean it up: stop whatever serves a folder."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from tui.server.service import pid_alive, read_state


def _is_our_service(pid: int, folder: Path) -> bool:
    """The pid runs ``sqltune server --service`` on this folder (not a recycled pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return pid_alive(pid)  # no /proc (macOS): trust the state file
    return b"--service" in argv and str(folder).encode() in argv


def stop_service(folder: Path, *, timeout: float = 15.0) -> None:
    """SIGTERM the background service of ``folder`` (SIGKILL after ``timeout``), if any runs."""
    state = read_state(folder)
    if state is None or state.kind != "service" or not _is_our_service(state.pid, folder):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(state.pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while pid_alive(state.pid):
        if time.monotonic() > end:
            with contextlib.suppress(ProcessLookupError):
                os.kill(state.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
