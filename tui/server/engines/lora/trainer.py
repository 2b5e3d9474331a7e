"""In-process LoRA training of a causal LM: the step loop, real metrics, state save and restore.

Defaults (``LoraSettings``), chosen for small text-to-SQL files on CPU and documented in the
README: LoRA r=16, alpha=32, no dropout, on the attention and MLP projections (q, k, v, o,
gate, up, down; every linear layer for architectures that name them otherwise); AdamW with a
base learning rate of 2e-4 times the job's ``learning_rate_multiplier`` (OpenAI's auto
multiplier 1.8 for small files gives 3.6e-4), weight decay 0, gradients clipped at norm 1.0;
a linear warmup over the first 3% of steps (at least one) then a linear decay to 10% of the
peak rate at the last step. Each step learns ``batch_size`` examples (one forward and backward
per example, gradients summed, so examples are never padded to each other) with the loss on
assistant tokens only; on CPU each example is right-padded to one of a few bucketed lengths
(``LoraSettings.pad_lengths``). bf16 autocast runs where the CPU supports it and the model is
not tiny (or on CUDA when present); gradient checkpointing is off (it halved throughput on CPU)
unless ``gradient_checkpointing`` is set.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tui.server.engines.base import EngineError, Hyperparameters, StepMetrics
from tui.server.engines.lora import artifacts
from tui.server.engines.lora.chat import IGNORE_INDEX, EncodedChat, encode_chat

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Attention and MLP projections of Llama-style models (Llama, Qwen2, SmolLM2, Mistral...)."""
STATE_FORMAT = 1
"""Version of ``trainer_state.pt``."""
PRECISION_ENV = "SQLTUNE_LORA_PRECISION"
"""Environment override of ``LoraSettings.precision`` (auto, bf16, fp32)."""
COMPILE_ENV = "SQLTUNE_LORA_COMPILE"
"""Environment override of ``LoraSettings.compile`` (auto, on, off)."""
MIN_BF16_HIDDEN = 256
"""Narrower models train faster in fp32 on CPU (autocast overhead outweighs the matmuls: the
64-wide test model's steps took 4-10x longer in bf16); SmolLM2-135M (576 wide) and Qwen 0.5B
gained about 2.4x from bf16 in a plain loop here (shared/ENGINE-NOTES.md)."""

Messages = list[dict[str, Any]]
log = logging.getLogger(__name__)


def _is_compile_failure(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) came from torch.compile - Dynamo, Inductor or the
    C++ build of its kernels - rather than from training itself."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return False
        if type(seen).__module__.startswith(("torch._dynamo", "torch._inductor")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class LoraSettings:
    """How the adapter is trained (the job's hyperparameters come on top of these)."""

    r: int = 16
    """LoRA rank."""
    alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha / r = 2)."""
    dropout: float = 0.0
    """Dropout on the LoRA input. Off by default: on CPU its random masks (one per adapted
    projection, sequence x width) took 17% of a SmolLM2-135M step and made steps 1.3-1.8x
    slower, and a few epochs over a small file are the overfitting guard that matters."""
    target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGETS))
    """Module names that get an adapter (those the model has; ``all-linear`` when none)."""
    base_learning_rate: float = 2e-4
    """Peak learning rate at ``learning_rate_multiplier`` 1."""
    warmup_fraction: float = 0.03
    """Share of the steps spent warming up linearly (at least one step)."""
    final_lr_fraction: float = 0.1
    """Learning rate at the last step, as a fraction of the peak."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""
    precision: str = "auto"
    """``auto`` (bf16 autocast where supported), ``bf16`` or ``fp32``."""
    gradient_checkpointing: bool = False
    """Trade speed for memory on long examples."""
    compile: str = "auto"
    """``auto``, ``on`` or ``off``: compile each decoder layer with ``torch.compile`` (one
    compiled layer shared by all of them, sequence length dynamic), which fuses the
    element-wise work between the matmuls (norms, rotary, SiLU, casts). ``auto`` compiles
    where it pays: models at least ``MIN_BF16_HIDDEN`` wide, with a C++ compiler on CPU.
    On SmolLM2-135M (2-core CPU, bf16) steps took 1.3x less time; the first step pays the
    compilation (about 40 s cold, a few seconds once Inductor's on-disk cache has it)."""
    device: str = "auto"
    """``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda``."""
    pad_lengths: str = "auto"
    """``auto`` (on CPU), ``on`` or ``off``: right-pad each example to a bucketed length
    (``bucket_length``) before it runs. The pad tokens come after the last real token, so causal
    attention leaves every real position's result alone and they get no loss; they cost at most
    1/16 more compute. On CPU, steps slow down as a job meets more distinct lengths, even for
    lengths met before: over 90 demo examples (66 lengths) on SmolLM2-135M the time per token
    rose from 1.73 to 2.03 ms; bucketed (4 lengths) it stayed at 1.65-1.70 ms and the steps took
    0.88x the time (bench/bench_lora_lengths.py). oneDNN's kernel cache is not the cause (4x
    its size changed nothing); per-shape state elsewhere was not pinned down."""


