"""``sqltune serve``: the same app in a browser through textual-serve."""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import socket
import sys

from tui.core.provider.config import ConfigError
from tui.core.provider.connection import connect
from tui.core.provider.providers import ProviderError
from tui.launch import LOCAL_KEY_ENV, LOCAL_URL_ENV, local_endpoint

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def app_command(args: argparse.Namespace) -> str:
    """The shell command textual-serve runs for each browser session."""
    parts = [sys.executable, "-m", "tui"]
    if args.data is not None:
        parts += ["--data", str(args.data.resolve())]
    if args.provider:
        parts += ["--provider", args.provider]
    return shlex.join(parts)


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be served (in use, not an address here), or None when it can."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        return f"cannot resolve {host!r}: {error.strerror}"
    family, kind, proto, _, address = infos[0]
    # The same options aiohttp binds with, so a probe that binds means the server will too.
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            return bind_failure(host, port, error)
    return None


def bind_failure(host: str, port: int, error: OSError) -> str:
    """One line saying why binding ``host:port`` failed."""
    where = f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return f"{where} is already in use; pick another with --port N"
    if error.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need privileges); use --port N"
    return f"cannot listen on {where}: {error.strerror or error}"


def run(args: argparse.Namespace) -> int:
    """Serve the app until Ctrl-C; one shared local server backs every browser session."""
    from textual_serve.server import Server

    if args.host not in LOOPBACK and not args.allow_remote:
        print(f"sqltune serve: refusing to bind {args.host!r}; it would expose the app (and its "
              "provider credentials) beyond this machine. Pass --allow-remote to do it anyway.",
              file=sys.stderr)
        return 2
    problem = port_problem(args.host, args.port)
    if problem is not None:
        print(f"sqltune serve: {problem}", file=sys.stderr)
        return 1
    try:
        connection = connect(args.provider, local_endpoint)
    except (ProviderError, ConfigError) as error:
        print(f"sqltune serve: {error}", file=sys.stderr)
        return 2
    if connection.server is not None:
        # Browser sessions share this process's server instead of each starting their own.
        os.environ[LOCAL_URL_ENV] = connection.server.base_url
        os.environ[LOCAL_KEY_ENV] = connection.server.api_key
        print(f"local server: {connection.base_url} (shared by every browser session)")
    url = f"http://{args.host}:{args.port}"
    print(f"sqltune in a browser: {url}", flush=True)
    server = Server(app_command(args), host=args.host, port=args.port, title="sqltune",
                    public_url=url)
    try:
        server.serve()
    except OSError as error:  # the port was taken between the probe and the bind
        print(f"sqltune serve: {bind_failure(args.host, args.port, error)}", file=sys.stderr)
        return 1
    finally:
        connection.close()  # the local server's keep-alive; the server goes on
    return 0
