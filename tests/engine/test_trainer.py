"""The LoRA trainer on the tiny model: real gradient steps, learning, blobs, exact resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tui.server.engines.base import EngineError, Hyperparameters, StepMetrics
from tui.server.engines.lora import artifacts
from tui.server.engines.lora.chat import prompt_ids

pytest.importorskip("peft")

SCHEMA = "CREATE TABLE singer (id INTEGER, name TEXT);"


def example(n: int) -> list[dict[str, Any]]:
    return [{"role": "system", "content": SCHEMA},
            {"role": "user", "content": f"What is the name of singer {n}?"},
            {"role": "assistant", "content": f"SELECT name FROM singer WHERE id = {n}"}]


def greedy(model: Any, tokenizer: Any, messages: list[dict[str, Any]]) -> str:
    import torch

    ids = torch.tensor([prompt_ids(tokenizer, messages)])
    model.eval()
    with torch.no_grad():
        out = model.generate(input_ids=ids, max_new_tokens=24, do_sample=False)
    return str(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))


def test_steps_learn_and_the_tuned_model_writes_the_trained_sql(tiny_model_dir: Path) -> None:
    from tui.server.engines.lora.trainer import LoraTrainer

    hp = Hyperparameters(n_epochs=12, batch_size=1, learning_rate_multiplier=10)
    trainer = LoraTrainer(tiny_model_dir, "tiny", [example(1), example(1)], [example(7)], hp,
                          seed=3)
    assert trainer.total_steps == 24
    before = greedy(trainer.model, trainer.tokenizer, example(1)[:2])
    assert before != "SELECT name FROM singer WHERE id = 1"
    metrics = [trainer.step() for _ in range(trainer.total_steps)]
    assert [m.step for m in metrics] == list(range(1, 25))
    assert [m.epoch for m in metrics if m.epoch_end] == list(range(1, 13))
    assert metrics[-1].train_loss < metrics[0].train_loss - 0.5
    assert metrics[-1].train_mean_token_accuracy > 0.9 > metrics[0].train_mean_token_accuracy
    assert all(m.valid_loss is not None for m in metrics)
    assert all((m.full_valid_loss is not None) == m.epoch_end for m in metrics)
    assert trainer.last_step_tokens > 20 and trainer.last_step_seconds > 0
    assert greedy(trainer.model, trainer.tokenizer, example(1)[:2]) == \
        "SELECT name FROM singer WHERE id = 1"

    # the blob is a standard PEFT adapter: loaded on a fresh base it answers the same
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    blob = trainer.state(resumable=False)
    assert artifacts.read_trainer_state(blob) is None
    meta = artifacts.unpack_adapter(blob, tiny_model_dir.parent / "adapter-out")
    assert (meta.base_model, meta.step, meta.lora["r"]) == ("tiny", 24, 16)
    assert sorted(meta.lora["target_modules"]) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                                      tiny_model_dir.parent / "adapter-out")
    assert greedy(tuned, trainer.tokenizer, example(1)[:2]) == \
        "SELECT name FROM singer WHERE id = 1"


def test_a_resumed_run_continues_exactly_as_the_uninterrupted_one(tiny_model_dir: Path) -> None:
    import torch

    from tui.server.engines.lora.trainer import LoraSettings, LoraTrainer

    train = [example(n) for n in range(5)]
    valid = [example(n) for n in (11, 12, 13)]
    hp = Hyperparameters(n_epochs=2, batch_size=2, learning_rate_multiplier=5)

    def row(m: StepMetrics) -> list[Any]:
        return [m.step, m.epoch, m.epoch_end, m.train_loss, m.train_mean_token_accuracy,
                m.valid_loss, m.full_valid_loss]

    bf16 = LoraSettings(precision="bf16")  # the autocast path real models take on this CPU
    whole = LoraTrainer(tiny_model_dir, "tiny", train, valid, hp, seed=9, settings=bf16)
    assert whole.dtype is torch.bfloat16
    expected = [row(whole.step()) for _ in range(whole.total_steps)]
    assert whole.total_steps == 6

    first = LoraTrainer(tiny_model_dir, "tiny", train, valid, hp, seed=9,
                        settings=LoraSettings(precision="bf16"))
    got = [row(first.step()) for _ in range(2)]
    state = first.state()
    assert artifacts.read_meta(state).step == 2
    del first
    resumed = LoraTrainer(tiny_model_dir, "tiny", train, valid, hp, seed=9, resume_state=state,
                          settings=LoraSettings(precision="bf16"))
    assert resumed.steps_done == 2
    got += [row(resumed.step()) for _ in range(4)]
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        assert [None if v is None else pytest.approx(v, rel=1e-5) for v in theirs] == mine

    with pytest.raises(EngineError, match="another job"):
        LoraTrainer(tiny_model_dir, "tiny", train, valid, hp, seed=10, resume_state=state)
    with pytest.raises(EngineError, match="not a lora engine blob"):
        LoraTrainer(tiny_model_dir, "tiny", train, valid, hp, seed=9, resume_state=b"junk")


def test_under_bf16_the_frozen_base_is_bf16_and_the_adapter_learns_in_fp32(
        tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from tui.server.engines.lora.trainer import PRECISION_ENV, LoraTrainer

    monkeypatch.setenv(PRECISION_ENV, "bf16")
    hp = Hyperparameters(n_epochs=3, batch_size=1, learning_rate_multiplier=10)
    trainer = LoraTrainer(tiny_model_dir, "tiny", [example(1), example(2)], None, hp, seed=3)
    trainable = {p.dtype for p in trainer.model.parameters() if p.requires_grad}
    frozen = {p.dtype for p in trainer.model.parameters() if not p.requires_grad}
    assert trainable == {torch.float32} and frozen == {torch.bfloat16}
    assert trainer.settings.dropout == 0.0
    metrics = [trainer.step() for _ in range(trainer.total_steps)]
    assert all(m.train_loss == m.train_loss for m in metrics)  # no NaN
    assert metrics[-1].train_loss < metrics[0].train_loss


def test_compiled_layers_train_as_the_uncompiled_ones(tiny_model_dir: Path) -> None:
    from tui.server.engines.lora.trainer import LoraSettings, LoraTrainer

    train = [example(n) for n in range(3)]
    hp = Hyperparameters(n_epochs=2, batch_size=1, learning_rate_multiplier=5)
    plain = LoraTrainer(tiny_model_dir, "tiny", train, None, hp, seed=4,
                        settings=LoraSettings(precision="fp32", compile="auto"))
    assert not plain.compiled  # auto: the 64-wide model would compile longer than it trains
    compiled = LoraTrainer(tiny_model_dir, "tiny", train, None, hp, seed=4,
                           settings=LoraSettings(precision="fp32", compile="on"))
    assert compiled.compiled
    for _ in range(plain.total_steps):
        want, got = plain.step(), compiled.step()
        assert got.train_loss == pytest.approx(want.train_loss, rel=1e-3)
        assert got.train_mean_token_accuracy == want.train_mean_token_accuracy
    assert compiled.compiled  # no fallback happened


FALLBACK_SCRIPT = """
import json, sys
from pathlib import Path
from tui.server.engines.base import Hyperparameters
from tui.server.engines.lora.trainer import LoraSettings, LoraTrainer
train = json.loads(sys.argv[2])
trainer = LoraTrainer(Path(sys.argv[1]), "tiny", train, None,
                      Hyperparameters(n_epochs=1, batch_size=1, learning_rate_multiplier=5),
                      seed=4, settings=LoraSettings(precision="fp32", compile="on"))
