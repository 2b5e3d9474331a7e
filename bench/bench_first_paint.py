"""First paint of `sqltune` at 80x24 on the demo data vs. a hello-world Textual app.

    .venv/bin/python bench/bench_first_paint.py [--runs N] [--json]

Each run starts a fresh process on a pseudo-terminal of 80x24 (the real Linux driver, as a
user over SSH would see it) and times from fork to the moment the first frame's text reaches
the terminal: sqltune's tab strip ("1 Dataset"), the hello app's "Hello, world!". The two
commands alternate so that machine load hits both alike; medians are compared (target: sqltune
under 1 s). The process is killed once the frame is seen.

A probe run then checks the order of work inside sqltune (headless, in-process, same first-frame
definition: the first compositor update the app hands to its driver): schema reading and token
counting must start after the first frame, and never on the event loop's thread.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import pty
import re
import select
import signal
import statistics
import struct
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIZE = (80, 24)
TARGET_S = 1.0
HELLO = '''\
from textual.app import App, ComposeResult
from textual.widgets import Label


class Hello(App[None]):
    def compose(self) -> ComposeResult:
        yield Label("Hello, world!")


Hello().run()
'''
ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|.)")


def first_paint(argv: list[str], marker: bytes, env: dict[str, str],
                timeout: float = 30.0) -> float:
    """Seconds from fork until ``marker`` is on the 80x24 pseudo-terminal (escapes removed)."""
    started = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: size the terminal before anything reads it, then run the command
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
        os.execve(argv[0], argv, env)
    seen = b""
    try:
        while True:
            left = timeout - (time.perf_counter() - started)
            if left <= 0:
                raise SystemExit(f"{' '.join(argv)}: no first frame within {timeout} s:\n"
                                 f"{ANSI.sub(b'', seen)[-2000:].decode(errors='replace')}")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child exited
                raise SystemExit(f"{' '.join(argv)} exited before painting:\n"
                                 f"{ANSI.sub(b'', seen).decode(errors='replace')}") from None
            seen += chunk
            if marker in ANSI.sub(b"", seen):
                return time.perf_counter() - started
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def probe() -> dict[str, Any]:
    """In-process (headless): when the first frame happens vs. the first schema read, encoding
    load and token count, and on which thread each ran."""
    from textual.app import App

    import tui.core.budget.tokens as tokens
    import tui.core.data.schema as schema

    started = time.perf_counter()
    events: dict[str, tuple[float, str]] = {}

    def mark(name: str) -> None:
        if name not in events:
            events[name] = (time.perf_counter() - started, threading.current_thread().name)

    def wrap(owner: Any, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            mark(name)
            return original(*args, **kwargs)

        setattr(owner, attribute, wrapped)

    wrap(schema, "build_schema_text", "schema_read")
    wrap(tokens, "_build_encoding", "encoding_load")
    wrap(tokens.TokenCounter, "count", "token_count")
    display = App._display

    def first_display(app: App[Any], screen: Any, renderable: Any) -> None:
        if renderable is not None:
            mark("first_frame")
        display(app, screen, renderable)

    App._display = first_display  # type: ignore[method-assign]
    from tui.app import make_app

    def no_server() -> Any:
        raise RuntimeError("no provider in the probe")

    async def run() -> None:
        app = make_app(start_local=no_server)
        async with app.run_test(size=SIZE) as pilot:
            deadline = time.monotonic() + 30
            while not {"schema_read", "token_count"} <= set(events):
                if time.monotonic() > deadline:
                    break
                await pilot.pause(0.05)

    asyncio.run(run())
    main_thread = threading.main_thread().name
    frame = events.get("first_frame", (float("inf"), ""))[0]
    out: dict[str, Any] = {name: {"at_s": round(at, 4), "thread": thread}
                           for name, (at, thread) in sorted(events.items(), key=lambda e: e[1])}
    out["work_after_first_frame"] = all(
        name in events and events[name][0] > frame and events[name][1] != main_thread
        for name in ("schema_read", "token_count"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE: every start compiles sqltune's "
                             "modules from source (this sandbox's setting)")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe()))
        return 0
    script = Path(sys.executable).parent / "sqltune"
    sqltune = [str(script)] if script.exists() else [sys.executable, "-m", "tui"]
    with tempfile.TemporaryDirectory() as tmp:
        hello_py = Path(tmp) / "hello.py"
        hello_py.write_text(HELLO, encoding="utf-8")
        env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor",
               "SQLTUNE_CONFIG_DIR": f"{tmp}/config", "SQLTUNE_DATA_DIR": f"{tmp}/data",
               "PYTHONPATH": str(ROOT)}
        for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TEXTUAL"):
            env.pop(name, None)
        if not args.no_bytecode_cache:  # as any Python install runs: compiled modules cached
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = f"{tmp}/pycache"  # (outside the checkout)
        # warm the file and bytecode caches (not counted)
        first_paint(sqltune, b"1 Dataset", env)
        first_paint([sys.executable, str(hello_py)], b"Hello, world!", env)
        hello_times, sqltune_times = [], []
        for _ in range(args.runs):
            hello_times.append(first_paint([sys.executable, str(hello_py)], b"Hello, world!",
                                           env))
            sqltune_times.append(first_paint(sqltune, b"1 Dataset", env))
        probe_run = _run_probe(env)
    hello, ours = statistics.median(hello_times), statistics.median(sqltune_times)
    result = {
        "runs": args.runs,
        "terminal": f"{SIZE[0]}x{SIZE[1]}",
        "hello_median_s": round(hello, 4),
        "sqltune_median_s": round(ours, 4),
        "hello_s": [round(t, 4) for t in hello_times],
        "sqltune_s": [round(t, 4) for t in sqltune_times],
        "ratio": round(ours / hello, 3),
        "target_s": TARGET_S,
        "ok": ours < TARGET_S and bool(probe_run.get("work_after_first_frame")),
        "probe": probe_run,
        "load_average": os.getloadavg()[0],
        "bytecode_cache": not args.no_bytecode_cache,
    }
    if args.json:
        print(json.dumps(result))
        return 0 if result["ok"] else 1
    print(f"First paint at {result['terminal']} on a pseudo-terminal, fresh process each, "
          f"median of {args.runs} alternated runs (load average {result['load_average']:.2f}, "
          f"bytecode cache {'on' if result['bytecode_cache'] else 'off'})")
    print(f"  hello-world Textual app  {hello:.3f} s   runs {_list(hello_times)}")
    print(f"  sqltune (demo data)      {ours:.3f} s   runs {_list(sqltune_times)}")
    print(f"  ratio sqltune / hello    {ours / hello:.2f}x")
    print("Probe (headless, in-process), seconds from start and thread:")
    for name, value in probe_run.items():
        if isinstance(value, dict):
            print(f"  {name:<14} {value['at_s']:.3f} s  {value['thread']}")
    print(f"[{'ok' if ours < TARGET_S else 'FAIL'}] sqltune first paint < {TARGET_S:g} s")
    after = bool(probe_run.get("work_after_first_frame"))
    print(f"[{'ok' if after else 'FAIL'}] schema reading and token counting start after the "
          f"first frame, in worker threads")
    return 0 if result["ok"] else 1


def _list(times: list[float]) -> str:
    return " ".join(f"{t:.2f}" for t in times)


def _run_probe(env: dict[str, str]) -> dict[str, Any]:
    import subprocess

    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--probe"],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"probe failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    raise SystemExit(main())
