"""Chat token counters per base model: tiktoken for OpenAI models, an open-weight base's own.

An open-weight base (a real model of the local server) counts an example as its training does:
the model's chat template renders the conversation, cut where assistant turns begin and end,
and each piece is tokenized on its own (``chat_segments``, which the server's
``engines/lora/chat.py`` trains with too, so the two cannot drift). When that tokenizer cannot be
loaded here (offline, weights on another machine), the count falls back to tiktoken and says it
is approximate.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tui.core.budget.tokens import (
    O200K,
    TokenCounter,
    content_text,
    context_limit,
    encoding_for_model,
    get_encoding,
)

TEMPLATE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id")
"""Message fields passed to a chat template (``weight`` and unknown keys are dropped)."""


@dataclass(frozen=True)
class BaseModelInfo:
    """A real base model of a sqltune server (``GET /v1/sqltune/base_models``)."""

    id: str
    """The model name jobs are created with."""
    source: str
    """Hub repo id, model folder or .gguf file it was registered from."""
    kind: str = "hub"
    """hub, folder or gguf."""
    engine: str = "lora"
    """The training engine that runs its jobs."""
    device: str | None = None
    """cpu, cuda, ... where the server trains."""
    context_length: int | None = None
    """The model's context in tokens."""
    tokens_per_second: float | None = None
    """Measured training throughput on that device; None until a job has run."""
    folder: str | None = None
    """The materialized model folder on the server's machine; None until materialized."""

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> BaseModelInfo:
        """From one entry of the route's ``data`` list (unknown keys ignored)."""
        speed = item.get("tokens_per_second")
        context = item.get("context_length")
        return cls(id=str(item["id"]), source=str(item.get("source") or item["id"]),
                   kind=str(item.get("kind") or "hub"), engine=str(item.get("engine") or "lora"),
                   device=item.get("device") or None,
                   context_length=int(context) if isinstance(context, int | float) else None,
                   tokens_per_second=float(speed) if isinstance(speed, int | float)
                   and speed > 0 else None,
                   folder=item.get("folder") or None)


class ChatCounter(Protocol):
    """Counts the tokens of one chat example for one model."""

    @property
    def name(self) -> str:
        """What counts: a tiktoken encoding, or ``<model> tokenizer``."""
    @property
    def note(self) -> str | None:
        """Why the count is a guess, when it is one."""
    @property
    def approximate(self) -> bool:
        """True when the counts are not the model's own."""
    @property
    def context_limit(self) -> int:
        """Per-example context of the model (longer examples are cut or refused)."""
    @property
    def free(self) -> bool:
        """True for a base of a sqltune server: training it costs nothing."""

    def count(self, messages: Iterable[Mapping[str, Any]]) -> int:
        """Tokens of one example."""


@dataclass
class TiktokenCounter:
    """OpenAI's chat-format count with a tiktoken encoding (cookbook's num_tokens_from_messages)."""

    counter: TokenCounter
    """The cached counter of tui.core.budget.tokens."""
    name: str
    """The encoding's name."""
    context_limit: int
    """Per-example context."""
    note: str | None = None
    """Why the encoding is a fallback, when it is."""
    approximate: bool = False
    """True when the model's own tokenizer was wanted but is not available."""
    free: bool = False
    """True for a sqltune server's base (counted approximately)."""

    def count(self, messages: Iterable[Mapping[str, Any]]) -> int:
        """Tokens of one example."""
        return self.counter.count(messages)


class TemplateError(ValueError):
    """The model's chat template cannot render an example."""


def template_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages as a chat template expects them: string content, no sqltune/OpenAI-only keys."""
    out = []
    for message in messages:
        clean = {key: message[key] for key in TEMPLATE_KEYS if key in message}
        clean["content"] = content_text(message.get("content"))
        out.append(clean)
    return out


def render_chat(tokenizer: Any, messages: list[dict[str, Any]], *, generation: bool) -> str:
    """The chat template's text for (template) ``messages``; TemplateError when it fails."""
    if not messages:
        return ""
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False,
                                             add_generation_prompt=generation)
    except Exception as error:  # jinja raises its own errors (e.g. role order rules)
        raise TemplateError(f"the chat template cannot render this conversation: "
                            f"{type(error).__name__}: {error}") from None
    if not isinstance(text, str):
        raise TemplateError("the chat template did not render text")
    return text


