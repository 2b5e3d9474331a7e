"""One base model in memory per name, serving many LoRA adapters: generate, stream, stop, usage.

Each base is loaded once; the first adapter wraps it in a ``PeftModel`` and later adapters are
added with ``load_adapter`` and switched with ``set_adapter`` (the base weights are never
reloaded). A request on the bare base runs inside ``disable_adapter()``. Generation is a plain
KV-cached decode loop: greedy at temperature 0, sampling (temperature, ``top_p``) otherwise,
``max_tokens``, OpenAI ``stop`` strings, and text streamed token by token with incremental
decoding that never splits a multi-byte character. One lock per base: requests on the same
base run one at a time (they share its weights and its active adapter).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.server.engines.base import Completion, EngineError
from tui.server.engines.lora.registry import BaseRegistry, preferred_device

log = logging.getLogger(__name__)

ADAPTER_SLOTS = 16
"""Adapters kept loaded on one base; the least recently used one is dropped beyond that."""
DEFAULT_MAX_TOKENS = 2048
"""New tokens when a request sets no ``max_tokens`` (and the context has room for them)."""
MAX_STOPS = 4
"""OpenAI accepts up to four stop sequences."""
DECODE_WINDOW = 5
"""Tokens of context decoded before the new ones, so word-initial spaces come out right."""
PREFILL_AUTOCAST_MIN = 128
"""Prompts at least this long are prefilled under bf16 autocast on a CPU with native bf16
(600 tokens of SmolLM2-135M: 0.9-1.2 s instead of 2.2-3.3 s measured); decoding stays fp32
(one token at a time, autocast and bf16 weights were both slower than fp32 there)."""


class ModelUnavailable(EngineError):
    """The base model cannot be loaded here (not downloaded, offline, broken folder)."""


class ContextLengthExceeded(EngineError):
    """The prompt does not fit the model's context; worded as OpenAI's error."""


@dataclass
class GenerationOptions:
    """How to decode one answer."""

    max_tokens: int | None = None
    """New tokens at most (None: up to DEFAULT_MAX_TOKENS, within the context)."""
    temperature: float = 0.0
    """0 decodes greedily; above 0 samples from the softmax at that temperature."""
    top_p: float | None = None
    """Nucleus sampling mass (sampling only)."""
    stop: list[str] = field(default_factory=list)
    """Strings that end the answer; the text is cut before the first one found."""
    seed: int | None = None
    """Sampling seed (None: a fresh random one)."""


@dataclass
class _Base:
    """A base model in memory and what its requests share."""

    name: str
    model: Any
    """The transformers model, or the PeftModel wrapping it once an adapter was loaded."""
    tokenizer: Any
    device: str
    context_length: int
    eos_ids: set[int]
    cache_arg: str
    """The forward() keyword of the KV cache (``cache`` in transformers 5.x, else
    ``past_key_values``)."""
    prefill_autocast: Any = None
    """The autocast dtype of long prompts' prefill (bf16 on CPUs that run it natively)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    adapters: OrderedDict[str, str] = field(default_factory=OrderedDict)
    """Adapter folder -> adapter name inside the PeftModel, least recently used first."""


