"""One local server per data folder: the folder lock, its state file, and how clients attach."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

LOCK_FILE = "server.lock"
"""Held (fcntl.flock, exclusive) by the one process serving the folder, for its whole life."""
STATE_FILE = "server.json"
"""Where the owner publishes its URL and pid (never the key), written atomically."""
SPAWN_LOCK_FILE = "spawn.lock"
"""Serializes clients that start the background service, so only one of them spawns it."""
LOG_FILE = "server.log"
"""The background service's stdout and stderr."""
STATUS_PATH = "/sqltune/server"
"""sqltune's extension route (under /v1) that says who serves the folder."""
IDLE_ENV = "SQLTUNE_SERVER_IDLE_TIMEOUT"
"""Seconds idle before an auto-started service stops (default 600; 0 never)."""
SPEED_ENV = "SQLTUNE_SERVER_SPEED"
"""``--speed`` of an auto-started service (default demo)."""
DEFAULT_IDLE_S = 600.0
"""An auto-started service stops after ten minutes idle."""
KEY_FILE = "api-key"
"""The folder's bearer key file (tui.server.auth writes it; mode 0600)."""
KEY_ENV = "SQLTUNE_SERVER_KEY"
"""When set, the key every server and client uses instead of the file."""
EXIT_BUSY = 1
"""``sqltune server``'s exit status when another process already serves the folder."""
EXIT_SERVICE_BUSY = 75
"""The same for a spawned service (``--service``): distinct from 1, which a crash also gives."""
LOG_ROTATE_BYTES = 5 * 1024**2
"""server.log is moved to server.log.1 at a spawn once it is this big."""


class ServiceError(Exception):
    """The folder's server could not be started or reached (the message never holds a key)."""


class FolderBusy(ServiceError):
    """Another process holds the folder's lock."""

    def __init__(self, folder: Path, state: ServiceState | None) -> None:
        self.state = state
        """What the owner published (None while it is still starting)."""
        who = (f"{state.url} (pid {state.pid})" if state is not None
               else "a server that is still starting")
        super().__init__(f"{folder} is already served by {who}")


@dataclass(frozen=True)
class ServiceState:
    """The contents of ``server.json``."""

    url: str
    """Base URL ending in ``/v1``."""
    pid: int
    """The serving process."""
    started_at: float
    """Unix time it started."""
    kind: str
    """``service`` (background), ``foreground`` (``sqltune server``) or ``in-process``."""
    idle_timeout_s: float
    """Seconds idle before it stops; 0 means never."""

    @property
    def port(self) -> int:
        """The TCP port of ``url``."""
        return urlparse(self.url).port or 0


def state_path(folder: Path) -> Path:
    """``<folder>/server.json``."""
    return folder / STATE_FILE


def log_path(folder: Path) -> Path:
    """``<folder>/server.log``."""
    return folder / LOG_FILE


