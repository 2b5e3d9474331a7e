"""The training worker: a LoraTrainer in its own process, driven lock-step over a pipe.

The server sends ``("init", payload)`` once, then ``("step",)``, ``("state",)`` or
``("close",)``; the worker answers each with ``("ready", info)``, ``("metrics", dict, tokens,
seconds)``, ``("state", bytes)`` or ``("error", text)``. Nothing runs between requests, so a
paused job is a worker waiting on its pipe. ``abort`` kills the process (cancel stops a job
mid-step); a worker that raises or dies makes the pending call raise ``EngineError`` with the
error's text. The worker exits when the server's end of the pipe closes (server gone).

Test hook (harmless, off unless set): ``SQLTUNE_LORA_TEST_FAIL_AT_STEP=N`` makes the worker
raise ``RuntimeError`` at step N, and ``N:exit`` makes it exit abruptly (code 3) at step N, so
tests can check that a crash fails the job cleanly.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tui.server.engines.base import EngineError, Hyperparameters, StepMetrics

log = logging.getLogger(__name__)

FAIL_AT_STEP_ENV = "SQLTUNE_LORA_TEST_FAIL_AT_STEP"
"""Test hook: ``N`` raises at step N, ``N:exit`` exits the worker process at step N."""
POLL_S = 0.1
"""How often a waiting call checks that the worker is still alive."""
SPIN_COUNT = "3000"
"""libgomp's GOMP_SPINCOUNT in the worker (about 30 us of spinning before a thread sleeps)."""


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _test_hook(step: int) -> None:
    spec = os.environ.get(FAIL_AT_STEP_ENV, "")
    if not spec:
        return
    at, _, how = spec.partition(":")
    if at.strip().isdigit() and int(at) == step:
        if how == "exit":
            os._exit(3)
        raise RuntimeError(f"test failure injected at step {step} ({FAIL_AT_STEP_ENV})")


