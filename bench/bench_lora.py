"""Bench the lora engine's training throughput against a bare PEFT loop on the same model and data.

    .venv/bin/python bench/bench_lora.py                       # quick: the tiny test model
    .venv/bin/python bench/bench_lora.py --model DIR|FILE.gguf [--examples 16] [--epochs 2]
                                         [--precision auto|bf16|fp32] [--json]

Both sides train the same LoRA (the engine's defaults: r=16, alpha=32, no dropout, on
q/k/v/o/gate/up/down), with AdamW at the same learning rate, batch size 1 and the engine's
autocast choice (bf16 where the CPU supports it), on the same chat examples (the demo train
split rendered with the default prompt template), each in its own fresh process state:
(a) the engine: ``LoraEngine.start`` (a spawned worker) stepped to the end; its throughput is
    whole-example tokens over the wall time of the steps as the server sees them (IPC, the
    metrics' argmax accuracy included; worker start-up and model load excluded);
(b) a bare loop: ``get_peft_model``, then per example ``model(input_ids, labels=...)``,
    ``backward``, ``optimizer.step`` - the plain loop people write (loss on assistant tokens
    only, labels from the same chat encoding), timed the same way, also in a spawned process
    (on a busy 2-core machine torch in a long-lived process measured several times slower
    than in a fresh one, which would flatter the engine).
Reported: tokens/s of each, the ratio engine / bare (goal >= 0.8), the engine worker's peak
resident memory, and the mean loss of each side's last epoch (they should be close).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.core.data.datasets import load_dataset
from tui.core.data.prompts import DEFAULT_TEMPLATE, messages_for
from tui.core.data.schema import SchemaCache
from tui.core.paths import demo_dir
from tui.server.engines.base import ChatExample, Hyperparameters


def demo_examples(n: int, folder: Path) -> list[ChatExample]:
    """The first ``n`` demo train examples (system schema, question, SQL) that fit the model's
    context, as the server's validation would accept them."""
    from transformers import AutoTokenizer

    from tui.server.engines.lora.chat import count_tokens
    from tui.server.engines.lora.registry import folder_context_length

    tokenizer = AutoTokenizer.from_pretrained(folder)
    context = folder_context_length(folder) or 1 << 30
    root = demo_dir()
    cache = SchemaCache()
    chosen: list[ChatExample] = []
    for e in load_dataset(root, "train").examples:
        messages = messages_for(DEFAULT_TEMPLATE, cache,
                                root / "database" / e.db_id / f"{e.db_id}.sqlite",
                                e.question, e.query)
        if count_tokens(tokenizer, messages) <= context:
            chosen.append(ChatExample(messages))
        if len(chosen) == n:
            break
    return chosen


def long_context(folder: Path, length: int = 4096) -> Path:
    """Let the tiny test model (rotary positions, 1,024 by default) take whole demo examples:
    its 512-token vocabulary spells a schema-heavy example in about 1,600 tokens."""
    for name, key in (("config.json", "max_position_embeddings"),
                      ("tokenizer_config.json", "model_max_length")):
        path = folder / name
        data = json.loads(path.read_text(encoding="utf-8"))
        data[key] = length
        path.write_text(json.dumps(data), encoding="utf-8")
    return folder


def make_engine(folder_or_gguf: str, data_dir: Path) -> Any:
    """A LoraEngine with one base model called ``bench``."""
    from tui.server.engines.lora.engine import LoraEngine
    from tui.server.engines.lora.registry import BaseRegistry
    from tui.server.engines.lora.serving import Serving
    from tui.server.engines.lora.sources import make_spec

    registry = BaseRegistry([make_spec("bench", folder_or_gguf)], data_dir / "bases")
    return LoraEngine(registry, Serving(registry), data_dir)


def engine_run(engine: Any, examples: list[ChatExample], hp: Hyperparameters,
               seed: int) -> dict[str, Any]:
    """Train through LoraEngine (worker process); time the steps."""
    started = time.perf_counter()
    run = engine.start(examples, None, hp, seed, base_model="bench")
    ready = time.perf_counter() - started
    losses: list[float] = []
    try:
        while run.steps_done < run.total_steps:
            metrics = run.step()
            if metrics.epoch == hp.n_epochs:
                losses.append(metrics.train_loss)
    finally:
        run.close()
    return {"tokens": run.tokens, "seconds": run.seconds,
            "tokens_per_s": run.tokens / run.seconds, "start_s": ready,
            "peak_memory_mb": run.peak_memory_mb, "dtype": run.dtype,
            "last_epoch_loss": statistics.fmean(losses)}