def chat_segments(tokenizer: Any,
                  messages: Iterable[Mapping[str, Any]]) -> list[tuple[str, bool]]:
    """The rendered example cut into (text, learned) segments, in order: each learned assistant
    turn (not ``weight: 0``) is its own segment, as training labels it."""
    original = list(messages)
    clean = template_messages(original)
    full = render_chat(tokenizer, clean, generation=False)
    segments: list[tuple[str, bool]] = []
    done = 0  # characters of ``full`` already placed in a segment
    for i, message in enumerate(original):
        if message.get("role") != "assistant" or message.get("weight", 1) == 0:
            continue
        before = render_chat(tokenizer, clean[:i], generation=True)
        after = render_chat(tokenizer, clean[:i + 1], generation=False)
        if not (after.startswith(before) and full.startswith(after)) or len(before) < done:
            # A template that rewrites earlier turns (e.g. drops reasoning): find the content.
            content = clean[i]["content"]
            start = full.find(content, done) if content else -1
            if start < 0:
                raise TemplateError(f"cannot locate assistant message {i + 1} in the rendered "
                                    "chat template output")
            before_len, after_len = start, start + len(content)
            eos = getattr(tokenizer, "eos_token", None)
            if eos and full.startswith(eos, after_len):
                after_len += len(eos)
        else:
            before_len, after_len = len(before), len(after)
            while after_len > before_len and full[after_len - 1].isspace():
                after_len -= 1  # the newline after the end-of-turn token is not learned
            if after_len == before_len:
                after_len = len(after)
        segments.append((full[done:before_len], False))
        segments.append((full[before_len:after_len], True))
        done = after_len
    segments.append((full[done:], False))
    return [(text, learned) for text, learned in segments if text]


@dataclass
class ModelTokenizerCounter:
    """Tokens of an example as an open-weight model trains on it (its tokenizer and template)."""

    tokenizer: Any
    """A ``transformers`` tokenizer with a chat template."""
    name: str
    """``<model> tokenizer``."""
    context_limit: int
    """The model's context."""
    note: str | None = None
    approximate: bool = False
    free: bool = True

    def segments(self, messages: Iterable[Mapping[str, Any]]) -> list[str]:
        """The rendered example cut before and after each learned assistant turn."""
        try:
            return [text for text, _ in chat_segments(self.tokenizer, messages)]
        except TemplateError as error:
            raise TemplateError(f"{self.name}: {error}") from None

    def count(self, messages: Iterable[Mapping[str, Any]]) -> int:
        """Tokens of one example (each segment tokenized on its own, no added specials)."""
        pieces = self.segments(messages)
        if not pieces:
            return 0
        encoded = self.tokenizer(pieces, add_special_tokens=False, verbose=False)["input_ids"]
        return sum(len(ids) for ids in encoded)


def tiktoken_counter(model: str) -> TiktokenCounter:
    """The tiktoken counter of an OpenAI (or unknown) model, as ``sqltune prepare`` counts."""
    choice = encoding_for_model(model)
    return TiktokenCounter(TokenCounter(get_encoding(choice.name)), choice.name,
                           context_limit(model), choice.note)


