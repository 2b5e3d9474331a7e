"""Base model sources: ``NAME=SOURCE`` specs, and a loadable model folder for each one.

A SOURCE is a Hugging Face repo id (downloaded once into the standard Hugging Face cache), a
local model folder (used in place), or a ``.gguf`` file (dequantized once by transformers' GGUF
loader and cached as safetensors under the server's folder, keyed by the file's sha256).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tui.core.history import sha256_file
from tui.server.engines.base import EngineError

log = logging.getLogger(__name__)

BaseKind = Literal["hub", "folder", "gguf"]
Progress = Callable[[str], None]

DEFAULT_BASE_NAME = "qwen2.5-coder-0.5b-instruct"
"""The base the server offers when the train extra is installed and none is configured."""
DEFAULT_BASE_SOURCE = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
"""Its Hugging Face repo."""
NO_DEFAULT_ENV = "SQLTUNE_NO_DEFAULT_BASE"
"""Set to 1 for no default base (tests and CI: nothing there may reach for the Hub)."""
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja"]
"""What is downloaded from a Hub repo: config, weights, tokenizer, chat template."""
RESERVED_NAMES = ("sqltune-local-base",)
"""Names the stand-in engine already answers to."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_DONE = "sqltune-source.json"
"""Written last into a converted GGUF folder: its presence means the folder is complete."""
WAY_OUT = ("register a local copy instead: sqltune server --base-model NAME=FILE "
           "(a .gguf file or a model folder), or [local_server.base_models] in config.toml")


class SourceError(EngineError, ValueError):
    """A ``NAME=SOURCE`` spec that cannot work (bad name, missing file, unknown form)."""


@dataclass(frozen=True)
class BaseModelSpec:
    """One real base model the server offers: its model id and where its weights come from."""

    name: str
    """The model id clients use (``/v1/models``, job ``model``)."""
    source: str
    """Hub repo id, absolute folder path or absolute .gguf path."""
    kind: BaseKind
    """hub, folder or gguf."""

    def to_dict(self) -> dict[str, str]:
        """JSON-able form."""
        return {"name": self.name, "source": self.source, "kind": self.kind}


def check_name(name: str, reserved: tuple[str, ...] = RESERVED_NAMES) -> str:
    """``name`` when it is a usable model id (letters, digits, ``._-``; no ``:`` or ``/``)."""
    if not _NAME.match(name):
        raise SourceError(f"base model name {name!r} is not a valid model id: use 1-64 letters, "
                          "digits, '.', '_' or '-', starting with a letter or digit")
    if name in reserved or name.startswith("gpt-"):
        raise SourceError(f"base model name {name!r} is taken by the built-in stand-in engine; "
                          "choose another name")
    return name


def classify_source(source: str) -> tuple[BaseKind, str]:
    """(kind, normalised source): a .gguf file, a model folder, or a Hub repo id."""
    text = source.strip()
    if not text:
        raise SourceError("empty base model source")
    path = Path(text).expanduser()
    if text.lower().endswith(".gguf"):
        if not path.is_file():
            raise SourceError(f"GGUF file {path} does not exist")
        return "gguf", str(path.resolve())
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SourceError(f"{path} has no config.json: it is not a Hugging Face model folder")
        return "folder", str(path.resolve())
    if _HUB_ID.match(text) and not text.startswith((".", "~")):
        return "hub", text
    if path.exists():
        raise SourceError(f"{path} is neither a model folder nor a .gguf file")
    raise SourceError(f"{text!r} is not an existing folder, a .gguf file or a Hugging Face repo "
                      "id (owner/name)")


def parse_spec(text: str) -> BaseModelSpec:
    """``NAME=SOURCE`` as given to ``sqltune server --base-model``."""
    name, sep, source = text.partition("=")
    if not sep:
        raise SourceError(f"--base-model {text!r}: expected NAME=SOURCE, e.g. "
                          f"{DEFAULT_BASE_NAME}={DEFAULT_BASE_SOURCE}")
    return make_spec(name.strip(), source)


def make_spec(name: str, source: str) -> BaseModelSpec:
    """A checked spec from a name and a source."""
    kind, where = classify_source(source)
    return BaseModelSpec(check_name(name), where, kind)