def bare_run(folder: Path, examples: list[ChatExample], hp: Hyperparameters,
             seed: int) -> dict[str, Any]:
    """The plain PEFT loop with the same settings, in this process."""
    import random

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tui.server.engines.lora.chat import encode_chat
    from tui.server.engines.lora.trainer import LORA_TARGETS, LoraSettings, autocast_dtype

    settings = LoraSettings()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    names = {name.rsplit(".", 1)[-1] for name, _ in base.named_modules()}
    targets = [t for t in LORA_TARGETS if t in names] or "all-linear"
    torch.manual_seed(seed)
    model = get_peft_model(base, LoraConfig(r=settings.r, lora_alpha=settings.alpha,
                                             lora_dropout=settings.dropout,
                                             target_modules=targets, task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=settings.base_learning_rate * hp.learning_rate_multiplier)
    hidden = getattr(base.config, "hidden_size", None)
    dtype = autocast_dtype(torch.device("cpu"), "auto", hidden if isinstance(hidden, int) else None)
    encoded = [encode_chat(tokenizer, e.messages) for e in examples]
    model.train()
    tokens, seconds, losses = 0, 0.0, []
    for epoch in range(hp.n_epochs):
        order = list(range(len(encoded)))
        random.Random(f"{seed}:epoch:{epoch}").shuffle(order)
        for i in order:
            started = time.perf_counter()
            ids = torch.tensor([encoded[i].input_ids])
            labels = torch.tensor([encoded[i].labels])
            with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            seconds += time.perf_counter() - started
            tokens += len(encoded[i].input_ids)
            if epoch == hp.n_epochs - 1:
                losses.append(loss.item())
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds,
            "last_epoch_loss": statistics.fmean(losses)}


def in_fresh_process(function: Any, *args: Any) -> Any:
    """``function(*args)`` in a spawned process, as the engine's worker runs: same conditions
    (a fresh interpreter, torch's default threads), whatever this process did before."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model folder or a .gguf file (default: the tiny "
                        "random-init test model, built in a temporary folder)")
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr-multiplier", type=float, default=1.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="autocast of both sides (auto: bf16 where the CPU supports it)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    from tui.server.engines.lora.trainer import PRECISION_ENV

    os.environ[PRECISION_ENV] = args.precision  # the spawned worker inherits it
    hp = Hyperparameters(n_epochs=args.epochs, batch_size=1,
                         learning_rate_multiplier=args.lr_multiplier)
    with tempfile.TemporaryDirectory(prefix="bench-lora-") as tmp:
        source = args.model
        if source is None:
            from tests.lora_support import build_tiny_model

            source = str(long_context(build_tiny_model(Path(tmp) / "tiny-chat")))
        lora = make_engine(source, Path(tmp) / "server")
        folder = lora.prepare("bench", lambda text: print(f"  base: {text}", flush=True))
        examples = demo_examples(args.examples, folder)
        engine = engine_run(lora, examples, hp, args.seed)
        bare = in_fresh_process(bare_run, folder, examples, hp, args.seed)
    ratio = engine["tokens_per_s"] / bare["tokens_per_s"]
    report = {"model": args.model or "tiny (random init, test fixture)",
              "examples": len(examples), "epochs": args.epochs, "engine": engine,
              "bare_peft": bare, "ratio_engine_over_bare": round(ratio, 3)}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"model {report['model']}, {len(examples)} examples x {args.epochs} epochs, "
          f"batch 1, autocast {engine['dtype']}")
    print(f"engine (worker)  {engine['tokens_per_s']:8.1f} tokens/s  "
          f"({engine['tokens']} tokens in {engine['seconds']:.1f} s; start-up "
          f"{engine['start_s']:.1f} s; peak memory {engine['peak_memory_mb'] or 0:.0f} MB; "
          f"last-epoch loss {engine['last_epoch_loss']:.3f})")
    print(f"bare PEFT loop   {bare['tokens_per_s']:8.1f} tokens/s  "
          f"({bare['tokens']} tokens in {bare['seconds']:.1f} s; "
          f"last-epoch loss {bare['last_epoch_loss']:.3f})")
    print(f"ratio engine / bare: {ratio:.2f} (goal >= 0.8)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