def pick_device(setting: str = "auto") -> torch.device:
    """CUDA when asked for or present, else the CPU."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def autocast_dtype(device: torch.device, setting: str = "auto",
                   hidden_size: int | None = None) -> torch.dtype | None:
    """bf16 when the hardware runs it natively (AVX512-BF16/AMX CPUs, Ampere+ GPUs) and, on CPU,
    the model is wide enough for it to pay (``MIN_BF16_HIDDEN``); else None (fp32)."""
    setting = os.environ.get(PRECISION_ENV, "") or setting or "auto"
    if setting == "fp32":
        return None
    if setting == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if hidden_size is not None and hidden_size < MIN_BF16_HIDDEN:
        return None
    try:
        supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        supported = False
    return torch.bfloat16 if supported else None


def compile_wanted(device: torch.device, setting: str = "auto",
                   hidden_size: int | None = None) -> bool:
    """Whether to compile the decoder layers (``LoraSettings.compile``, ``SQLTUNE_LORA_COMPILE``
    first): ``auto`` compiles models at least ``MIN_BF16_HIDDEN`` wide (the tiny test model
    would spend longer compiling than training), on CPU only with a C++ compiler to build
    Inductor's kernels."""
    import shutil

    forced = _switch(os.environ.get(COMPILE_ENV, "") or setting)
    if forced is not None:
        return forced
    if hidden_size is not None and hidden_size < MIN_BF16_HIDDEN:
        return False
    if device.type == "cpu":  # Inductor builds its CPU kernels with $CXX, else g++
        return shutil.which(os.environ.get("CXX") or "g++") is not None
    return device.type == "cuda"


