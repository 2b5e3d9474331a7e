"""``sqltune server``: run the local OpenAI-compatible fine-tuning server until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
import sys
from pathlib import Path

from aiohttp import web

from tui.server.app import ServerConfig, build_app, server_data_dir
from tui.server.auth import KEY_ENV, key_path
from tui.server.faults import FaultSpecError, parse_faults
from tui.server.pace import Pace, SpeedError


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    """Serve on ``args.host:args.port`` until SIGINT/SIGTERM; 2 on a bad option."""
    host: str = args.host
    if not is_loopback(host) and not args.allow_remote:
        print(f"sqltune server: refusing to listen on {host}: it is not a loopback address. "
              "Pass --allow-remote to expose the server (and its data) to the network.",
              file=sys.stderr)
        return 2
    try:
        pace = Pace.parse(args.speed)
        faults = parse_faults(args.faults)
    except (SpeedError, FaultSpecError) as error:
        print(f"sqltune server: {error}", file=sys.stderr)
        return 2
    folder = server_data_dir(args.data_dir)
    config = ServerConfig(data_dir=folder, speed=args.speed, faults=args.faults)
    return asyncio.run(_serve(config, host, int(args.port), pace, bool(faults.active)))


async def _serve(config: ServerConfig, host: str, port: int, pace: Pace, faulty: bool) -> int:
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        print(f"sqltune server: cannot listen on {host}:{port}: {error.strerror or error}",
              file=sys.stderr)
        return 1
    bound = runner.addresses[0][1] if runner.addresses else port
    shown = f"[{host}]" if ":" in host else host
    print(f"sqltune server listening on http://{shown}:{bound}/v1", flush=True)
    print(f"data dir: {config.data_dir}", flush=True)
    print(f"API key: in {key_path(Path(config.data_dir))} (or ${KEY_ENV} when set)", flush=True)
    print(f"speed: {pace.label}" + (f"; faults: {config.faults}" if faulty else ""), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        print("sqltune server: stopping (running jobs resume on the next start)", flush=True)
        await runner.cleanup()
    return 0
