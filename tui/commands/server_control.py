"""``sqltune server start|status|stop``: the data folder's background service from a shell."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tui.server.service import (
    Attached,
    ServiceError,
    client_key,
    ensure_running,
    log_path,
    read_state,
    status,
    stop,
)

EXIT_NOT_RUNNING = 3
"""``status``'s exit code when no server runs on the folder."""


def _folder(args: argparse.Namespace) -> Path:
    """tui.server.app.server_data_dir's folder, without importing aiohttp and the server."""
    from tui.core.paths import data_dir

    given = getattr(args, "data_dir", None)
    return (Path(given) if given is not None else data_dir() / "server").resolve()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def describe(found: Attached, folder: Path) -> dict[str, Any]:
    """The status object ``status --json`` prints."""
    info = found.info
    jobs = list(info.get("jobs", []))
    return {"running": True, "url": found.state.url, "pid": found.state.pid,
            "kind": found.state.kind, "started_at": found.state.started_at,
            "uptime_s": info.get("uptime_s"), "idle_s": info.get("idle_s"),
            "idle_timeout_s": found.state.idle_timeout_s, "speed": info.get("speed"),
            "data_dir": str(folder), "log": str(log_path(folder)),
            "running_jobs": sum(job["status"] != "paused" for job in jobs), "jobs": jobs}


def _print_status(data: dict[str, Any]) -> None:
    kinds = {"service": "background service", "foreground": "`sqltune server` in a terminal",
             "in-process": "inside another program"}
    idle = data["idle_timeout_s"]
    lines = [f"sqltune server: running at {data['url']}",
             f"  pid       {data['pid']} ({kinds.get(data['kind'], data['kind'])})",
             f"  uptime    {_duration(data['uptime_s'] or 0)}",
             f"  idle stop {'after ' + _duration(idle) + ' idle' if idle else 'never'}"
             f" (idle for {_duration(data['idle_s'] or 0)})",
             f"  jobs      {data['running_jobs']} running"
             + "".join(f"\n            {job['id']}  {job['status']}" for job in data["jobs"]),
             f"  data dir  {data['data_dir']}",
             f"  log       {data['log']}"]
    print("\n".join(lines))


def _known_key(folder: Path) -> str | None:
    """The key, unless no server ever ran on the folder (status and stop create nothing)."""
    if read_state(folder) is None:
        return None
    return client_key(folder)


def _status(args: argparse.Namespace, folder: Path) -> int:
    key = _known_key(folder)
    found = status(folder, key) if key is not None else None
    if found is None:
        stale = read_state(folder)
        if args.json:
            print(json.dumps({"running": False, "data_dir": str(folder),
                              "log": str(log_path(folder))}))
        else:
            note = f" (pid {stale.pid} left a state file and is gone)" if stale else ""
            print(f"sqltune server: not running for {folder}{note}")
        return EXIT_NOT_RUNNING
    data = describe(found, folder)
    if args.json:
        print(json.dumps(data))
    else:
        _print_status(data)
    return 0


def _stop(args: argparse.Namespace, folder: Path) -> int:
    started = time.monotonic()
    key = _known_key(folder)
    found = stop(folder, key, timeout=args.timeout) if key is not None else None
    if found is None:
        print(f"sqltune server: not running for {folder}", file=sys.stderr)
        return 0
    jobs = [job for job in found.info.get("jobs", []) if job["status"] != "paused"]
    resume = f"; {len(jobs)} running job(s) resume on the next start" if jobs else ""
    print(f"sqltune server: stopped pid {found.state.pid} ({found.state.url}) in "
          f"{time.monotonic() - started:.1f} s{resume}")
    return 0


def _start(args: argparse.Namespace, folder: Path) -> int:
    # `sqltune server --base-model N=S start`: the service this starts serves those models too
    # (checked here, with paths made absolute: the service runs in the data folder).
    from tui.server.engines.lora.sources import base_models_problem, parse_specs

    given = list(getattr(args, "base_model", None) or [])
    problem = base_models_problem(given)
    if problem:
        print(f"sqltune server: {problem}", file=sys.stderr)
        return 2
    extra = [f"--base-model={spec.name}={spec.source}" for spec in parse_specs(given)]
    found = ensure_running(folder, client_key(folder), speed=args.speed,
                           idle_timeout_s=args.idle_timeout, extra_args=extra)
    print(f"sqltune server: {found.state.url} (pid {found.state.pid}, log "
          f"{log_path(folder)})")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch ``start``, ``status`` and ``stop``; a ServiceError is one line and exit 1."""
    folder = _folder(args)
    commands = {"status": _status, "stop": _stop, "start": _start}
    try:
        return commands[args.server_action](args, folder)
    except ServiceError as error:
        print(f"sqltune server {args.server_action}: {error}", file=sys.stderr)
        return 1
