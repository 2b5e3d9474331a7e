"""Serving on the tiny model: one base, many adapters, greedy/sampled decoding, stop, streams."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tui.server.engines.lora.serving import (
    ContextLengthExceeded,
    IncrementalDecoder,
    LoraChatModel,
    Serving,
    StopCutter,
)
from tui.server.engines.lora.sources import make_spec

pytest.importorskip("peft", reason="the train extra (torch, transformers, peft) is absent")

MESSAGES = [{"role": "system", "content": "CREATE TABLE singer (id INTEGER, name TEXT);"},
            {"role": "user", "content": "What is the name of singer 3?"}]


@pytest.fixture(scope="module")
def adapters(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two random (non-zero) LoRA adapters for the tiny model, as standard PEFT folders."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folders = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"],
                            init_lora_weights=False)
        folder = tmp_path_factory.mktemp(f"adapter{seed}")
        get_peft_model(model, config).save_pretrained(folder)
        folders.append(folder)
    return folders


@pytest.fixture
def serving(tiny_model_dir: Path, tmp_path: Path) -> Serving:
    from tui.server.engines.lora.registry import BaseRegistry

    registry = BaseRegistry([make_spec("tiny", str(tiny_model_dir))], tmp_path / "bases")
    return Serving(registry, device="cpu")


def reference(tiny_model_dir: Path, adapter: Path | None, max_tokens: int) -> tuple[list[int],
                                                                                     list[int]]:
    """(prompt ids, greedy new ids) from transformers' own generate on a freshly loaded model."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tui.server.engines.lora.chat import prompt_ids

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model: Any = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter)
    prompt = prompt_ids(tokenizer, MESSAGES)
    with torch.inference_mode():
        out = model.generate(input_ids=torch.tensor([prompt]), max_new_tokens=max_tokens,
                             do_sample=False, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
    return prompt, out[0][len(prompt):].tolist()


def test_greedy_matches_transformers_generate_with_exact_usage(
        serving: Serving, tiny_model_dir: Path) -> None:
    prompt, new = reference(tiny_model_dir, None, 12)
    answer = serving.chat_model("tiny").complete(MESSAGES, max_tokens=12, temperature=0)
    tokenizer = serving.base("tiny").tokenizer
    eos = tokenizer.eos_token_id
    visible = [token for token in new if token != eos]
    assert answer.text == tokenizer.decode(visible, skip_special_tokens=True)
    assert answer.prompt_tokens == len(prompt)
    assert answer.completion_tokens == len(new)
    assert answer.finish_reason == ("stop" if eos in new else "length")


def test_max_tokens_cuts_with_finish_length(serving: Serving) -> None:
    answer = serving.chat_model("tiny").complete(MESSAGES, max_tokens=5, temperature=0)
    # the random tiny model never emits its end-of-turn token this early
    assert answer.completion_tokens == 5
    assert answer.finish_reason == "length"


def test_stop_cuts_before_the_stop_string_streamed_or_not(serving: Serving) -> None:
    chat = serving.chat_model("tiny")
    full = chat.complete(MESSAGES, max_tokens=24, temperature=0).text
    assert len(full) > 8
    stop = full[5:8]
    expected = full[:full.find(stop)]
    cut = chat.complete(MESSAGES, max_tokens=24, temperature=0, stop=["never there", stop])
    assert (cut.text, cut.finish_reason) == (expected, "stop")
    assert cut.completion_tokens < 24
    stream = chat.stream(MESSAGES, max_tokens=24, temperature=0, stop=[stop])
    deltas = list(stream)
    assert "".join(deltas) == expected
    assert stream.completion is not None and stream.completion.text == expected
    assert stream.completion.completion_tokens == cut.completion_tokens


def test_stream_is_token_by_token_and_adds_up(serving: Serving) -> None:
    chat = serving.chat_model("tiny")
    whole = chat.complete(MESSAGES, max_tokens=16, temperature=0)
    stream = chat.stream(MESSAGES, max_tokens=16, temperature=0)
    deltas = list(stream)
    assert "".join(deltas) == whole.text
    assert len(deltas) >= whole.completion_tokens // 3 > 1
    assert stream.completion == whole


def test_incremental_decoding_never_splits_a_character(serving: Serving) -> None:
    tokenizer = serving.base("tiny").tokenizer
    text = "SELECT name FROM singer WHERE name = 'Zoë ☃ 日本 🎤' -- café"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text.split())  # multi-byte characters span several byte tokens
    decoder = IncrementalDecoder(tokenizer, tokenizer("<|im_start|>assistant\n")["input_ids"])
    deltas = [decoder.push(token) for token in ids] + [decoder.flush()]
    assert "".join(deltas) == text
    assert not any("\ufffd" in delta for delta in deltas)