class Serving:
    """The loaded bases of one server and the chat models that run on them."""

    def __init__(self, registry: BaseRegistry, *, device: str | None = None,
                 prefill_autocast: bool | None = None) -> None:
        # Decoding runs many tiny parallel regions; OpenMP's default spin-waiting made each
        # token 10-20x slower when other processes (a training worker) share the cores.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.registry = registry
        """Where base models come from."""
        self.device = device
        """``cpu`` or ``cuda``; None picks CUDA when present."""
        self.prefill_autocast = prefill_autocast
        """bf16 autocast for long prompts on CPU: None where the CPU runs bf16 natively (and
        ``SQLTUNE_LORA_PRECISION`` allows it), True always, False never."""
        self.base_loads: Counter[str] = Counter()
        """How many times each base was loaded from disk (1 each, however many adapters)."""
        self.adapter_loads: Counter[str] = Counter()
        """How many times each adapter folder was loaded onto its base."""
        self.decoded: Counter[str] = Counter()
        """Tokens generated on each base so far (a stream closed early stops adding)."""
        self._bases: dict[str, _Base] = {}
        self._loading = threading.Lock()

    def chat_model(self, base_name: str, adapter_dir: Path | None = None) -> LoraChatModel:
        """A ChatModel answering with ``base_name`` plus the adapter in ``adapter_dir`` (if any)."""
        self.registry.spec(base_name)  # unknown names fail now, not at the first request
        return LoraChatModel(self, base_name, Path(adapter_dir) if adapter_dir else None)

    def base(self, name: str) -> _Base:
        """The base in memory, loading it the first time (ModelUnavailable when it cannot be)."""
        found = self._bases.get(name)
        if found is not None:
            return found
        with self._loading:
            found = self._bases.get(name)
            if found is None:
                found = self._load_base(name)
                self._bases[name] = found
            return found

    def _load_base(self, name: str) -> _Base:
        import torch
        from transformers import AutoModelForCausalLM

        try:
            folder = self.registry.folder(name, progress=lambda text: log.info("%s", text))
        except EngineError as error:
            raise ModelUnavailable(str(error)) from None
        device = self.device or preferred_device()
        dtype = torch.float32
        if device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        started = time.monotonic()
        try:
            model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        except Exception as error:
            raise ModelUnavailable(f"base model {name!r}: cannot load {folder}: "
                                   f"{type(error).__name__}: {error}") from None
        model.to(device)
        model.eval()
        tokenizer = self.registry.tokenizer(name)
        prefill = None
        if device == "cpu" and self.prefill_autocast is not False:
            from tui.server.engines.lora.trainer import autocast_dtype

            prefill = (torch.bfloat16 if self.prefill_autocast else autocast_dtype(
                torch.device("cpu"), hidden_size=getattr(model.config, "hidden_size", None)))
        self.base_loads[name] += 1
        log.info("loaded base model %s on %s in %.1f s", name, device,
                 time.monotonic() - started)
        return _Base(name=name, model=model, tokenizer=tokenizer, device=device,
                     context_length=self.registry.context_length(name),
                     eos_ids=_eos_ids(model, tokenizer), cache_arg=_cache_arg(model),
                     prefill_autocast=prefill)

    def _activate(self, base: _Base, adapter_dir: Path) -> None:
        """Make ``adapter_dir`` the active adapter of ``base`` (loading it once); lock held."""
        key = str(adapter_dir.resolve())
        name = base.adapters.get(key)
        if name is None:
            from peft import PeftModel

            if not (adapter_dir / "adapter_config.json").is_file():
                raise EngineError(f"{adapter_dir} is not a PEFT adapter folder "
                                  "(no adapter_config.json)")
            name = "a" + hashlib.sha256(key.encode()).hexdigest()[:16]
            try:
                if isinstance(base.model, PeftModel):
                    base.model.load_adapter(str(adapter_dir), adapter_name=name,
                                            is_trainable=False)
                else:
                    base.model = PeftModel.from_pretrained(base.model, str(adapter_dir),
                                                           adapter_name=name,
                                                           is_trainable=False)
            except Exception as error:
                raise EngineError(f"cannot load the adapter in {adapter_dir} onto "
                                  f"{base.name}: {type(error).__name__}: {error}") from None
            base.model.eval()
            base.adapters[key] = name
            self.adapter_loads[key] += 1
            while len(base.adapters) > ADAPTER_SLOTS:
                _old_key, old_name = base.adapters.popitem(last=False)
                base.model.delete_adapter(old_name)
        base.adapters.move_to_end(key)
        base.model.set_adapter(name)

    def generate(self, base_name: str, adapter_dir: Path | None,
                 messages: list[dict[str, Any]], options: GenerationOptions) -> GenerationStream:
        """An iterator of text deltas for one answer; its ``completion`` is set at the end."""
        stream = GenerationStream()
        stream.attach(self._decode(stream, base_name, adapter_dir, messages, options))
        return stream

    def _decode(self, stream: GenerationStream, base_name: str, adapter_dir: Path | None,
                messages: list[dict[str, Any]], options: GenerationOptions) -> Iterator[str]:
        import contextlib

        from tui.server.engines.lora.chat import prompt_ids

        base = self.base(base_name)
        prompt = prompt_ids(base.tokenizer, messages)
        room = base.context_length - len(prompt)
        if room <= 0:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {base.context_length} tokens. However, "
                f"your messages resulted in {len(prompt)} tokens. Please reduce the length of "
                "the messages.")
        budget = min(room, options.max_tokens or DEFAULT_MAX_TOKENS)
        with base.lock:
            if adapter_dir is not None:
                self._activate(base, adapter_dir)
                scope: Any = contextlib.nullcontext()
            else:
                disable = getattr(base.model, "disable_adapter", None)
                scope = disable() if base.adapters and disable else contextlib.nullcontext()
            with scope:
                yield from _decode_loop(base, prompt, budget, options, stream, self.decoded)


