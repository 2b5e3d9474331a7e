"""What the create-job form offers: real base models, the files to preselect, an honest duration."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tui.core.budget.counters import BaseModelInfo
from tui.core.budget.tokens import undated

BASE_MODELS_PATH = "/sqltune/base_models"
"""sqltune's extension route (outside the OpenAI contract) describing a server's real bases."""
TRAIN_EXTRA = "pip install -e '.[train]'"
"""How to get real training (torch, transformers, peft) into this install."""
TRAIN_MODULES = ("torch", "transformers", "peft", "safetensors", "huggingface_hub")
"""What the train extra brings (the server's lora engine checks the same list); without them
the local server has only the stand-in engine."""


@dataclass(frozen=True)
class ServerBases:
    """What a sqltune server says about its real bases."""

    models: list[BaseModelInfo]
    """The bases, in the server's order."""
    train_extra_missing: str | None = None
    """The server's own reason it cannot train real models (and the pip command), if any."""


async def fetch_base_models(client: Any) -> ServerBases | None:
    """The real base models of a sqltune server; None when the provider has no such route.

    Other errors (connection, auth) propagate: the caller shows them.
    """
    import openai

    try:
        body = await client.get(BASE_MODELS_PATH, cast_to=object)  # the JSON body, parsed
    except openai.NotFoundError:
        return None
    if not isinstance(body, dict):
        return ServerBases([])
    missing = body.get("train_extra_missing")
    return ServerBases([BaseModelInfo.from_json(item) for item in body.get("data") or ()
                        if isinstance(item, dict) and item.get("id")],
                       missing if isinstance(missing, str) and missing else None)


def train_extra_missing() -> str | None:
    """Why this install cannot train real models and how to fix it; None when it can."""
    missing = [name for name in TRAIN_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (f"real training needs {', '.join(missing)}: {TRAIN_EXTRA} (or pip install "
            "'sqltune[train]'), then restart the local server (sqltune server stop)")


@dataclass(frozen=True)
class Duration:
    """How long a job on a real base would train, from measured throughput only."""

    seconds: float | None
    """trained tokens / measured tokens per second; None when never measured."""
    tokens_per_second: float | None
    """The measured throughput used."""
    device: str | None
    """Where the server trains (cpu, cuda, ...)."""

    def text(self) -> str:
        """``≈ 14 min at 820 tokens/s measured on cpu`` or ``no measurement yet``."""
        where = f" on {self.device}" if self.device else ""
        if self.seconds is None or self.tokens_per_second is None:
            return f"duration: no measurement yet{where} (the first job measures it)"
        if self.seconds <= 0:
            return "duration: nothing to train"
        return (f"≈ {human_duration(self.seconds)} at {self.tokens_per_second:,.0f} tokens/s "
                f"measured{where}")

    @property
    def cpu(self) -> bool:
        """True when the server trains on the CPU."""
        return (self.device or "").lower().startswith("cpu")


def training_duration(trained_tokens: int, base: BaseModelInfo) -> Duration:
    """tokens × epochs / measured tokens per second; no figure without a measurement."""
    speed = base.tokens_per_second
    seconds = trained_tokens / speed if speed else None
    return Duration(seconds, speed, base.device)


CPU_NOTE = "CPU training suits small datasets; a GPU server trains larger ones"
"""Shown with a real base that trains on the CPU."""


def human_duration(seconds: float) -> str:
    """``45 s``, ``14 min``, ``2 h 05 min``."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


# ── which files the form preselects ──────────────────────────────────────────────────────


class ProviderFile(Protocol):
    """A file as the provider lists it (tui.core.finetune.files.FileInfo)."""

    @property
    def id(self) -> str: ...
    @property
    def filename(self) -> str: ...


@dataclass(frozen=True)
class ExportRecord:
    """An export of the Budget pane: its files and the budget it was made with."""

    train: str
    """The training JSONL written."""
    validation: str | None
    """Its validation JSONL, when a split was held out."""
    model: str | None
    """Budget's model."""
    epochs: int | str | None
    """Budget's epochs setting (a number or "auto")."""

    @classmethod
    def from_budget_json(cls, budget: Mapping[str, Any] | None,
                         jsonl_path: str | None = None) -> ExportRecord | None:
        """From a history dataset record's budget (``PrepareResult.to_json(written)``)."""
        budget = budget or {}
        train = budget.get("out") or jsonl_path
        if not train:
            return None
        return cls(train=str(train), validation=budget.get("validation_out") or None,
                   model=budget.get("model") or None, epochs=budget.get("epochs_setting"))


@dataclass(frozen=True)
class FormDefaults:
    """What the create form starts with."""

    training: str | None = None
    """Training file id."""
    validation: str | None = None
    """Its validation pair's file id."""
    model: str | None = None
    """Budget's model, when the training file is one of its exports."""
    epochs: int | str | None = None
    """Budget's epochs, likewise."""


def is_validation_name(filename: str) -> bool:
    """``demo-...-validation.jsonl``, ``valid.jsonl``, ``dev_val.jsonl``: a held-out split."""
    stem = Path(filename).stem.lower()
    return stem.endswith(("validation", "valid", "_val", "-val")) or stem == "val"


def _same(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except OSError:
        return a == b


def form_defaults(files: Sequence[ProviderFile], local_paths: Mapping[str, str],
                  exports: Iterable[ExportRecord]) -> FormDefaults:
    """The newest training file (``files`` newest first), its validation pair and its budget.

    A file is a validation file when it was uploaded from an export's validation JSONL, or its
    name says so. The pair is the upload of the same export's validation JSONL, else the file
    named like the training file with ``-validation``.
    """
    records = list(exports)
    held_out = [r.validation for r in records if r.validation]

    def validation(file: ProviderFile) -> bool:
        local = local_paths.get(file.id)
        return is_validation_name(file.filename) or any(_same(local, v) for v in held_out)

    training = next((f for f in files if not validation(f)), None)
    if training is None:
        return FormDefaults()
    local = local_paths.get(training.id)
    record = next((r for r in records if _same(local, r.train)), None)
    pair: ProviderFile | None = None
    if record is not None and record.validation:
        pair = next((f for f in files if _same(local_paths.get(f.id), record.validation)),
                    None)
    if pair is None:
        wanted = f"{Path(training.filename).stem}-validation.jsonl"
        pair = next((f for f in files if f.filename == wanted), None)
    return FormDefaults(training=training.id, validation=pair.id if pair else None,
                        model=record.model if record else None,
                        epochs=record.epochs if record else None)


def read_form_defaults(provider: str, files: Sequence[ProviderFile]) -> tuple[
        FormDefaults, dict[str, str]]:
    """form_defaults from the local history (blocking: run it in a thread); also local paths."""
    from tui.core.history import History

    with History() as history:
        local = {u.file_id: u.local_path for u in reversed(history.uploads(provider))}
        exports = [record for d in history.datasets()
                   if (record := ExportRecord.from_budget_json(d.budget, d.jsonl_path))]
    return form_defaults(files, local, exports), local


def match_model(wanted: str | None, offered: Sequence[str]) -> str | None:
    """The offered model that is ``wanted`` (a Budget model may lack the snapshot date)."""
    if not wanted:
        return None
    if wanted in offered:
        return wanted
    return next((m for m in offered if undated(m) == undated(wanted)), None)


# ── Budget's "train this": export, upload both, and the form filled in ──────────────────


def write_export(result: Any, train: Path, validation: Path | None) -> Any:
    """Write the kept examples (and the validation split) and record their lineage (dataset,
    template) in the history.

    ``result`` is a tui.core.data.prepare.PrepareResult; returns its WriteResult (blocking)."""
    from tui.core.finetune.lineage import record_prepared

    train.parent.mkdir(parents=True, exist_ok=True)
    written = result.write(train, validation)
    record_prepared(result, written)
    return written


@dataclass(frozen=True)
class UploadedExport:
    """What "train this" did: the files written and uploaded, and the form's defaults."""

    written: Any
    """The WriteResult of the export."""
    files: tuple[Any, ...]
    """The uploaded FileInfo objects (training first)."""
    defaults: FormDefaults
    """Those files, Budget's model and its epochs."""


async def export_and_upload(result: Any, train: Path, validation: Path | None, client: Any,
                            provider: str) -> UploadedExport:
    """Write the export, upload the training file then its validation pair (each validated and
    recorded in the history), and the create form's defaults for them."""
    import asyncio

    from tui.core.finetune.files import FileService
    from tui.core.finetune.lineage import record_upload

    written = await asyncio.to_thread(write_export, result, train, validation)
    service = FileService(client)
    budget = result.budget
    paths = [written.path] + ([written.validation_path] if written.validation_path else [])
    uploaded = []
    for path in paths:
        info = await service.upload(path, model=budget.model)
        uploaded.append(info)
        await asyncio.to_thread(record_upload, provider, info.id, path)
    defaults = FormDefaults(training=uploaded[0].id,
                            validation=uploaded[1].id if len(uploaded) > 1 else None,
                            model=budget.model, epochs=budget.epochs_setting)
    return UploadedExport(written, tuple(uploaded), defaults)