def load_tokenizer(base: BaseModelInfo) -> Any:
    """The base's tokenizer: from its folder when it is on this machine, else its source.

    A Hub id is read from the local Hugging Face cache first and downloaded only when missing
    (which fails offline); a .gguf file's tokenizer is read from the file.
    """
    from transformers import AutoTokenizer

    if base.folder and Path(base.folder).is_dir():
        return AutoTokenizer.from_pretrained(base.folder)
    source = Path(base.source).expanduser()
    if base.kind == "gguf" or base.source.endswith(".gguf"):
        if not source.is_file():
            raise FileNotFoundError(f"{base.source} is not a file on this machine")
        return AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    if base.kind == "folder" or source.is_absolute() or source.is_dir():
        if not source.is_dir():
            raise FileNotFoundError(f"{base.source} is not a folder on this machine")
        return AutoTokenizer.from_pretrained(str(source))
    try:
        return AutoTokenizer.from_pretrained(base.source, local_files_only=True)
    except Exception:  # not cached: the Hub, unless it is out of reach (no minute of retries)
        _require_hub()
        return AutoTokenizer.from_pretrained(base.source)


def _require_hub(timeout: float = 3.0) -> None:
    """Raise at once when the Hugging Face Hub cannot be reached (offline, no DNS)."""
    import os
    import socket
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ConnectionError("HF_HUB_OFFLINE is set and the tokenizer is not cached")
    where = urlsplit(constants.ENDPOINT)
    host, port = where.hostname or "huggingface.co", where.port or (
        443 if where.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        raise ConnectionError(f"offline: {host} is out of reach and the tokenizer is not "
                              "cached") from None


_lock = threading.Lock()
_counters: dict[tuple[str, str, str | None, int | None], ChatCounter] = {}


def base_counter(base: BaseModelInfo) -> ChatCounter:
    """The base's own counter (cached per process), or tiktoken marked approximate."""
    key = (base.id, base.source, base.folder, base.context_length)
    found = _counters.get(key)
    if found is not None:
        return found
    with _lock:
        found = _counters.get(key)
        if found is None:
            found = _build_base_counter(base)
            if not found.approximate:  # a failed load is retried next time (e.g. once cached)
                _counters[key] = found
    return found


def _build_base_counter(base: BaseModelInfo) -> ChatCounter:
    try:
        tokenizer = load_tokenizer(base)
        if not getattr(tokenizer, "chat_template", None):
            raise TemplateError("it has no chat template")
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else \
            type(error).__name__
        context = base.context_length or context_limit(base.id)
        return TiktokenCounter(
            TokenCounter(get_encoding(O200K)), O200K, context,
            note=f"approximate: the tokenizer of {base.id} is not available here ({reason[:120]});"
                 f" counted with {O200K}", approximate=True, free=True)
    context = base.context_length or _tokenizer_context(tokenizer)
    return ModelTokenizerCounter(tokenizer, f"{base.id} tokenizer", context)


def _tokenizer_context(tokenizer: Any) -> int:
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 10_000_000:
        return limit
    return context_limit("")


def counter_for(model: str, bases: Iterable[BaseModelInfo] = ()) -> ChatCounter:
    """The counter of ``model``: a real base's own tokenizer when it is one, else tiktoken."""
    for base in bases:
        if base.id == model:
            return base_counter(base)
    return tiktoken_counter(model)


def base_from_name(model: str, registered: Mapping[str, str] | None = None
                   ) -> BaseModelInfo | None:
    """An open-weight base named directly (``sqltune prepare --model``): a name registered in
    ``registered`` (config.toml's ``[local_server.base_models]``: NAME = SOURCE), a model
    folder, a .gguf file or a Hub repo id (``org/name``); None for an OpenAI or unknown name."""
    source = (registered or {}).get(model)
    if source is not None:
        found = base_from_name(source)
        kind = found.kind if found is not None else "hub"
        return BaseModelInfo(model, source, kind=kind,
                             folder=found.folder if found is not None else None)
    path = Path(model).expanduser()
    if path.is_dir():
        return BaseModelInfo(model, str(path), kind="folder", folder=str(path))
    if model.endswith(".gguf"):
        return BaseModelInfo(model, str(path), kind="gguf")
    parts = model.split("/")
    if len(parts) == 2 and all(parts) and not model.startswith(("ft:", ".", "~")):
        return BaseModelInfo(model, model, kind="hub")
    return None