def read_state(folder: Path) -> ServiceState | None:
    """The published state, or None when absent or unreadable (a torn write cannot happen)."""
    try:
        raw = json.loads(state_path(folder).read_text(encoding="utf-8"))
        return ServiceState(url=str(raw["url"]), pid=int(raw["pid"]),
                            started_at=float(raw["started_at"]), kind=str(raw["kind"]),
                            idle_timeout_s=float(raw.get("idle_timeout_s", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


class FolderOwner:
    """The server side: hold the folder's lock while serving, publish the URL, clean up."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        """The server's data folder."""
        self._fd: int | None = None
        self._published = False

    def acquire(self) -> None:
        """Take the lock now or raise FolderBusy; a lock left by a killed owner is free."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise FolderBusy(self.folder, self._live_state()) from None
        self._fd = fd

    def _live_state(self, wait_s: float = 3.0) -> ServiceState | None:
        """The owner's state; it may still be starting, so wait a moment for it to publish."""
        end = time.monotonic() + wait_s
        while True:
            state = read_state(self.folder)
            if state is not None and pid_alive(state.pid):
                return state
            if time.monotonic() > end:
                return None
            time.sleep(0.05)

    def publish(self, url: str, kind: str, idle_timeout_s: float) -> ServiceState:
        """Write server.json atomically (temporary file, fsync, rename)."""
        assert self._fd is not None, "publish() before acquire()"
        state = ServiceState(url=url, pid=os.getpid(), started_at=time.time(), kind=kind,
                             idle_timeout_s=idle_timeout_s)
        target = state_path(self.folder)
        temporary = target.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(asdict(state), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        self._published = True
        return state

    def release(self) -> None:
        """Remove our state file, then drop the lock; safe to call twice."""
        if self._published:
            state = read_state(self.folder)
            if state is not None and state.pid == os.getpid():
                with contextlib.suppress(OSError):
                    state_path(self.folder).unlink()
            self._published = False
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor releases the flock


# --- the client side ------------------------------------------------------------------------


class KeyRejected(ServiceError):
    """The folder's server answered 401 to our key."""


def probe(url: str, key: str, timeout: float = 3.0) -> dict[str, Any] | None:
    """GET ``<url>/sqltune/server`` with the key: its status object, or None when unreachable.

    ``trust_env=False``: a proxy named in the environment never sees a loopback check or the key.
    A plain-HTTP URL never uses TLS, so no CA bundle is loaded for it (~55 ms a call).
    """
    import httpx  # only a client that asks a server pays for the import

    try:
        response = httpx.get(url.rstrip("/") + STATUS_PATH, timeout=timeout, trust_env=False,
                             verify=url.startswith("https:"),
                             headers={"Authorization": f"Bearer {key}"})
    except httpx.HTTPError:
        return None
    if response.status_code == 401:
        raise KeyRejected(f"the local server at {url} rejects this key: the key in its data "
                          "folder's api-key file (or SQLTUNE_SERVER_KEY) must be the same for "
                          "every sqltune that uses it")
    if response.status_code != 200:
        return None
    try:
        info = response.json()
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


@dataclass(frozen=True)
class Attached:
    """A server that answered for the folder."""

    state: ServiceState
    """What it published."""
    info: dict[str, Any]
    """Its status object (``GET /v1/sqltune/server``)."""


def client_key(folder: Path) -> str:
    """The key a client sends: ``SQLTUNE_SERVER_KEY``, else the folder's api-key file.

    The file is created (once, under the spawn lock) when no server ever ran on the folder.
    """
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        return from_env
    path = folder / KEY_FILE
    with contextlib.suppress(OSError):
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
    with _spawn_lock(folder, 30.0):
        from tui.server.auth import load_or_create_key

        return load_or_create_key(folder)


def attach(folder: Path, key: str) -> Attached | None:
    """The folder's live server, or None when none answers as the published pid."""
    state = read_state(folder)
    if state is None or not pid_alive(state.pid):
        return None  # stale: its port may serve someone else by now, never ask it for our key
    info = probe(state.url, key)
    if info is None:
        info = probe(state.url, key, timeout=10.0)  # alive but slow: a busy loop, a big upload
    if info is None or info.get("pid") != state.pid:
        return None
    return Attached(state, info)


@contextlib.contextmanager
def _spawn_lock(folder: Path, timeout: float) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / SPAWN_LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    end = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > end:
                    raise ServiceError(f"another sqltune has been starting the local server in "
                                       f"{folder} for {timeout:.0f} s; see "
                                       f"{log_path(folder)}") from None
                time.sleep(0.03)
        yield
    finally:
        os.close(fd)


def _reap(process: subprocess.Popen[bytes]) -> None:
    process.wait()  # a service that exits while we run must not stay a zombie


def _rotate_log(folder: Path) -> None:
    log = log_path(folder)
    with contextlib.suppress(OSError):
        if log.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(log, log.with_name(LOG_FILE + ".1"))


def spawn(folder: Path, *, port: int = 0, speed: str = "demo",
          idle_timeout_s: float = DEFAULT_IDLE_S,
          extra_args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """Start ``sqltune server --service`` detached: its own session, stdio to server.log."""
    _rotate_log(folder)
    command = [sys.executable, "-m", "tui", "server", "--service", "--data-dir", str(folder),
               "--port", str(port), "--speed", speed, "--idle-timeout", f"{idle_timeout_s:g}",
               *extra_args]
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    with open(log_path(folder), "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: "
                  f"{' '.join(command[1:])}\n".encode())
        log.flush()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=folder, env=env,
                                   start_new_session=True, close_fds=True)
    threading.Thread(target=_reap, args=(process,), name="sqltune-service-reaper",
                     daemon=True).start()
    return process


def _log_tail(folder: Path, lines: int = 8) -> str:
    try:
        text = log_path(folder).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def idle_timeout_from_env() -> float:
    """``SQLTUNE_SERVER_IDLE_TIMEOUT`` in seconds, else 600."""
    raw = os.environ.get(IDLE_ENV, "").strip()
    if not raw:
        return DEFAULT_IDLE_S
    try:
        value = float(raw)
    except ValueError:
        raise ServiceError(f"{IDLE_ENV} must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise ServiceError(f"{IDLE_ENV} must be 0 (never) or more, got {raw!r}")
    return value


def ensure_running(folder: Path, key: str, *, prefer_port: int | None = None,
                   speed: str | None = None, idle_timeout_s: float | None = None,
                   extra_args: Sequence[str] = (), timeout: float = 60.0) -> Attached:
    """Attach to the folder's server, starting the background service when none answers.

    Concurrent callers serialize on spawn.lock; the server's own folder lock decides between a
    spawned service and anyone else (``sqltune server`` in a shell), and the loser attaches.
    A restart prefers the port of the server it replaces, so clients keep their URL.
    ``extra_args`` go to a server this call starts (``--base-model ...``), not to a running one.
    """
    found = attach(folder, key)
    if found is not None:
        return found
    with _spawn_lock(folder, timeout):
        found = attach(folder, key)
        if found is not None:
            return found
        old = read_state(folder)
        port = prefer_port if prefer_port is not None else (old.port if old else 0)
        process = spawn(folder, port=port, speed=speed or os.environ.get(SPEED_ENV) or "demo",
                        idle_timeout_s=(idle_timeout_from_env() if idle_timeout_s is None
                                        else idle_timeout_s), extra_args=extra_args)
        end = time.monotonic() + timeout
        while True:
            found = attach(folder, key)
            if found is not None:
                return found
            code = process.poll()
            if code is not None and code != EXIT_SERVICE_BUSY:
                raise ServiceError(f"the local server for {folder} exited with status {code} "
                                   f"while starting; last lines of {log_path(folder)}:\n"
                                   f"{_log_tail(folder)}")
            if time.monotonic() > end:
                raise ServiceError(f"the local server for {folder} did not answer within "
                                   f"{timeout:.0f} s; see {log_path(folder)}")
            time.sleep(0.03)


# --- status and stop --------------------------------------------------------------------------


def status(folder: Path, key: str) -> Attached | None:
    """The running server of the folder, or None."""
    return attach(folder, key)


def stop(folder: Path, key: str, *, timeout: float = 30.0) -> Attached | None:
    """SIGTERM the folder's server and wait until it exited; None when none was running.

    Raises ServiceError for an in-process server (stopping it would stop its host process) and
    when the server outlives ``timeout``.
    """
    found = attach(folder, key)
    if found is None:
        return None
    pid = found.state.pid
    if found.state.kind == "in-process":
        raise ServiceError(f"the server of {folder} runs inside process {pid} (a test or an "
                           "embedding program); stop that process instead")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return found
    except PermissionError:
        raise ServiceError(f"the local server of {folder} (pid {pid}) belongs to another "
                           "user; it cannot be stopped from here") from None
    end = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > end:
            raise ServiceError(f"the local server (pid {pid}) is still running {timeout:.0f} s "
                               f"after SIGTERM; see {log_path(folder)}")
        time.sleep(0.05)
    return found
