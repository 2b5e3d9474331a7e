"""``sqltune serve``: the same app in a browser through textual-serve."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from tui.core.providers import ProviderError, resolve_provider
from tui.launch import LOCAL_KEY_ENV, LOCAL_URL_ENV
from tui.server.inprocess import start_local_server

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def app_command(args: argparse.Namespace) -> str:
    """The shell command textual-serve runs for each browser session."""
    parts = [sys.executable, "-m", "tui"]
    if args.data is not None:
        parts += ["--data", str(args.data.resolve())]
    if args.provider:
        parts += ["--provider", args.provider]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    """Serve the app until Ctrl-C; one shared local server backs every browser session."""
    from textual_serve.server import Server

    if args.host not in LOOPBACK and not args.allow_remote:
        print(f"sqltune serve: refusing to bind {args.host!r}; it would expose the app (and its "
              "provider credentials) beyond this machine. Pass --allow-remote to do it anyway.",
              file=sys.stderr)
        return 2
    local = None
    try:
        resolved = resolve_provider(args.provider, start_local=start_local_server)
    except ProviderError as error:
        print(f"sqltune serve: {error}", file=sys.stderr)
        return 2
    if resolved.local is not None:
        # Browser sessions share this process's server instead of each starting their own.
        local = resolved.local
        os.environ[LOCAL_URL_ENV] = resolved.base_url or ""
        os.environ[LOCAL_KEY_ENV] = resolved.api_key or ""
        print(f"local server: {resolved.base_url} (shared by every browser session)")
    url = f"http://{args.host}:{args.port}"
    print(f"sqltune in a browser: {url}", flush=True)
    server = Server(app_command(args), host=args.host, port=args.port, title="sqltune",
                    public_url=url)
    try:
        server.serve()
    finally:
        if local is not None:
            local.stop()
    return 0
