"""``sqltune adapters export MODEL --out DIR``: a local server model as a standard PEFT folder.

It reads the server's data folder directly (read-only SQLite, the blob file) rather than asking
the server: it works whether or not the server runs, the OpenAI API has no route for weights,
and SQLite's WAL mode lets it read while a server writes. At scale, run it on the machine that
holds the data folder (the GPU host) and copy the folder it writes.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"


class ExportError(Exception):
    """The model cannot be exported (unknown, not a lora model, unreadable)."""


@dataclass
class Exported:
    """What an export wrote."""

    model: str
    """The fine-tuned or checkpoint model id."""
    folder: Path
    """The PEFT adapter folder."""
    base_model: str
    """The server's name of the base it was trained on."""
    base_source: str
    """Where that base comes from (Hub repo id, folder or .gguf): base_model_name_or_path."""
    step: int
    """Training steps the adapter has seen."""
    lora: dict[str, Any]
    """r, alpha, dropout, target_modules."""

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return {"model": self.model, "out": str(self.folder), "base_model": self.base_model,
                "base_model_name_or_path": self.base_source, "step": self.step,
                "lora": self.lora,
                "files": sorted(p.name for p in self.folder.iterdir() if p.is_file())}


def _row(db: sqlite3.Connection, sql: str, value: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(sql, (value,)).fetchone()
    return row


def locate(data_dir: Path, model: str) -> tuple[str, str, str, dict[str, Any]]:
    """(blob kind, blob name, engine, job private data) of a fine-tuned or checkpoint model."""
    from tui.server.app import DB_FILE

    path = data_dir / DB_FILE
    if not path.is_file():
        raise ExportError(f"no local server data in {data_dir} (no {DB_FILE}); pass the "
                          "server's --data-dir")
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        db.row_factory = sqlite3.Row
        found = _row(db, "SELECT 'models' AS kind, blob, engine, job_id FROM models "
                         "WHERE id = ?", model)
        if found is None:
            found = _row(db, "SELECT 'checkpoints' AS kind, id AS blob, engine, job_id "
                             "FROM checkpoints WHERE model = ?", model)
        if found is None:
            raise ExportError(f"unknown model {model!r}: no fine-tuned model or checkpoint of "
                              f"that name in {data_dir} (sqltune jobs list shows the jobs)")
        job = _row(db, "SELECT private FROM jobs WHERE id = ?", found["job_id"])
    private = json.loads(job["private"]) if job is not None else {}
    return found["kind"], found["blob"], found["engine"], private


def export(data_dir: Path, model: str, out: Path) -> Exported:
    """Write ``model``'s adapter into ``out`` with base_model_name_or_path set to its base's
    source; ExportError when it cannot be done."""
    kind, blob_name, engine, private = locate(data_dir, model)
    if engine != "lora":
        raise ExportError(f"{model!r} was trained by the {engine!r} engine (the stand-in), which "
                          "has no adapter weights; only models fine-tuned from a real base "
                          "(sqltune server --base-model) can be exported")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} already exists and is not an empty folder")
    from tui.server.blobs import BlobStore
    from tui.server.engines.base import EngineError
    from tui.server.engines.lora import artifacts

    try:
        blob = BlobStore(data_dir).read(kind, blob_name)
        meta = artifacts.unpack_adapter(blob, out)
    except OSError as error:
        raise ExportError(f"cannot read the weights of {model!r}: "
                          f"{error.strerror or error}") from None
    except EngineError as error:
        raise ExportError(f"{model!r}: {error}") from None
    source = str(private.get("base_source") or meta.base_model)
    config_file = out / ADAPTER_CONFIG
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = source
    config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return Exported(model, out, meta.base_model, source, meta.step, meta.lora)


def run(args: argparse.Namespace) -> int:
    """``sqltune adapters export``: 0 written, 1 cannot export, 2 usage."""
    from tui.server.app import server_data_dir

    if getattr(args, "adapters_action", None) != "export":
        print("sqltune adapters: say what to do: sqltune adapters export MODEL --out DIR",
              file=sys.stderr)
        return 2
    data_dir = server_data_dir(args.data_dir)
    try:
        done = export(data_dir, args.model, Path(args.out))
    except ExportError as error:
        print(f"sqltune adapters export: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(done.to_dict()))
        return 0
    print(f"wrote {done.folder}: a PEFT LoRA adapter (r={done.lora.get('r', '?')}, "
          f"step {done.step}) for base {done.base_source}")
    if done.base_source.lower().endswith(".gguf"):
        print("its base is a GGUF file: serve it with the base's original Hugging Face model, "
              "or with the dequantized copy under the server's bases/ folder")
    print(f"vLLM: vllm serve {done.base_source} --enable-lora --lora-modules "
          f"NAME={done.folder}")
    return 0