class GenerationStream:
    """Text deltas of one answer as they are decoded; ``completion`` once it is finished."""

    def __init__(self) -> None:
        self.completion: Completion | None = None
        """Text, exact usage and finish reason; None until the iterator is exhausted."""
        self._deltas: Iterator[str] = iter(())

    def attach(self, deltas: Iterator[str]) -> None:
        """Set the generator that produces the deltas."""
        self._deltas = deltas

    def __iter__(self) -> GenerationStream:
        return self

    def __next__(self) -> str:
        return next(self._deltas)

    def close(self) -> None:
        """Stop decoding early (releases the base model's lock)."""
        close = getattr(self._deltas, "close", None)
        if close is not None:
            close()

    def finish(self) -> Completion:
        """Drain the rest and return the completion."""
        for _delta in self:
            pass
        if self.completion is None:
            raise EngineError("generation ended without a result")
        return self.completion


class LoraChatModel:
    """A ChatModel on a shared base, with or without one adapter switched in."""

    def __init__(self, serving: Serving, base_name: str, adapter_dir: Path | None) -> None:
        self.serving = serving
        """The server's loaded bases."""
        self.base_name = base_name
        """Which base answers."""
        self.adapter_dir = adapter_dir
        """The PEFT adapter folder switched in (None: the bare base)."""

    def stream(self, messages: list[dict[str, Any]], *, max_tokens: int | None = None,
               temperature: float = 0.0, top_p: float | None = None,
               stop: list[str] | None = None, seed: int | None = None) -> GenerationStream:
        """Text deltas, token by token; the stream's ``completion`` holds the usage after."""
        options = GenerationOptions(max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                                    stop=list(stop or []), seed=seed)
        return self.serving.generate(self.base_name, self.adapter_dir, messages, options)

    def complete(self, messages: list[dict[str, Any]], *, max_tokens: int | None = None,
                 temperature: float = 0.0, top_p: float | None = None,
                 stop: list[str] | None = None, seed: int | None = None) -> Completion:
        """The whole answer with exact usage."""
        return self.stream(messages, max_tokens=max_tokens, temperature=temperature,
                           top_p=top_p, stop=stop, seed=seed).finish()


def _cache_arg(model: Any) -> str:
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None),
                  getattr(tokenizer, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value)
    return ids


class StopCutter:
    """OpenAI ``stop`` semantics over streamed text: cut before the first stop string, and hold
    back any tail that could still become one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [stop for stop in stops if stop]
        self.text = ""
        """Everything decoded so far."""
        self.sent = 0
        """Characters of ``text`` already released."""
        self.cut: int | None = None
        """Where the answer ends when a stop string was found."""

    def feed(self, delta: str) -> str:
        """Add decoded text; return what can be released now."""
        self.text += delta
        if not self.stops:
            return self._release(len(self.text))
        longest = max(len(stop) for stop in self.stops)
        start = max(0, self.sent - longest + 1)
        found = [at for at in (self.text.find(stop, start) for stop in self.stops) if at >= 0]
        if found:
            self.cut = min(found)
            return self._release(self.cut)
        hold = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(self.text)), hold, -1):
                if self.text.endswith(stop[:size]):
                    hold = size
                    break
        return self._release(len(self.text) - hold)

    def flush(self) -> str:
        """At the end: release what was held back."""
        return self._release(len(self.text))

    def answer(self) -> str:
        """The answer's text (cut at the stop string when one was found)."""
        return self.text if self.cut is None else self.text[:self.cut]

    def _release(self, upto: int) -> str:
        if self.cut is not None:
            upto = min(upto, self.cut)
        out = self.text[self.sent:upto] if upto > self.sent else ""
        self.sent = max(self.sent, upto)
        return out


