"""Bench the lora trainer on many distinct example lengths: bucketed padding against none.

    .venv/bin/python bench/bench_lora_lengths.py --model DIR|FILE.gguf [--examples 90]

On CPU, steps slow down as a job meets more distinct example lengths, and stay slow even for
lengths met before (measured here: SmolLM2-135M, 90 demo examples, 66 lengths: 1.73 ms per
token over the first 15 steps, 2.03 over the last 15 and 2.06 when the first 15 come again).
A 4x larger oneDNN kernel cache (``ONEDNN_PRIMITIVE_CACHE_CAPACITY=4096``) changed nothing
(x1.03), so the per-shape state that grows lies elsewhere. The trainer pads each example on the
right to a bucketed length (at most 16 lengths per doubling, ``trainer.bucket_length``).

Each configuration runs in its own spawned process, on the first N demo
train examples in file order (each length met in turn) then the first 15 again, one step per
example, batch 1, the engine's defaults (bf16 autocast, compiled layers where they apply):
  a) unpadded (``pad_lengths="off"``): the baseline,
  b) padded (``pad_lengths="auto"``, the trainer's CPU default).
Reported per configuration: distinct input lengths, seconds of steps 2..end (step 1 pays the
compilation), real (unpadded) tokens per second, and ms per real token over the first 15, the
last 15 distinct, and the repeated 15 steps; then each time as a ratio of the baseline's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_lora import demo_examples, in_fresh_process, make_engine

from tui.server.engines.base import Hyperparameters

REPEAT = 15
CONFIGS = (("unpadded", "off"), ("padded", "auto"))


def run(folder: Path, messages: list[list[dict[str, Any]]], pad: str) -> dict[str, Any]:
    """Step a LoraTrainer once per example in file order; time each step."""
    from tui.server.engines.lora.trainer import LoraSettings, LoraTrainer, bucket_length

    hp = Hyperparameters(n_epochs=1, batch_size=1, learning_rate_multiplier=1.8)
    trainer = LoraTrainer(folder, "bench", messages, None, hp, seed=0,
                          settings=LoraSettings(pad_lengths=pad))
    trainer.epoch_order = lambda epoch: list(range(len(messages)))  # type: ignore[method-assign]
    steps: list[tuple[float, int]] = []
    lengths: set[int] = set()
    for _ in messages:
        started = time.perf_counter()
        trainer.step()
        steps.append((time.perf_counter() - started, trainer.last_step_tokens))
        n = trainer.last_step_tokens
        lengths.add(bucket_length(n) if trainer.padded else n)
    return {"steps": steps, "lengths": len(lengths), "padded": trainer.padded,
            "compiled": trainer.compiled}


def ms_per_token(steps: list[tuple[float, int]]) -> float:
    return 1000 * sum(s for s, _ in steps) / sum(t for _, t in steps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a model folder or a .gguf file")
    parser.add_argument("--examples", type=int, default=90)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    os.environ.setdefault("GOMP_SPINCOUNT", "3000")  # as the worker runs
    with tempfile.TemporaryDirectory(prefix="bench-lengths-") as tmp:
        if Path(args.model).is_dir():
            folder = Path(args.model)
        else:
            engine = make_engine(args.model, Path(tmp) / "server")
            folder = engine.prepare("bench", lambda text: print(f"  base: {text}", flush=True))
        distinct = [e.messages for e in demo_examples(args.examples, folder)]
        messages = distinct + distinct[:REPEAT]
        results: dict[str, Any] = {}
        for name, pad in CONFIGS:
            result = in_fresh_process(run, folder, messages, pad)
            steps = result["steps"]
            n = len(distinct)
            results[name] = {
                "lengths": result["lengths"], "compiled": result["compiled"],
                "seconds": round(sum(s for s, _ in steps[1:]), 1),
                "tokens_per_s": round(sum(t for _, t in steps[1:])
                                      / sum(s for s, _ in steps[1:]), 1),
                "ms_per_token_first": round(ms_per_token(steps[1:REPEAT]), 3),
                "ms_per_token_last": round(ms_per_token(steps[n - REPEAT:n]), 3),
                "ms_per_token_repeat": round(ms_per_token(steps[n:]), 3),
            }
    baseline = results[CONFIGS[0][0]]["seconds"]
    for result in results.values():
        result["time_vs_baseline"] = round(result["seconds"] / baseline, 3)
    if args.json:
        print(json.dumps({"examples": len(distinct), "configs": results}))
        return 0
    print(f"{len(distinct)} distinct demo examples then the first {REPEAT} again, one step each")
    for name, r in results.items():
        print(f"{name:9} {r['lengths']:3} lengths  {r['seconds']:6.1f} s  "
              f"{r['tokens_per_s']:6.1f} tok/s  ms/token first {r['ms_per_token_first']:.3f} "
              f"last {r['ms_per_token_last']:.3f} repeat {r['ms_per_token_repeat']:.3f}  "
              f"time x{r['time_vs_baseline']:.3f}")
    print("(ms/token counts real tokens; the padded run computes up to 1/16 more)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