def _peak_rss_mb() -> float | None:
    """The worker's peak resident memory so far, in MB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def serve(conn: Connection) -> None:
    """The worker process's main loop (spawned by ``WorkerRun``); returns when the server's end
    of the pipe is gone or it says ``close``."""
    try:
        _init, payload = conn.recv()
    except (EOFError, OSError):
        return
    # Before torch loads OpenMP: idle OpenMP threads spin ~30 us before sleeping (the server's
    # OMP_WAIT_POLICY=PASSIVE, inherited, sleeps at once). Training runs thousands of short
    # parallel regions a step: on SmolLM2-135M, 2 cores, steps took 10% less time on a quiet
    # machine and 12% more with the other core busy. A user's GOMP_SPINCOUNT wins.
    os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)
    reply: tuple[Any, ...]
    try:
        from tui.server.engines.lora.trainer import LoraSettings, LoraTrainer

        trainer = LoraTrainer(Path(payload["folder"]), payload["base_model"], payload["train"],
                              payload["valid"], Hyperparameters(**payload["hp"]),
                              payload["seed"], payload["resume_state"],
                              LoraSettings(**payload["settings"]))
        reply = ("ready", {"total_steps": trainer.total_steps, "steps_done": trainer.steps_done,
                           "device": trainer.device.type,
                           "dtype": str(trainer.dtype).replace("torch.", "")
                           if trainer.dtype else "float32"})
    except Exception as error:
        _send(conn, ("error", _error_text(error), traceback.format_exc()))
        return
    while _send(conn, reply):
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if request[0] == "step":
                _test_hook(trainer.steps_done + 1)
                metrics = trainer.step()
                reply = ("metrics", metrics.to_dict(), trainer.last_step_tokens,
                         trainer.last_step_seconds, _peak_rss_mb())
            elif request[0] == "state":
                reply = ("state", trainer.state())
            else:
                return
        except Exception as error:
            reply = ("error", _error_text(error), traceback.format_exc())


def _send(conn: Connection, reply: tuple[Any, ...]) -> bool:
    """Send a reply; False when the server is gone (the worker then exits quietly)."""
    try:
        conn.send(reply)
    except (OSError, ValueError):
        return False
    return True


class WorkerRun:
    """A TrainingRun whose trainer lives in a spawned worker process."""

    def __init__(self, folder: Path, base_model: str, train: list[list[dict[str, Any]]],
                 valid: list[list[dict[str, Any]]] | None, hp: Hyperparameters, seed: int,
                 resume_state: bytes | None, settings: dict[str, Any]) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve, args=(child,), daemon=True,
                                        name=f"sqltune-lora-{base_model}")
        self._lock = threading.Lock()
        self._aborted = False
        self.base_model = base_model
        """The registry name trained on."""
        self._process.start()
        child.close()  # only the worker holds its end: its death is EOF here
        self.tokens = 0
        """Whole-example tokens the worker trained in this process's lifetime."""
        self.seconds = 0.0
        """Wall time those steps took, as seen from the server (IPC included)."""
        self.peak_memory_mb: float | None = None
        """The worker's peak resident memory after its last step (MB)."""
        try:
            self._conn.send(("init", {"folder": str(folder), "base_model": base_model,
                                      "train": train, "valid": valid, "hp": hp.to_dict(),
                                      "seed": seed, "resume_state": resume_state,
                                      "settings": settings}))
            info = self._call_reply("ready")
        except BaseException:
            self.abort()
            raise
        self.total_steps = int(info["total_steps"])
        """Steps in the whole run."""
        self.steps_done = int(info["steps_done"])
        """Steps learned so far."""
        self.device = str(info["device"])
        """``cpu`` or ``cuda``."""
        self.dtype = str(info["dtype"])
        """Autocast dtype the worker trains in (``bfloat16`` or ``float32``)."""

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self._process.pid

    def _receive(self) -> tuple[Any, ...]:
        while True:
            if self._aborted:
                raise EngineError("training was stopped")
            try:
                if self._conn.poll(POLL_S):
                    reply: tuple[Any, ...] = self._conn.recv()
                    return reply
            except (EOFError, OSError):
                pass
            else:
                if self._process.is_alive():
                    continue
                if self._conn.poll(0):
                    continue
            if self._aborted:
                raise EngineError("training was stopped")
            self._process.join(1.0)
            code = self._process.exitcode
            how = (f"was killed by signal {-code}" + (" (out of memory?)" if code == -9 else "")
                   if code is not None and code < 0 else f"exited with code {code}")
            raise EngineError(f"the training worker process {how}")

    def _call_reply(self, expected: str) -> Any:
        reply = self._receive()
        if reply[0] == "error":
            log.warning("training worker error: %s", reply[2] if len(reply) > 2 else reply[1])
            raise EngineError(str(reply[1]))
        if reply[0] != expected:
            raise EngineError(f"the training worker answered {reply[0]!r}, not {expected!r}")
        return reply[1:] if len(reply) > 2 else reply[1]

    def _call(self, request: tuple[Any, ...], expected: str) -> Any:
        with self._lock:
            if self._aborted:
                raise EngineError("training was stopped")
            try:
                self._conn.send(request)
            except (OSError, ValueError) as error:
                raise EngineError(f"the training worker is gone ({error})") from None
            return self._call_reply(expected)

    def step(self) -> StepMetrics:
        """One training step in the worker; EngineError if it failed or died."""
        started = time.monotonic()
        data, tokens, _seconds, peak = self._call(("step",), "metrics")
        self.tokens += int(tokens)
        self.peak_memory_mb = peak
        self.seconds += time.monotonic() - started
        metrics = StepMetrics(**data)
        self.steps_done = metrics.step
        return metrics

    def state(self) -> bytes:
        """The resume blob (adapter, optimizer, scheduler, RNG, step)."""
        blob = self._call(("state",), "state")
        if not isinstance(blob, bytes):
            raise EngineError("the training worker sent a state that is not bytes")
        return blob

    def tokens_per_second(self) -> float | None:
        """Throughput measured over the steps this worker ran."""
        return self.tokens / self.seconds if self.seconds > 0 and self.tokens else None

    def close(self) -> None:
        """Let the worker exit (it is killed if it does not within a few seconds)."""
        if self._aborted or not self._process.is_alive():
            self._finish()
            return
        if self._lock.acquire(timeout=0.5):
            try:
                with contextlib.suppress(OSError, ValueError):
                    self._conn.send(("close",))
            finally:
                self._lock.release()
        self._process.join(5.0)
        self._finish()

    def abort(self) -> None:
        """Kill the worker now (cancel): a pending ``step`` raises EngineError at once."""
        self._aborted = True
        self._finish()

    def _finish(self) -> None:
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5.0)
        if not self._lock.locked():  # a thread waiting in _call notices the abort by itself
            self._conn.close()