class IncrementalDecoder:
    """Token ids to text deltas without splitting characters across tokens (TGI's method)."""

    def __init__(self, tokenizer: Any, prompt: list[int]) -> None:
        self.tokenizer = tokenizer
        self.ids = list(prompt[-DECODE_WINDOW:])
        self.prefix = 0
        self.read = len(self.ids)

    def _text(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def push(self, token: int) -> str:
        """Add one generated token; return the new complete text (possibly empty)."""
        self.ids.append(token)
        before = self._text(self.ids[self.prefix:self.read])
        after = self._text(self.ids[self.prefix:])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return after[len(before):]
        return ""

    def flush(self) -> str:
        """Whatever is still pending at the end (a truly broken character stays as U+FFFD)."""
        before = self._text(self.ids[self.prefix:self.read])
        after = self._text(self.ids[self.prefix:])
        self.prefix = self.read = len(self.ids)
        return after[len(before):] if len(after) > len(before) else ""


def _decode_loop(base: _Base, prompt: list[int], budget: int, options: GenerationOptions,
                 stream: GenerationStream, decoded: Counter[str]) -> Iterator[str]:
    import torch
    from transformers import DynamicCache

    model = base.model
    device = base.device
    generator: torch.Generator | None = None
    if options.temperature > 0:
        generator = torch.Generator(device=device)
        generator.manual_seed(options.seed if options.seed is not None
                              else int.from_bytes(hashlib.sha256(str(time.time_ns()).encode())
                                                  .digest()[:4], "big"))
    decoder = IncrementalDecoder(base.tokenizer, prompt)
    cutter = StopCutter(options.stop[:MAX_STOPS])
    generated = 0
    finish = "length"
    with torch.inference_mode():
        inputs = torch.tensor([prompt], device=device)
        cache = {base.cache_arg: DynamicCache(config=base.model.config)}  # filled in place
        autocast = base.prefill_autocast if len(prompt) >= PREFILL_AUTOCAST_MIN else None
        while generated < budget:
            with torch.autocast("cpu", dtype=autocast or torch.bfloat16,
                                enabled=autocast is not None and generated == 0):
                out = model(input_ids=inputs, use_cache=True, **cache)
            token = _pick(out.logits[0, -1], options, generator)
            generated += 1
            decoded[base.name] += 1
            if token in base.eos_ids:
                finish = "stop"
                break
            released = cutter.feed(decoder.push(token))
            if released:
                yield released
            if cutter.cut is not None:
                finish = "stop"
                break
            inputs = torch.tensor([[token]], device=device)
    if cutter.cut is None:
        tail = cutter.feed(decoder.flush())
        tail += cutter.flush()
        if tail:
            yield tail
        if cutter.cut is not None:
            finish = "stop"
    stream.completion = Completion(text=cutter.answer(), prompt_tokens=len(prompt),
                                   completion_tokens=generated, finish_reason=finish)


def _pick(logits: Any, options: GenerationOptions, generator: Any) -> int:
    """The next token: argmax at temperature 0, else a sample (with top_p when given)."""
    import torch

    if options.temperature <= 0:
        return int(torch.argmax(logits).item())
    probs = torch.softmax(logits.float() / options.temperature, dim=-1)
    if options.top_p is not None and 0 < options.top_p < 1:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < options.top_p
        sorted_probs = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
        choice = torch.multinomial(sorted_probs / sorted_probs.sum(), 1, generator=generator)
        return int(order[choice].item())
    return int(torch.multinomial(probs, 1, generator=generator).item())