before = trainer.compiled
metrics = [trainer.step() for _ in range(trainer.total_steps)]
print(json.dumps({"before": before, "after": trainer.compiled,
                  "steps": [m.step for m in metrics]}))
"""


def test_a_failed_compilation_trains_uncompiled(tiny_model_dir: Path, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    # No C++ compiler for Inductor (and an empty kernel cache, so it must build one).
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"),
           "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    train = [example(n) for n in range(2)]
    done = subprocess.run([sys.executable, "-c", FALLBACK_SCRIPT, str(tiny_model_dir),
                           json.dumps(train)], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"before": True, "after": False, "steps": [1, 2]}
    assert "torch.compile failed, training uncompiled" in done.stderr


def test_bucketed_lengths_cover_each_length_with_at_most_16_per_doubling() -> None:
    from tui.server.engines.lora.trainer import bucket_length

    buckets = [bucket_length(n) for n in range(1, 4097)]
    assert all(b >= n for n, b in zip(range(1, 4097), buckets, strict=True))
    assert buckets == sorted(buckets)  # never shorter for a longer example
    assert all(b - n < max(8, n // 16 + 1) for n, b in zip(range(1, 4097), buckets,
                                                          strict=True))
    for low in (64, 128, 512, 1024, 2048):
        assert len({b for n, b in zip(range(1, 4097), buckets, strict=True)
                    if low < n <= 2 * low}) <= 16
    assert (bucket_length(950), bucket_length(1000), bucket_length(100)) == (960, 1024, 104)


def test_padding_to_a_bucket_changes_no_loss_nor_gradient(tiny_model_dir: Path) -> None:
    import torch

    from tui.server.engines.lora.trainer import LoraSettings, LoraTrainer, bucket_length

    train = [example(n) for n in (3, 41, 512)]
    hp = Hyperparameters(n_epochs=1, batch_size=1, learning_rate_multiplier=5)
    runs = {pad: LoraTrainer(tiny_model_dir, "tiny", train, [example(9)], hp, seed=2,
                             settings=LoraSettings(precision="fp32", pad_lengths=pad))
            for pad in ("off", "on")}
    lengths = [len(e.input_ids) for e in runs["on"]._train]
    assert any(bucket_length(n) != n for n in lengths)  # the test pads for real
    calls: list[int] = []
    forward = runs["on"].model.forward

    def seen(*args: Any, **kwargs: Any) -> Any:
        calls.append(int(kwargs["input_ids"].shape[1]))
        return forward(*args, **kwargs)

    runs["on"].model.forward = seen
    for _ in range(runs["off"].total_steps):
        want, got = runs["off"].step(), runs["on"].step()
        assert got.train_loss == pytest.approx(want.train_loss, rel=1e-5)
        assert got.valid_loss == pytest.approx(want.valid_loss, rel=1e-5)
        assert got.train_mean_token_accuracy == want.train_mean_token_accuracy
        assert runs["on"].last_step_tokens == runs["off"].last_step_tokens  # real tokens
    assert sorted(set(calls)) == sorted({bucket_length(n) for n in lengths}
                                        | {bucket_length(len(runs["on"]._valid[0].input_ids))})
    trained = {pad: {name: p.detach().clone() for name, p in run.model.named_parameters()
                     if p.requires_grad} for pad, run in runs.items()}
    for name, weight in trained["off"].items():
        assert torch.allclose(trained["on"][name], weight, rtol=1e-4, atol=1e-6), name
