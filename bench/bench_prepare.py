"""Bench `sqltune prepare` on Spider against the cookbook's per-message encode loop (processes).

    .venv/bin/python bench/bench_prepare.py [--spider DIR] [--runs N] [--json]

(a) `sqltune prepare <spider> --json` as a whole process (wall time; target < 1.5 s).
(b) the baseline: a fresh process that reads the JSONL prepare wrote and counts every message of
    every example with tiktoken's encode in a Python loop (OpenAI cookbook data-prep way). It
    pays its own start-up and encoding load (through sqltune's verified offline loader, since
    there is no network). Both count the same tokens; the bench checks the totals agree.
Run with the default template, the rich one (schema + sample values + sample rows, >= 1,500
tokens per example, where the ratio should be >= 5x) and rich with 100 sample rows, then shows
which subset of Spider fits a 50M-token job at 2 epochs with that big template.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = "gpt-4.1-mini-2025-04-14"


def baseline_count(path: Path, model: str) -> None:
    """The cookbook way (this runs in the baseline process): encode every value of every message."""
    started = time.perf_counter()
    from tui.core.budget.tokens import encoding_for_model, get_encoding

    encoding = get_encoding(encoding_for_model(model).name)
    loaded = time.perf_counter()
    total = 0
    examples = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            messages = json.loads(line)["messages"]
            num_tokens = 0
            for message in messages:
                num_tokens += 3  # tokens_per_message
                for key, value in message.items():
                    if not isinstance(value, str):
                        continue
                    num_tokens += len(encoding.encode(value))
                    if key == "name":
                        num_tokens += 1  # tokens_per_name
            num_tokens += 3  # every reply is primed with <|start|>assistant<|message|>
            total += num_tokens
            examples += 1
    done = time.perf_counter()
    print(json.dumps({"examples": examples, "tokens": total, "load_s": loaded - started,
                      "count_s": done - loaded}))


def _sqltune() -> list[str]:
    script = Path(sys.executable).parent / "sqltune"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tui"]


def _timed(argv: list[str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    completed = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{completed.stderr}")
    return elapsed, json.loads(completed.stdout)


def _median_run(argv: list[str], runs: int) -> tuple[float, float, dict[str, Any]]:
    times = []
    data: dict[str, Any] = {}
    for _ in range(runs):
        elapsed, data = _timed(argv)
        times.append(elapsed)
    return statistics.median(times), min(times), data


def bench_template(spider: Path, work: Path, name: str, flags: list[str],
                   runs: int) -> dict[str, Any]:
    out = work / f"{name}.jsonl"
    # a limit nothing reaches: the JSONL holds every example, as the baseline counts them all
    command = [*_sqltune(), "prepare", str(spider), "--json", "--model", MODEL,
               "--token-limit", str(10**12), *flags]
    ours, ours_best, data = _median_run(command, runs)
    with_out, _, written = _median_run([*command, "--out", str(out)], runs)
    baseline_cmd = [sys.executable, str(Path(__file__).resolve()), "--baseline-count", str(out),
                    "--model", MODEL]
    base, base_best, counted = _median_run(baseline_cmd, max(1, runs // 2))
    if counted["tokens"] != written["total_tokens"] or counted["examples"] != written["kept"]:
        raise SystemExit(f"token totals disagree: baseline {counted}, prepare "
                         f"{written['total_tokens']} over {written['kept']}")
    return {"name": name, "examples": data["kept"], "mean": data["mean_example_tokens"],
            "tokens": data["total_tokens"], "ours": ours, "ours_best": ours_best,
            "with_out": with_out, "base": base, "base_best": base_best,
            "base_load": counted["load_s"], "base_count": counted["count_s"],
            "ratio": base / ours, "phases": data["timings_s"]}


def fit_story(spider: Path, flags: list[str]) -> list[dict[str, Any]]:
    rows = []
    for strategy in ("stratified", "shortest", "random"):
        _, data = _timed([*_sqltune(), "prepare", str(spider), "--json", "--model", MODEL,
                          "--epochs", "2", "--token-limit", "50000000", "--strategy", strategy,
                          *flags])
        dbs = data["by_database"]
        rows.append({"strategy": strategy, "examples": data["examples"], "kept": data["kept"],
                     "mean": data["mean_example_tokens"], "trained": data["trained_tokens"],
                     "dbs_kept": sum(1 for v in dbs.values() if v["kept"]), "dbs": len(dbs),
                     "cost": data["estimated_cost_usd"]})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--spider", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--baseline-count", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", default=MODEL, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_count is not None:
        baseline_count(args.baseline_count, args.model)
        return 0
    from tui.core.paths import spider_dir

    spider = args.spider or spider_dir()
    if spider is None:
        print("Spider data not found (../shared/spider-train or --spider DIR)")
        return 2
    _timed([*_sqltune(), "prepare", str(spider), "--json"])  # warm the tokenizer cache
    templates = [("default", ["--template", "default"]),
                 ("rich", ["--template", "rich"]),
                 ("rich+100", ["--template", "rich", "--sample-rows", "100"])]
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench_template(spider, Path(tmp), name, flags, args.runs)
                   for name, flags in templates]
    default, rich, big = results
    checks = [
        ("prepare (default) whole process < 1.5 s", default["ours"] < 1.5),
        ("prepare (rich) whole process < 1.5 s", rich["ours"] < 1.5),
        ("rich template averages >= 1,500 tokens", rich["mean"] >= 1500),
        ("ratio with the rich template >= 5x", rich["ratio"] >= 5),
        (f"ratio with rich + 100 sample rows ({big['mean']:,.0f} tokens/example) >= 5x",
         big["ratio"] >= 5),
    ]
    story_flags = ["--template", "rich", "--sample-rows", "100"]
    story = fit_story(spider, story_flags)
    ok = all(passed for _, passed in checks)
    if args.json:
        print(json.dumps({"spider": str(spider), "model": MODEL, "runs": args.runs,
                          "templates": results, "checks": dict(checks),
                          "fit_50m_2_epochs": story, "load_average": os.getloadavg()[0]}))
        return 0 if ok else 1
    print(f"sqltune prepare vs the cookbook encode loop, {spider}, model {MODEL}, "
          f"median of {args.runs} whole-process runs (baseline: {max(1, args.runs // 2)}), "
          f"load average {os.getloadavg()[0]:.2f}\n")
    header = (f"{'template':<9} {'examples':>8} {'mean tok':>8} {'tokens':>11} "
              f"{'prepare s':>9} {'+ --out s':>9} {'baseline s':>10} {'(load':>6} "
              f"{'count)':>7} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['name']:<9} {r['examples']:>8,} {r['mean']:>8,.0f} {r['tokens']:>11,} "
              f"{r['ours']:>9.3f} {r['with_out']:>9.3f} {r['base']:>10.3f} "
              f"{r['base_load']:>6.2f} {r['base_count']:>7.2f} {r['ratio']:>5.1f}x")
    print()
    for r in results:
        phases = ", ".join(f"{k} {v:.3f}" for k, v in r["phases"].items())
        print(f"prepare phases ({r['name']}), in-process seconds: {phases}")
    print()
    for label, passed in checks:
        print(f"[{'ok' if passed else 'FAIL'}] {label}")
    print(f"\nWhat fits a 50,000,000-token job at 2 epochs with a big template "
          f"({' '.join(story_flags)}):")
    print(f"{'strategy':<11} {'examples':>8} {'kept':>6} {'mean tok':>8} {'trained':>12} "
          f"{'databases kept':>15} {'cost $':>8}")
    for row in story:
        print(f"{row['strategy']:<11} {row['examples']:>8,} {row['kept']:>6,} "
              f"{row['mean']:>8,.0f} {row['trained']:>12,} "
              f"{row['dbs_kept']:>7} of {row['dbs']:<4} {row['cost']:>8.2f}")
    return 0 if ok else 1

if __name__ == "__main__":
    raise SystemExit(main())
