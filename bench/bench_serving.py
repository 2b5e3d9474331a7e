"""Bench the lora engine's serving: base materialization, load, chat latency on demo dev questions.

    .venv/bin/python bench/bench_serving.py --model FILE.gguf|DIR [--questions 20] [--adapter DIR]

Reported, each measured in this process:
- a GGUF source: dequantize + cache as safetensors (a fresh cache folder), then the same folder
  found again by a new registry (a server restart) without converting;
- the base's load into memory (``Serving.base``), from the cached safetensors;
- per demo dev question (the default prompt template, greedy, max_tokens 128, the answer
  stopping at the model's end-of-turn): wall latency p50/p95, time to first token p50,
  decode tokens/s (completion tokens over the time after the first token);
- the process's peak resident memory (ru_maxrss) after serving.
With ``--adapter`` the questions are asked through that PEFT adapter (a tuned model).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the server's Serving sets it

from tui.core.data.datasets import load_dataset
from tui.core.data.prompts import DEFAULT_TEMPLATE, messages_for
from tui.core.data.schema import SchemaCache
from tui.core.paths import demo_dir
from tui.server.engines.lora.registry import BaseRegistry
from tui.server.engines.lora.serving import Serving
from tui.server.engines.lora.sources import parse_spec


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a .gguf file or a model folder")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--adapter", type=Path, help="a PEFT adapter folder to serve through")
    parser.add_argument("--cache", type=Path, help="bases cache folder (default: a fresh one)")
    args = parser.parse_args()

    cache = args.cache or Path(tempfile.mkdtemp(prefix="bench-serving-")) / "bases"
    spec = parse_spec(f"bench={args.model}")
    started = time.monotonic()
    BaseRegistry([spec], cache).folder("bench", lambda text: print(f"  {text}"))
    first_s = time.monotonic() - started
    registry = BaseRegistry([spec], cache)
    started = time.monotonic()
    registry.folder("bench")
    again_s = time.monotonic() - started
    print(f"{spec.kind} source: materialize {first_s:.1f} s (first), {again_s:.2f} s (cached)")

    serving = Serving(registry)
    started = time.monotonic()
    serving.base("bench")
    print(f"base load into memory: {time.monotonic() - started:.1f} s "
          f"(device {serving.base('bench').device})")
    chat = serving.chat_model("bench", args.adapter)

    root = demo_dir()
    schemas = SchemaCache()
    entries = load_dataset(root, "dev").examples[:args.questions]
    latencies, firsts, speeds, tokens = [], [], [], []
    for entry in entries:
        messages = messages_for(DEFAULT_TEMPLATE, schemas,
                                root / "database" / entry.db_id / f"{entry.db_id}.sqlite",
                                entry.question)
        started = time.monotonic()
        stream = chat.stream(messages, max_tokens=args.max_tokens, temperature=0)
        first = None
        for _delta in stream:
            if first is None:
                first = time.monotonic() - started
        total = time.monotonic() - started
        answer = stream.completion
        assert answer is not None
        latencies.append(total)
        firsts.append(first if first is not None else total)
        tokens.append(answer.completion_tokens)
        if answer.completion_tokens > 1 and first is not None and total > first:
            speeds.append((answer.completion_tokens - 1) / (total - first))
    print(f"{len(entries)} dev questions, greedy, max_tokens {args.max_tokens}: latency p50 "
          f"{statistics.median(latencies):.2f} s, p95 {percentile(latencies, 0.95):.2f} s; "
          f"first token p50 {statistics.median(firsts):.2f} s; decode "
          f"{statistics.median(speeds):.1f} tokens/s (median); completion tokens mean "
          f"{statistics.mean(tokens):.0f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