def parse_specs(texts: list[str]) -> list[BaseModelSpec]:
    """Every ``--base-model`` value, refusing a name given twice."""
    specs = [parse_spec(text) for text in texts]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise SourceError(f"base model name {spec.name!r} is given twice")
        seen.add(spec.name)
    return specs


def base_models_problem(specs: list[str]) -> str | None:
    """Why ``--base-model`` values cannot be served (bad spec, no train extra), else None."""
    if not specs:
        return None
    from tui.server.engines.lora import engine_unavailable, train_extra_missing

    missing = train_extra_missing()
    if missing:
        return f"--base-model: {engine_unavailable('lora', missing)}"
    try:
        parse_specs(specs)
    except SourceError as error:
        return str(error)
    return None


def default_specs() -> list[BaseModelSpec]:
    """The default real base (a Hub repo; fails clearly at job/chat time when not reachable)."""
    return [BaseModelSpec(DEFAULT_BASE_NAME, DEFAULT_BASE_SOURCE, "hub")]


def configured_specs(flags: list[str] | None) -> list[BaseModelSpec]:
    """The server's bases: ``--base-model`` values when given (SourceError if one is wrong);
    else ``[local_server.base_models]`` of config.toml (a wrong entry is logged and skipped);
    else the default base (unless ``SQLTUNE_NO_DEFAULT_BASE=1``, as the test suite sets)."""
    if flags:
        return parse_specs(flags)
    from tui.core.provider.config import ConfigError, load_config

    try:
        table = load_config().base_models
    except ConfigError as error:
        log.warning("ignoring [local_server.base_models]: %s", error)
        table = {}
    specs = []
    for name, source in table.items():
        try:
            specs.append(make_spec(name, source))
        except SourceError as error:
            log.warning("config.toml [local_server.base_models] %s: %s", name, error)
    if table:
        return specs
    return [] if os.environ.get(NO_DEFAULT_ENV, "").strip() not in ("", "0") else default_specs()


# materializing ----------------------------------------------------------------------------
def cached_folder(spec: BaseModelSpec, cache_dir: Path) -> Path | None:
    """The model's folder when it is usable without downloading or converting, else None."""
    if spec.kind == "folder":
        return Path(spec.source)
    if spec.kind == "gguf":
        found = _gguf_cache_index(cache_dir).get(_gguf_key(Path(spec.source)))
        return Path(found) if found and (Path(found) / _DONE).is_file() else None
    return _hub_cached(spec.source)


def materialize(spec: BaseModelSpec, cache_dir: Path, progress: Progress | None = None) -> Path:
    """A folder ``from_pretrained`` loads, downloading or dequantizing once (EngineError if not)."""
    say = progress or (lambda _text: None)
    if spec.kind == "folder":
        folder = Path(spec.source)
        if not (folder / "config.json").is_file():
            raise EngineError(f"base model {spec.name!r}: folder {folder} has no config.json")
        return folder
    if spec.kind == "gguf":
        return _gguf_folder(spec, cache_dir, say)
    return _hub_folder(spec, say)


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.HF_HUB_OFFLINE) or flag.strip().upper() in ("1", "ON", "YES", "TRUE")


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def _hub_cached(repo: str) -> Path | None:
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo, allow_patterns=HUB_PATTERNS,
                                        local_files_only=True))
    except Exception:  # not cached (or a broken cache entry): the caller downloads
        return None
    return folder if _complete(folder) else None


def _hub_folder(spec: BaseModelSpec, say: Progress) -> Path:
    from huggingface_hub import constants, snapshot_download

    found = _hub_cached(spec.source)
    if found is not None:
        return found
    where = f"the Hugging Face cache ({constants.HF_HUB_CACHE})"
    if _offline():
        raise EngineError(f"Base model {spec.name!r} (Hugging Face repo {spec.source}) is not in "
                          f"{where} and this machine is offline (HF_HUB_OFFLINE is set). "
                          f"Download it where there is network, or {WAY_OUT}.")
    say(f"Downloading base model {spec.name} ({spec.source}) from the Hugging Face Hub "
        f"into {where}")
    started = time.monotonic()
    try:
        folder = Path(snapshot_download(spec.source, allow_patterns=HUB_PATTERNS,
                                        tqdm_class=progress_bar_class(say, spec.source)))
    except Exception as error:
        raise EngineError(f"Base model {spec.name!r} (Hugging Face repo {spec.source}) is not in "
                          f"{where} and could not be downloaded ({type(error).__name__}: "
                          f"{_first_line(error)}). If this machine has no network, "
                          f"{WAY_OUT}.") from None
    if not _complete(folder):
        raise EngineError(f"Hugging Face repo {spec.source} has no config.json and safetensors "
                          "weights; pick a transformers model repo, or a local folder or .gguf")
    say(f"Downloaded {spec.source} in {time.monotonic() - started:.0f} s")
    return folder


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no details"


