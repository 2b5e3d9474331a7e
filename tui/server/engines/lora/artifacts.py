"""The blob of a lora state, checkpoint or model: an uncompressed tar around a PEFT adapter.

Members: ``sqltune.json`` ({"engine": "lora", "base_model", "step", "lora": {r, alpha,
dropout, target_modules}}), ``adapter/adapter_config.json`` and
``adapter/adapter_model.safetensors`` (a standard PEFT adapter folder) and, in resume states,
``trainer_state.pt`` (optimizer, scheduler, RNG, data order and step; read with
``torch.load(weights_only=True)``, never as an arbitrary pickle).
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.server.engines.base import EngineError

META = "sqltune.json"
"""Member holding the blob's description."""
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
"""The PEFT adapter folder's files, stored under ``adapter/``."""
TRAINER_STATE = "trainer_state.pt"
"""Member holding what a resumed run needs beyond the adapter."""


@dataclass
class AdapterMeta:
    """What ``sqltune.json`` says about a blob."""

    base_model: str
    """Name of the base model the adapter was trained on (a registry name)."""
    step: int
    """Training steps the adapter has seen."""
    lora: dict[str, Any] = field(default_factory=dict)
    """LoRA settings: r, alpha, dropout, target_modules."""

    def to_json(self) -> dict[str, Any]:
        """The ``sqltune.json`` object."""
        return {"engine": "lora", "base_model": self.base_model, "step": self.step,
                "lora": self.lora}


def pack(meta: AdapterMeta, adapter: dict[str, bytes], trainer_state: bytes | None = None) -> bytes:
    """A blob from the adapter folder's files (name -> bytes) and an optional trainer state."""
    missing = [name for name in ADAPTER_FILES if name not in adapter]
    if missing:
        raise EngineError(f"adapter is missing {', '.join(missing)}")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        members = [(META, json.dumps(meta.to_json(), indent=1).encode())]
        members += [(f"adapter/{name}", adapter[name]) for name in ADAPTER_FILES]
        if trainer_state is not None:
            members.append((TRAINER_STATE, trainer_state))
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _members(blob: bytes) -> dict[str, bytes]:
    """Every regular file of the tar, by name; EngineError when it is not a lora blob."""
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
            found: dict[str, bytes] = {}
            for info in tar.getmembers():
                if info.isfile():
                    stream = tar.extractfile(info)
                    if stream is not None:
                        found[info.name] = stream.read()
    except (tarfile.TarError, EOFError) as error:
        raise EngineError(f"not a lora engine blob (unreadable tar: {error})") from None
    if META not in found:
        raise EngineError(f"not a lora engine blob ({META} is missing)")
    return found


def _meta(members: dict[str, bytes]) -> AdapterMeta:
    try:
        data = json.loads(members[META])
        if data.get("engine") != "lora":
            raise EngineError(f"blob of engine {data.get('engine')!r}, not lora")
        return AdapterMeta(base_model=str(data["base_model"]), step=int(data["step"]),
                           lora=dict(data.get("lora") or {}))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise EngineError(f"corrupt {META} in a lora blob: {error}") from None


def read_meta(blob: bytes) -> AdapterMeta:
    """The blob's description."""
    return _meta(_members(blob))


def read_trainer_state(blob: bytes) -> bytes | None:
    """The ``trainer_state.pt`` bytes of a resume state (None in a model blob without one)."""
    return _members(blob).get(TRAINER_STATE)


def adapter_files(blob: bytes) -> dict[str, bytes]:
    """The adapter folder's files, by name."""
    return _adapter(_members(blob))


def _adapter(members: dict[str, bytes]) -> dict[str, bytes]:
    files = {name: members.get(f"adapter/{name}") for name in ADAPTER_FILES}
    missing = [name for name, data in files.items() if data is None]
    if missing:
        raise EngineError(f"lora blob without adapter/{', adapter/'.join(missing)}")
    return {name: data for name, data in files.items() if data is not None}


def adapter_only(blob: bytes) -> bytes:
    """The blob without its trainer state: what a checkpoint or a finished model keeps."""
    members = _members(blob)
    if TRAINER_STATE not in members:
        return blob
    return pack(_meta(members), _adapter(members))


def unpack_adapter(blob: bytes, dest: Path) -> AdapterMeta:
    """Write the blob's PEFT adapter folder into ``dest`` (created) and return its description."""
    members = _members(blob)
    meta = _meta(members)
    files = _adapter(members)
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():  # fixed names only: nothing from the tar picks a path
        partial = dest / f".{name}.partial"
        partial.write_bytes(data)
        partial.replace(dest / name)
    return meta