def bucket_length(n: int) -> int:
    """``n`` rounded up to a multiple of 1/16 of its power of two (at least 8): 950 -> 960,
    1000 -> 1024, 100 -> 104; at most 16 distinct lengths per doubling."""
    if n <= 8:
        return 8
    step = max(8, (1 << (n.bit_length() - 1)) // 16)
    return -(-n // step) * step


def pad_wanted(device: torch.device, setting: str = "auto") -> bool:
    """Whether examples are padded to bucketed lengths (``LoraSettings.pad_lengths``)."""
    forced = _switch(setting)
    return device.type == "cpu" if forced is None else forced


def _switch(setting: str) -> bool | None:
    """An on/off setting: True for on, False for off, None for ``auto`` (or empty)."""
    if setting in ("off", "0", "false", "no"):
        return False
    if setting in ("on", "1", "true", "yes"):
        return True
    return None


def decoder_layers(model: Any) -> list[Any] | None:
    """The model's repeated decoder blocks (``model.model.layers`` in Llama-style models, else
    the longest ``ModuleList`` of ``num_hidden_layers`` blocks); None when not found."""
    wanted = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    best: list[Any] | None = None
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 0 \
                and (wanted is None or len(module) == wanted) \
                and (best is None or len(module) > len(best)):
            best = list(module)
    return best


def fingerprint(train: list[Messages], valid: list[Messages] | None) -> str:
    """A digest of the data, so a resume state is only used with the job it belongs to."""
    digest = hashlib.sha256()
    for part in (train, valid or []):
        for messages in part:
            digest.update(json.dumps(messages, sort_keys=True).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


@dataclass
class Score:
    """Summed cross-entropy and correct argmax predictions over assistant tokens."""

    loss_sum: float = 0.0
    correct: int = 0
    tokens: int = 0

    @property
    def loss(self) -> float:
        return self.loss_sum / self.tokens if self.tokens else 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.tokens if self.tokens else 0.0


class LoraTrainer:
    """A LoRA fine-tuning run on one base model folder, stepped by the caller."""

    def __init__(self, folder: Path, base_model: str, train: list[Messages],
                 valid: list[Messages] | None, hp: Hyperparameters, seed: int,
                 resume_state: bytes | None = None, settings: LoraSettings | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not train:
            raise EngineError("no training examples")
        self.base_model = base_model
        """Registry name of the base model."""
        self.hp = hp
        self.seed = seed
        self.settings = settings or LoraSettings()
        """The LoRA and optimizer settings in force (a resumed run keeps the state's LoRA)."""
        resume_meta = artifacts.read_meta(resume_state) if resume_state else None
        if resume_meta is not None and resume_meta.lora:
            for key in ("r", "alpha", "dropout", "target_modules"):
                if key in resume_meta.lora:
                    setattr(self.settings, key, resume_meta.lora[key])
        self.device = pick_device(self.settings.device)
        """Where the model trains."""
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        """The base model's tokenizer (its chat template renders the examples)."""
        base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        hidden = getattr(base.config, "hidden_size", None)
        self.dtype = autocast_dtype(self.device, self.settings.precision,
                                    hidden if isinstance(hidden, int) else None)
        """Autocast dtype (None: plain fp32)."""
        if self.dtype == torch.bfloat16:
            # The frozen base is kept in bf16 (the adapter and its optimizer stay fp32): autocast
            # then stops re-casting every weight on every step (1.1-1.3x on SmolLM2-135M, CPU).
            torch.nn.Module.to(base, dtype=torch.bfloat16)  # transformers types .to() oddly
        self._max_len = int(getattr(base.config, "max_position_embeddings", 0) or 1 << 30)
        self._train = [self._encode(m) for m in train]
        self._valid = [self._encode(m) for m in valid] if valid else []
        self._data_id = fingerprint(train, valid)
        self.steps_per_epoch = math.ceil(len(train) / hp.batch_size)
        """Steps in one pass over the training file."""
        self.total_steps = self.steps_per_epoch * hp.n_epochs
        """Steps in the whole run."""
        self.steps_done = 0
        """Steps learned so far."""
        self.last_step_tokens = 0
        """Tokens (whole examples) the last step trained on."""
        self.last_step_seconds = 0.0
        """Wall time of the last step, validation included."""
        torch.manual_seed(seed)  # the LoRA A matrices' initialisation
        self.model = self._wrap(base)
        """The PEFT model (base weights frozen, adapter trainable)."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=self.settings.base_learning_rate * hp.learning_rate_multiplier,
            weight_decay=0.0)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self._rng = torch.get_rng_state()
        self._keep_logits = self._supports_logits_to_keep()
        self.padded = pad_wanted(self.device, self.settings.pad_lengths)
        """Whether examples run right-padded to bucketed lengths (``LoraSettings.pad_lengths``)."""
        pad_id = self.tokenizer.pad_token_id
        self._pad_id = int(pad_id if pad_id is not None else
                           (self.tokenizer.eos_token_id or 0))
        self.compiled = False
        """Whether the decoder layers run compiled (``LoraSettings.compile``)."""
        if compile_wanted(self.device, self.settings.compile,
                          hidden if isinstance(hidden, int) else None):
            self.compiled = self._compile_layers()
        if resume_state is not None:
            self._restore(resume_state)

    # set-up ---------------------------------------------------------------------------
    def _encode(self, messages: Messages) -> EncodedChat:
        encoded = encode_chat(self.tokenizer, messages)
        if len(encoded.input_ids) > self._max_len:
            encoded = EncodedChat(encoded.input_ids[:self._max_len], encoded.labels[:self._max_len])
        return encoded

    def _wrap(self, base: Any) -> Any:
        from peft import LoraConfig, get_peft_model

        names = {name.rsplit(".", 1)[-1] for name, _ in base.named_modules()}
        targets: list[str] | str = [t for t in self.settings.target_modules if t in names]
        if not targets:
            targets = "all-linear"
        self.settings.target_modules = targets if isinstance(targets, list) else [targets]
        config = LoraConfig(r=self.settings.r, lora_alpha=self.settings.alpha,
                            lora_dropout=self.settings.dropout, target_modules=targets,
                            bias="none", task_type="CAUSAL_LM")
        if self.settings.gradient_checkpointing:
            base.gradient_checkpointing_enable()
            base.enable_input_require_grads()
        model = get_peft_model(base, config)
        for parameter in model.parameters():
            if parameter.requires_grad and parameter.dtype != torch.float32:
                parameter.data = parameter.data.float()  # the adapter learns in fp32
        if self.dtype is not None:
            # Under autocast the adapter's matmuls run in bf16 anyway; PEFT's cast of every
            # activation to the fp32 adapter's dtype (and back, and again in backward) took a
            # tenth of a SmolLM2-135M step.
            from peft.tuners.tuners_utils import BaseTunerLayer

            for module in model.modules():
                if isinstance(module, BaseTunerLayer):
                    setattr(module, "cast_input_dtype_enabled", False)  # noqa: B010
        model.to(self.device)
        return model

    def _compile_layers(self) -> bool:
        """Compile each decoder layer in place (sharing one compiled graph); False when the
        model's layers are not found (it then trains uncompiled)."""
        layers = decoder_layers(self.model.get_base_model())
        if not layers:
            return False
        for layer in layers:
            layer.compile(dynamic=True)
        return True

    def _uncompile(self) -> None:
        """Back to eager layers (compilation failed on this machine)."""
        for layer in decoder_layers(self.model.get_base_model()) or []:
            layer._compiled_call_impl = None  # what Module.compile set; None calls forward
        self.compiled = False

    def _supports_logits_to_keep(self) -> bool:
        import inspect

        forward = self.model.get_base_model().forward
        return "logits_to_keep" in inspect.signature(forward).parameters

    def _lr_factor(self, step: int) -> float:
        warmup = max(1, round(self.total_steps * self.settings.warmup_fraction))
        if step < warmup:
            return (step + 1) / warmup
        span = max(1, self.total_steps - warmup)
        done = min(1.0, (step - warmup + 1) / span)
        return 1.0 - (1.0 - self.settings.final_lr_fraction) * done

    def lora_meta(self) -> dict[str, Any]:
        """The ``lora`` object of ``sqltune.json``."""
        s = self.settings
        return {"r": s.r, "alpha": s.alpha, "dropout": s.dropout,
                "target_modules": list(s.target_modules)}

    # the step ---------------------------------------------------------------------------
    def epoch_order(self, epoch: int) -> list[int]:
        """Example order of a 0-based epoch: a shuffle seeded by the job's seed and the epoch."""
        order = list(range(len(self._train)))
        random.Random(f"{self.seed}:epoch:{epoch}").shuffle(order)
        return order

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.dtype is None:
            yield
        else:
            with torch.autocast(device_type=self.device.type, dtype=self.dtype):
                yield

    def _forward(self, example: EncodedChat, score: Score) -> torch.Tensor | None:
        """Summed loss of one example's assistant tokens (added to ``score``); None without any."""
        labels = torch.tensor(example.labels[1:], device=self.device)
        positions = (labels != IGNORE_INDEX).nonzero().squeeze(1)
        if positions.numel() == 0:
            return None
        input_ids = example.input_ids
        if self.padded:  # after the last token: no real position attends to a pad (causal)
            padded = max(len(input_ids), min(bucket_length(len(input_ids)), self._max_len))
            input_ids = input_ids + [self._pad_id] * (padded - len(input_ids))
        ids = torch.tensor([input_ids], device=self.device)
        with self._autocast():
            # use_cache=False: training builds no KV cache (it cost cat ops and memory).
            if self._keep_logits:
                logits = self.model(input_ids=ids, logits_to_keep=positions,
                                    use_cache=False).logits[0]
            else:
                logits = self.model(input_ids=ids, use_cache=False).logits[0, :-1][positions]
        targets = labels[positions]
        loss = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
        score.loss_sum += float(loss.detach())
        score.correct += int((logits.detach().argmax(-1) == targets).sum())
        score.tokens += int(targets.numel())
        return loss

    def evaluate(self, examples: list[EncodedChat]) -> Score:
        """Loss and accuracy of the current model on ``examples`` (no learning)."""
        score = Score()
        self.model.eval()
        with torch.no_grad():
            for example in examples:
                self._forward(example, score)
        return score

    def step(self) -> StepMetrics:
        """Learn the next batch; its loss comes from the same forward pass, before the update.
        Where compilation fails (no working compiler after all), the step is redone uncompiled
        and the run goes on uncompiled."""
        if not self.compiled:
            return self._step()
        try:
            return self._step()
        except Exception as error:  # Inductor raises many types when it cannot build
            if not _is_compile_failure(error):
                raise
            log.warning("torch.compile failed, training uncompiled: %s", error)
            self.optimizer.zero_grad(set_to_none=True)
            self._uncompile()
            return self._step()

    def _step(self) -> StepMetrics:
        if self.steps_done >= self.total_steps:
            raise EngineError("the run has no steps left")
        started = time.perf_counter()
        epoch, position = divmod(self.steps_done, self.steps_per_epoch)
        size = self.hp.batch_size
        batch = [self._train[i] for i in self.epoch_order(epoch)[position * size:
                                                                    (position + 1) * size]]
        n_tokens = sum(example.n_trained for example in batch)
        torch.set_rng_state(self._rng)
        self.model.train()
        score = Score()
        for example in batch:
            loss = self._forward(example, score)
            if loss is not None:
                (loss / n_tokens).backward()
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.settings.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._rng = torch.get_rng_state()
        self.steps_done += 1
        step = self.steps_done
        metrics = StepMetrics(step=step, total_steps=self.total_steps, epoch=epoch + 1,
                              train_loss=score.loss, train_mean_token_accuracy=score.accuracy,
                              epoch_end=position == self.steps_per_epoch - 1)
        if self._valid:
            rng = random.Random(f"{self.seed}:valid:{step}")
            picks = rng.sample(range(len(self._valid)), min(size, len(self._valid)))
            valid = self.evaluate([self._valid[i] for i in picks])
            metrics.valid_loss, metrics.valid_mean_token_accuracy = valid.loss, valid.accuracy
            if metrics.epoch_end:
                full = self.evaluate(self._valid)
                metrics.full_valid_loss = full.loss
                metrics.full_valid_mean_token_accuracy = full.accuracy
        self.last_step_tokens = sum(len(example.input_ids) for example in batch)
        self.last_step_seconds = time.perf_counter() - started
        return metrics

    # state ------------------------------------------------------------------------------
    def adapter_files(self) -> dict[str, bytes]:
        """The PEFT adapter folder (adapter_config.json, adapter_model.safetensors) in memory."""
        with tempfile.TemporaryDirectory(prefix="sqltune-adapter-") as tmp:
            self.model.save_pretrained(tmp, save_embedding_layers=False)
            files = {name: (Path(tmp) / name).read_bytes() for name in artifacts.ADAPTER_FILES}
        config = json.loads(files["adapter_config.json"])
        config["base_model_name_or_path"] = self.base_model  # the registry name, not a cache path
        files["adapter_config.json"] = json.dumps(config, indent=2, sort_keys=True).encode()
        return files

    def state(self, *, resumable: bool = True) -> bytes:
        """A blob: the adapter, plus (``resumable``) what continuing this run needs."""
        trainer_state = None
        if resumable:
            buffer = io.BytesIO()
            torch.save({
                "format": STATE_FORMAT, "steps_done": self.steps_done, "seed": self.seed,
                "data": self._data_id, "hp": self.hp.to_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "torch_rng": self._rng, "python_rng": random.getstate(),
                "cuda_rng": (torch.cuda.get_rng_state_all() if torch.cuda.is_available()
                             else []),
            }, buffer)
            trainer_state = buffer.getvalue()
        meta = artifacts.AdapterMeta(base_model=self.base_model, step=self.steps_done,
                                     lora=self.lora_meta())
        return artifacts.pack(meta, self.adapter_files(), trainer_state)

    def _restore(self, blob: bytes) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load as load_safetensors

        raw = artifacts.read_trainer_state(blob)
        if raw is None:
            raise EngineError("the blob holds an adapter but no trainer state to resume from")
        try:
            saved = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
        except Exception as error:  # torch raises several types for a corrupt file
            raise EngineError(f"unreadable trainer state: {type(error).__name__}: {error}") \
                from None
        if saved.get("format") != STATE_FORMAT:
            raise EngineError(f"trainer state format {saved.get('format')!r} is not "
                              f"{STATE_FORMAT}")
        if saved["data"] != self._data_id or saved["seed"] != self.seed \
                or saved["hp"] != self.hp.to_dict():
            raise EngineError("resume state belongs to another job (data, seed or "
                              "hyperparameters differ)")
        weights = load_safetensors(artifacts.adapter_files(blob)["adapter_model.safetensors"])
        result = set_peft_model_state_dict(self.model, weights)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        if unexpected:
            raise EngineError(f"adapter weights do not fit the model: {unexpected[:3]}")
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self._rng = saved["torch_rng"]
        random.setstate(saved["python_rng"])
        if saved["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        self.steps_done = int(saved["steps_done"])