def progress_bar_class(say: Progress, label: str, every_s: float = 2.0) -> type[Any]:
    """A tqdm class for ``snapshot_download`` that reports byte progress through ``say``."""
    from tqdm.auto import tqdm

    class ReportingBar(tqdm):
        """Prints nothing; every ``every_s`` seconds, says how far the download is."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["disable"] = False
            kwargs["file"] = open(os.devnull, "w")  # noqa: SIM115 - closed in close()
            super().__init__(*args, **kwargs)
            self._last_said = 0.0

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            desc = str(self.desc or "")
            if self.unit == "B" and not desc.startswith("Downloading bytes"):
                moment = time.monotonic()
                finished = bool(self.total) and self.n >= self.total
                if finished or moment - self._last_said >= every_s:
                    self._last_said = moment
                    say(f"Downloading {label}: {_megabytes(self.n)}" + (
                        f" of {_megabytes(self.total)}" if self.total else ""))
            return shown

        def close(self) -> None:
            handle = self.fp
            super().close()
            with contextlib.suppress(Exception):
                handle.close()

    return ReportingBar


def _megabytes(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


# GGUF ---------------------------------------------------------------------------------------
def _gguf_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _gguf_cache_index(cache_dir: Path) -> dict[str, str]:
    """file identity (path, size, mtime) -> converted folder, so a restart skips re-hashing."""
    try:
        data = json.loads((cache_dir / "gguf-index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _remember(cache_dir: Path, key: str, folder: Path) -> None:
    index = _gguf_cache_index(cache_dir)
    index[key] = str(folder)
    tmp = cache_dir / f"gguf-index.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(index, indent=1), encoding="utf-8")
    tmp.replace(cache_dir / "gguf-index.json")


def _gguf_folder(spec: BaseModelSpec, cache_dir: Path, say: Progress) -> Path:
    source = Path(spec.source)
    if not source.is_file():
        raise EngineError(f"base model {spec.name!r}: GGUF file {source} does not exist")
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = _gguf_key(source)
    known = cached_folder(spec, cache_dir)
    if known is not None:
        return known
    say(f"Hashing {source.name} ({_megabytes(source.stat().st_size)})")
    sha = sha256_file(source)
    folder = cache_dir / f"gguf-{sha[:16]}"
    if not (folder / _DONE).is_file():
        _convert_gguf(spec, source, sha, folder, say)
    _remember(cache_dir, key, folder)
    return folder


def _convert_gguf(spec: BaseModelSpec, source: Path, sha: str, folder: Path,
                  say: Progress) -> None:
    """Dequantize with transformers' GGUF loader and save model + tokenizer as safetensors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    say(f"Dequantizing {source.name} with transformers' GGUF loader (once; later loads read "
        f"the cached safetensors in {folder})")
    started = time.monotonic()
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        model: Any = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    except Exception as error:
        raise EngineError(f"base model {spec.name!r}: transformers cannot load {source} "
                          f"({type(error).__name__}: {_first_line(error)})") from None
    # The loader marks the model as GGUF-quantized, which forbids save_pretrained; the weights
    # it holds are plain dequantized tensors, so drop the marker and save them as they are.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with contextlib.suppress(AttributeError):
        model.is_quantized = False
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / _DONE).write_text(json.dumps({"name": spec.name, "gguf": str(source), "sha256": sha,
                                         "seconds": round(time.monotonic() - started, 1)}),
                             encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    say(f"Dequantized {source.name} in {time.monotonic() - started:.0f} s")
