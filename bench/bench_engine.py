"""Local engine bench: 1,000-step job speed, tuned-vs-base execution accuracy on demo dev.

Run: .venv/bin/python bench/bench_engine.py
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.core.data.datasets import Example, load_dataset
from tui.core.data.prompts import DEFAULT_TEMPLATE, messages_for
from tui.core.data.schema import SchemaCache
from tui.core.paths import demo_dir
from tui.core.sql.sqlexec import QueryError, run_readonly
from tui.server.engines import BASE_MODEL, ChatExample, ChatModel, base_models, get_engine
from tui.server.engines.ngram import NgramLM


def same_result(gold: list[tuple[Any, ...]], pred: list[tuple[Any, ...]], ordered: bool) -> bool:
    """Spider EX without column permutation: equal rows, as a sequence or a multiset."""
    if ordered:
        return gold == pred
    return Counter(map(repr, gold)) == Counter(map(repr, pred))


def execution_accuracy(model: ChatModel, examples: list[Example], root: Path,
                       cache: SchemaCache) -> tuple[float, int]:
    """Share of examples whose predicted SQL returns the gold rows (gold failures skipped)."""
    right = total = 0
    for example in examples:
        db = root / "database" / example.db_id / f"{example.db_id}.sqlite"
        try:
            gold = run_readonly(db, example.query, timeout=5.0, max_rows=10_000).rows
        except QueryError:
            continue
        total += 1
        messages = messages_for(DEFAULT_TEMPLATE, cache, db, example.question)
        sql = model.complete(messages).text
        try:
            pred = run_readonly(db, sql, timeout=5.0, max_rows=10_000).rows
        except QueryError:
            continue
        right += same_result(gold, pred, "order by" in example.query.lower())
    return (right / total if total else 0.0), total


def main() -> int:
    root = demo_dir()
    cache = SchemaCache()
    train = load_dataset(root, "train").examples
    dev = load_dataset(root, "dev").examples
    chats = [ChatExample(messages_for(DEFAULT_TEMPLATE, cache,
                                      root / "database" / e.db_id / f"{e.db_id}.sqlite",
                                      e.question, e.query)) for e in train]
    valid = [ChatExample(messages_for(DEFAULT_TEMPLATE, cache,
                                      root / "database" / e.db_id / f"{e.db_id}.sqlite",
                                      e.question, e.query)) for e in dev]
    engine = get_engine("ngram")

    # Speed: a 1,000-step job (batch 1, a validation file) against a learn-only pass over the
    # same token stream (what counting n-grams costs without any scoring).
    epochs = -(-1000 // len(chats))
    hp = engine.resolve_hyperparameters(len(chats), {"n_epochs": epochs, "batch_size": 1})
    started = time.perf_counter()
    run = engine.start(chats, valid, hp, seed=7)
    prepared = time.perf_counter()
    metrics = []
    while run.steps_done < min(run.total_steps, 1000):
        metrics.append(run.step())
    finished = time.perf_counter()
    blob = run.state()
    saved = time.perf_counter()
    lm = NgramLM(4, 200_020)
    seqs = [s for ex in run._train for s in ex]
    learn_start = time.perf_counter()
    for i in range(1000):
        lm.learn(seqs[i % len(seqs)], 1.0)
    learn_only = time.perf_counter() - learn_start
    steps = len(metrics)
    print(f"1,000-step job: {steps} steps in {finished - prepared:.2f} s "
          f"({steps / (finished - prepared):.0f} steps/s) + {prepared - started:.2f} s setup, "
          f"state {len(blob) / 1024:.0f} KiB in {saved - finished:.3f} s")
    print(f"  learn-only pass over the same 1,000 batches: {learn_only:.3f} s; "
          f"scoring+validation costs {(finished - prepared) / learn_only:.1f}x that")
    first, last = metrics[0], metrics[-1]
    print(f"  train_loss {first.train_loss:.3f} -> {last.train_loss:.3f}, full_valid_loss "
          f"{next(m.full_valid_loss for m in metrics if m.full_valid_loss is not None):.3f}"
          f" -> {[m for m in metrics if m.full_valid_loss is not None][-1].full_valid_loss:.3f}")

    # Accuracy: default (auto) job on the demo train split; EX on the demo dev split.
    hp = engine.resolve_hyperparameters(len(chats), {})
    started = time.perf_counter()
    run = engine.start(chats, valid, hp, seed=1)
    while run.steps_done < run.total_steps:
        run.step()
    tuned = engine.load(run.state())
    elapsed = time.perf_counter() - started
    print(f"demo job ({len(chats)} examples, {hp.n_epochs} epochs, batch {hp.batch_size}, "
          f"{run.total_steps} steps): {elapsed:.2f} s")
    tuned_ex, n = execution_accuracy(tuned, dev, root, cache)
    base_ex, _ = execution_accuracy(base_models()[BASE_MODEL], dev, root, cache)
    print(f"demo dev EX ({n} questions): tuned {tuned_ex:.1%}, base {base_ex:.1%}, "
          f"ratio {tuned_ex / base_ex if base_ex else float('inf'):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
