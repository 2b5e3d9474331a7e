"""Measured training throughput (tokens/s) per base model and device, kept in the server folder.

A finished lora job records what it measured (whole-example tokens over the wall time of its
steps, validation passes included), so the create form's duration estimate for the next job
on the same base and device is a measured figure, not a guess. The latest measurement wins.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

FILE = "throughput.json"
"""File in the server's data folder."""


def _path(data_dir: Path) -> Path:
    return Path(data_dir) / FILE


def _read(data_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads(_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _key(base: str, device: str) -> str:
    return f"{base}@{device}"


def record(data_dir: Path, base: str, device: str, tokens_per_s: float) -> None:
    """Remember the training throughput measured for ``base`` on ``device``."""
    if not tokens_per_s > 0:
        return
    data = _read(data_dir)
    data[_key(base, device)] = {"base_model": base, "device": device,
                                "tokens_per_second": round(float(tokens_per_s), 2),
                                "measured_at": int(time.time())}
    path = _path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{FILE}.{os.getpid()}.partial")
    partial.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    partial.replace(path)


def lookup(data_dir: Path, base: str, device: str) -> float | None:
    """The last throughput measured for ``base`` on ``device``, or None."""
    entry = _read(data_dir).get(_key(base, device))
    if not isinstance(entry, dict):
        return None
    value = entry.get("tokens_per_second")
    return float(value) if isinstance(value, int | float) and value > 0 else None