def test_stop_cutter_holds_back_a_possible_stop_prefix() -> None:
    cutter = StopCutter([";\n", "END"])
    out = [cutter.feed(piece) for piece in ("SELECT 1", ";", " -- E", "N", "X", "EN", "D tail")]
    assert out == ["SELECT 1", "", "; -- ", "", "ENX", "", ""]
    assert cutter.answer() == "SELECT 1; -- ENX"
    assert cutter.flush() == ""


def test_sampling_is_seeded_and_top_p_tiny_is_greedy(serving: Serving) -> None:
    chat = serving.chat_model("tiny")
    greedy = chat.complete(MESSAGES, max_tokens=10, temperature=0).text
    one = chat.complete(MESSAGES, max_tokens=10, temperature=1.5, seed=7).text
    assert chat.complete(MESSAGES, max_tokens=10, temperature=1.5, seed=7).text == one
    others = {chat.complete(MESSAGES, max_tokens=10, temperature=1.5, seed=s).text
              for s in range(4)}
    assert len(others) > 1  # a random tiny model at T=1.5 does not repeat itself
    assert chat.complete(MESSAGES, max_tokens=10, temperature=1.0, top_p=1e-6,
                         seed=3).text == greedy


def test_one_base_serves_many_adapters_without_reloading(
        serving: Serving, tiny_model_dir: Path, adapters: list[Path]) -> None:
    tokenizer_of = serving.registry.tokenizer("tiny")
    want = {}
    for adapter in [None, *adapters]:
        _prompt, new = reference(tiny_model_dir, adapter, 8)
        want[adapter] = tokenizer_of.decode(
            [t for t in new if t != tokenizer_of.eos_token_id], skip_special_tokens=True)
    assert len(set(want.values())) == 3  # the adapters really change the answers
    order = [adapters[0], None, adapters[1], adapters[0], None, adapters[1], adapters[0]]
    for adapter in order:
        answer = serving.chat_model("tiny", adapter).complete(MESSAGES, max_tokens=8,
                                                              temperature=0)
        assert answer.text == want[adapter], adapter
    assert serving.base_loads == {"tiny": 1}
    assert sorted(serving.adapter_loads.values()) == [1, 1]


def test_concurrent_requests_on_mixed_adapters(serving: Serving, adapters: list[Path]) -> None:
    models: list[LoraChatModel] = [serving.chat_model("tiny", adapter)
                                   for adapter in [None, *adapters]]
    expected = [model.complete(MESSAGES, max_tokens=6, temperature=0).text for model in models]
    results: dict[int, str] = {}

    def ask(i: int) -> None:
        results[i] = models[i % 3].complete(MESSAGES, max_tokens=6, temperature=0).text

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results[i] == expected[i % 3] for i in range(9))
    assert serving.base_loads == {"tiny": 1}


def test_a_prompt_over_the_context_is_refused_like_openai(serving: Serving) -> None:
    long = [{"role": "user", "content": "singer " * 1500}]
    with pytest.raises(ContextLengthExceeded, match=r"maximum context length is 1024 tokens\. "
                       r"However, your messages resulted in \d+ tokens"):
        serving.chat_model("tiny").complete(long, max_tokens=4)


def test_a_long_prompt_prefilled_under_bf16_autocast_still_answers(tiny_model_dir: Path,
                                                                   tmp_path: Path) -> None:
    from tui.server.engines.lora.registry import BaseRegistry
    from tui.server.engines.lora.serving import PREFILL_AUTOCAST_MIN

    registry = BaseRegistry([make_spec("tiny", str(tiny_model_dir))], tmp_path / "bases")
    serving = Serving(registry, device="cpu", prefill_autocast=True)
    long = [{"role": "user", "content": "singer name " * PREFILL_AUTOCAST_MIN}]
    stream = serving.chat_model("tiny").stream(long, max_tokens=6, temperature=0)
    text = "".join(stream)
    assert stream.completion is not None and stream.completion.text == text
    assert stream.completion.completion_tokens == 6
    assert stream.completion.prompt_tokens >= PREFILL_AUTOCAST_MIN
    assert serving.base("tiny").prefill_autocast is not None
