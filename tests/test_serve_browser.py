"""`sqltune serve` in a real headless chromium: the page shows the panes, keys switch them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tui.app import PANES

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # Without these chromium waits on the (closed) network and never gets going.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1200,800", "--remote-debugging-port=0",
]
START_TIMEOUT = 90.0
"""Seconds for the server to listen and the app's first full frame (cold imports in CI)."""

# textual-serve's page keeps its xterm.js Terminal in a closure. This runs before the page's
# own scripts and catches the Terminal when the page assigns it (`this.terminal = new
# Terminal(...)` on the object that also holds `websocket_url`), so the test can read the
# terminal buffer: exactly the characters the browser shows, whatever renderer draws them.
CATCH_TERMINAL = r"""
(() => {
  window.__sqltuneTerminals = [];
  Object.defineProperty(Object.prototype, 'terminal', {
    configurable: true,
    set(value) {
      Object.defineProperty(this, 'terminal',
        {value, writable: true, configurable: true, enumerable: true});
      if (value && typeof value === 'object' && 'websocket_url' in this) {
        window.__sqltuneTerminals.push(value);
      }
    },
  });
})();
"""
READ_SCREEN = r"""
(() => {
  const term = window.__sqltuneTerminals[0];
  if (!term) return null;
  const buffer = term.buffer.active, rows = [];
  for (let y = 0; y < term.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    rows.push(line ? line.translateToString(true) : '');
  }
  return rows.join('\n');
})()
"""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in a process group, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def stop_group(process: subprocess.Popen[bytes], grace: float = 10.0) -> list[int]:
    """SIGTERM a process's whole group (it leads its own session), then SIGKILL what stays.

    Returns the pids still alive afterwards (none, normally)."""
    pgid = process.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is None or group_members(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if process.poll() is not None and not group_members(pgid):
                return []
            time.sleep(0.1)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)
    return group_members(pgid)


def decode_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """Width, height, unfiltered pixel rows and bytes per pixel of an 8-bit RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, idat, header = 8, bytearray(), None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    assert header is not None, "PNG without IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG header {header}"
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(bytes(idat))
    assert len(raw) == height * (stride + 1), "truncated PNG data"
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind_byte, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind_byte == 2:
            line = bytearray((x + b) & 255 for x, b in zip(line, prev, strict=True))
        elif kind_byte in (1, 3, 4):
            unfilter(kind_byte, line, prev, bpp)
        elif kind_byte != 0:
            raise AssertionError(f"bad PNG filter {kind_byte} on row {y}")
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> None:
    """Undo PNG's Sub (1), Average (3) or Paeth (4) filter on one row, in place."""
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        if kind == 1:
            line[i] = (line[i] + a) & 255
        elif kind == 3:
            line[i] = (line[i] + (a + b) // 2) & 255
        else:
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255


class DevTools:
    """Just enough of the Chrome DevTools Protocol: numbered calls over one websocket."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._next = 0

    async def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events in between are ignored)."""
        self._next += 1
        number = self._next
        await self._socket.send_json({"id": number, "method": method, "params": params})

        async def answer() -> dict[str, Any]:
            async for message in self._socket:
                reply = json.loads(message.data)
                if reply.get("id") == number:
                    if "error" in reply:
                        raise AssertionError(f"{method} failed: {reply['error']}")
                    return dict(reply["result"])
            raise AssertionError(f"the browser closed the DevTools socket during {method}")

        return await asyncio.wait_for(answer(), timeout)

    async def screen(self) -> str:
        """The text the terminal in the page shows, row by row ("" before it exists)."""
        result = await self.call("Runtime.evaluate", expression=READ_SCREEN, returnByValue=True)
        return str(result["result"].get("value") or "")

    async def wait_for_screen(self, *needles: str, timeout: float = 30.0) -> str:
        """Poll the terminal until every needle is on screen; fail showing the last screen."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = await self.screen()
            if all(needle in text for needle in needles):
                return text
            await asyncio.sleep(0.2)
        raise AssertionError(f"never saw {needles!r} in {timeout:.0f} s; the screen was:\n{text}")

    async def press(self, key: str) -> None:
        """Type one printable key into the focused terminal, as a user's keyboard would."""
        code = f"Digit{key}" if key.isdigit() else f"Key{key.upper()}"
        await self.call("Input.dispatchKeyEvent", type="keyDown", key=key, code=code, text=key,
                        windowsVirtualKeyCode=ord(key.upper()))
        await self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=code,
                        windowsVirtualKeyCode=ord(key.upper()))


@pytest.fixture
def chromium_path() -> Path:
    """Debian's chromium, or a skip that says how to get it."""
    if not CHROMIUM.exists():
        pytest.skip(f"chromium not found at {CHROMIUM}: apt-get install chromium")
    return CHROMIUM


