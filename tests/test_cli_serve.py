"""``sqltune serve`` refusals: a busy port is one line on stderr and exit 1, nothing started."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tests.test_serve_browser import free_port


def test_busy_port_is_one_line_and_exit_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # A remote-provider key: the refusal must come before any provider or server work.
        env = dict(os.environ, OPENAI_API_KEY="sk-test-not-used")
        done = subprocess.run(
            [sys.executable, "-m", "tui", "serve", "--port", str(port)],
            capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""  # no "sqltune in a browser: URL" for a server that never ran
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("sqltune serve: ")
    assert f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0]


def test_free_port_probe_leaves_the_port_free() -> None:
    from tui.commands.serve import port_problem

    port = free_port()
    assert port_problem("127.0.0.1", port) is None
    with socket.socket() as again:  # the probe closed its socket: the port is still free
        again.bind(("127.0.0.1", port))
