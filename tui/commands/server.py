"""``sqltune server``: serve a data folder (holding its lock) until interrupted or idle."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tui.server.service import (
    DEFAULT_IDLE_S,
    EXIT_BUSY,
    EXIT_SERVICE_BUSY,
    FolderBusy,
    FolderOwner,
)

# aiohttp and the server load only to serve: `sqltune server status|stop|start` never needs them.
if TYPE_CHECKING:
    from aiohttp import web

    from tui.server.activity import Activity
    from tui.server.app import ServerConfig
    from tui.server.pace import Pace


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_models_line(app: web.Application) -> str:
    """``real base models: NAME (SOURCE), ...`` or why there are none."""
    from tui.server.context import CTX
    from tui.server.engines.lora import engine_unavailable

    server = app[CTX]
    names = server.registry.names()
    if not names:
        why = server.train_extra_missing
        return "real base models: none (" + (
            engine_unavailable("lora", why) if why else "none configured") + ")"
    return "real base models: " + ", ".join(
        f"{name} ({server.registry.spec(name).source})" for name in names)


def _say(text: str, service: bool) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S ") if service else ""
    print(f"{stamp}{text}", flush=True)


def run(args: argparse.Namespace) -> int:
    """Serve ``args.host:args.port`` until SIGINT/SIGTERM or idle; 2 on a bad option, 1 busy."""
    action = getattr(args, "server_action", None)
    if action is not None:
        from tui.commands.server_control import run as control

        return control(args)
    from tui.server.activity import Activity
    from tui.server.app import ServerConfig, server_data_dir
    from tui.server.engines.lora.sources import base_models_problem
    from tui.server.faults import FaultSpecError, parse_faults
    from tui.server.pace import Pace, SpeedError

    host: str = args.host
    if not is_loopback(host) and not args.allow_remote:
        print(f"sqltune server: refusing to listen on {host}: it is not a loopback address. "
              "Pass --allow-remote to expose the server (and its data) to the network.",
              file=sys.stderr)
        return 2
    service = bool(getattr(args, "service", False))
    idle = getattr(args, "idle_timeout", None)
    idle = float(idle) if idle is not None else (DEFAULT_IDLE_S if service else 0.0)
    try:
        pace = Pace.parse(args.speed)
        faults = parse_faults(args.faults)
    except (SpeedError, FaultSpecError) as error:
        print(f"sqltune server: {error}", file=sys.stderr)
        return 2
    if idle < 0:
        print("sqltune server: --idle-timeout must be 0 (never) or more seconds",
              file=sys.stderr)
        return 2
    bases = list(getattr(args, "base_model", None) or [])
    problem = base_models_problem(bases)
    if problem:
        print(f"sqltune server: {problem}", file=sys.stderr)
        return 2
    folder = server_data_dir(args.data_dir).resolve()
    owner = FolderOwner(folder)
    try:
        owner.acquire()
    except FolderBusy as busy:
        print(f"sqltune server: {busy}. Use that server, or stop it first with "
              f"`sqltune server stop --data-dir {folder}`.", file=sys.stderr)
        return EXIT_SERVICE_BUSY if service else EXIT_BUSY
    if service:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a dropped SSH session must not stop jobs
        logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig(data_dir=folder, speed=args.speed, faults=args.faults,
                          base_models=bases)
    activity = Activity(kind="service" if service else "foreground", idle_timeout_s=idle)
    try:
        return asyncio.run(_serve(config, owner, activity, host, int(args.port), pace,
                                  bool(faults.active)))
    finally:
        owner.release()


async def _bind(app: web.Application, host: str, port: int,
                fallback: bool) -> tuple[web.AppRunner, int]:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        if not fallback or port == 0:
            await runner.cleanup()
            raise
        await web.TCPSite(runner, host, 0).start()  # the service's old port is taken: any port
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)


def _client_host(host: str) -> str:
    """Where a client on this machine connects for a server bound to ``host``."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


async def _serve(config: ServerConfig, owner: FolderOwner, activity: Activity, host: str,
                 port: int, pace: Pace, faulty: bool) -> int:
    from tui.server.activity import instrument, wait_until_idle
    from tui.server.app import build_app
    from tui.server.auth import KEY_ENV, key_path

    service = activity.kind == "service"
    app = build_app(config)
    instrument(app, activity)
    try:
        runner, bound = await _bind(app, host, port, fallback=service)
    except OSError as error:
        print(f"sqltune server: cannot listen on {host}:{port}: {error.strerror or error}",
              file=sys.stderr)
        return 1
    activity.url = f"http://{_client_host(host)}:{bound}/v1"
    owner.publish(activity.url, activity.kind, activity.idle_timeout_s)
    shown = f"[{host}]" if ":" in host else host
    _say(f"sqltune server listening on http://{shown}:{bound}/v1", service)
    _say(f"data dir: {config.data_dir}", service)
    _say(f"API key: in {key_path(Path(config.data_dir))} (or ${KEY_ENV} when set)", service)
    idle = activity.idle_timeout_s
    _say(f"idle stop: after {idle:g} s with no request and no running job" if idle
         else "idle stop: never (stop with Ctrl-C or `sqltune server stop`)", service)
    _say(f"speed: {pace.label}" + (f"; faults: {config.faults}" if faulty else ""), service)
    _say(base_models_line(app), service)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    waiters: list[asyncio.Task[object]] = [asyncio.create_task(stop.wait())]
    if idle > 0:
        waiters.append(asyncio.create_task(wait_until_idle(app, activity)))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        why = "stopping" if stop.is_set() else f"idle for {idle:g} s: stopping"
        _say(f"sqltune server: {why} (running jobs resume on the next start)", service)
        await runner.cleanup()
    return 0