@dataclass
class Launched:
    """A process the test started in its own process group, with its output in a log file."""

    what: str
    """What it is, for messages."""
    process: subprocess.Popen[bytes]
    """The group leader."""
    log: Path
    """Its stdout and stderr."""
    address: str = ""
    """Where to reach it: the page URL, or chromium's profile dir."""

    def check_alive(self) -> None:
        """Fail at once, with the end of its log, when the process has exited."""
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"{self.what} exited with {self.process.returncode}:\n{tail}")


@contextlib.contextmanager
def launched(what: str, command: list[str], log: Path, address: str) -> Iterator[Launched]:
    """Start ``command`` as a process-group leader; stop the whole group afterwards, always."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield Launched(what, process, log, address)
        finally:
            survivors = stop_group(process)
            assert survivors == [], f"{what} left processes behind: {survivors}"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Launched]:
    """`sqltune serve` on a free loopback port with the isolated config and data dirs of the
    autouse fixture; the app processes it spawns share its process group."""
    port = free_port()
    command = [sys.executable, "-m", "tui", "serve", "--port", str(port)]
    with launched("sqltune serve", command, tmp_path / "serve.log",
                  f"http://127.0.0.1:{port}/") as server:
        yield server


@pytest.fixture
def browser(chromium_path: Path, tmp_path: Path) -> Iterator[Launched]:
    """Headless chromium; its address is the profile dir (where DevToolsActivePort appears)."""
    profile = tmp_path / "chromium-profile"
    command = [str(chromium_path), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"]
    with launched("chromium", command, tmp_path / "chromium.log", str(profile)) as chromium:
        yield chromium


async def wait_http(session: aiohttp.ClientSession, url: str, owner: Launched) -> Any:
    """GET url until it answers 200 (JSON when it is JSON)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        owner.check_alive()
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    if response.content_type == "application/json":
                        return await response.json()
                    return await response.text()
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"{owner.what} did not answer at {url} within {START_TIMEOUT:.0f} s")


async def page_target(session: aiohttp.ClientSession, chromium: Launched) -> str:
    """The DevTools websocket URL of chromium's first page."""
    port_file = Path(chromium.address) / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT
    while not (port_file.exists() and port_file.read_text().strip()):
        chromium.check_alive()
        assert time.monotonic() < deadline, "chromium never opened its DevTools port"
        await asyncio.sleep(0.1)
    port = int(port_file.read_text().split()[0])
    targets = await wait_http(session, f"http://127.0.0.1:{port}/json/list", chromium)
    return str(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])


async def test_serve_in_headless_chromium(browser: Launched, serve: Launched,
                                          tmp_path: Path) -> None:
    tabs = [f"{index + 1} {pane.PANE_TITLE}" for index, pane in enumerate(PANES)]
    # The second pane's own footer keys prove which pane the browser is showing.
    second = [f"{b.key_display or b.key} {b.description}" for b in PANES[1].pane_bindings()
              if b.show and len(b.key) == 1]
    assert second, f"{PANES[1].__name__} shows no single-key binding to look for"
    async with aiohttp.ClientSession() as session:
        page = await wait_http(session, serve.address, serve)
        assert "textual-terminal" in page
        websocket_url = await page_target(session, browser)
        async with session.ws_connect(websocket_url, max_msg_size=0) as socket:
            tools = DevTools(socket)
            await tools.call("Page.enable")
            await tools.call("Page.addScriptToEvaluateOnNewDocument", source=CATCH_TERMINAL)
            await tools.call("Page.navigate", url=serve.address)

            # Every pane's tab, and the shared local server reached through the status line.
            first = await tools.wait_for_screen(*tabs, "provider local", timeout=START_TIMEOUT)
            assert "sqltune" in first.splitlines()[0]
            assert not any(keys in first for keys in second), "pane 2 shown before its key"

            await tools.call("Runtime.evaluate", expression="window.__sqltuneTerminals[0].focus()")
            await tools.press("2")
            shown = await tools.wait_for_screen(*second, *tabs)
            assert "provider local" in shown

            shot = await tools.call("Page.captureScreenshot", format="png")
    png = base64.b64decode(shot["data"])
    path = tmp_path / "serve-pane-2.png"
    path.write_bytes(png)
    width, height, rows, bpp = decode_png(path.read_bytes())
    assert width > 600 and height > 300
    colours = Counter(row[i:i + bpp] for row in rows for i in range(0, len(row), bpp))
    background = colours.most_common(1)[0][1]
    assert len(colours) > 16, "the screenshot is (nearly) one colour"
    assert background < 0.98 * width * height, "the screenshot is blank"
