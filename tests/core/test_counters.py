"""Token counters per base model: an open-weight base counts with its own tokenizer and chat
template exactly as the server's training does; without its tokenizer, tiktoken, marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tui.core.budget.counters import (
    BaseModelInfo,
    ModelTokenizerCounter,
    TiktokenCounter,
    counter_for,
)
from tui.core.budget.tokens import O200K, count_message_tokens, get_encoding

EXAMPLES: list[list[dict[str, Any]]] = [
    [{"role": "system", "content": "CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT);"},
     {"role": "user", "content": "How many singers are there?"},
     {"role": "assistant", "content": "SELECT count(*) FROM singer"}],
    [{"role": "system", "content": "CREATE TABLE t (a INTEGER);"},
     {"role": "user", "content": "first?"},
     {"role": "assistant", "content": "SELECT a FROM t LIMIT 1", "weight": 0},
     {"role": "user", "content": [{"type": "text", "text": "and the "},
                                  {"type": "text", "text": "largest?"}]},
     {"role": "assistant", "content": "SELECT max(a) FROM t"}],
    [{"role": "user", "content": "Write nothing."}, {"role": "assistant", "content": ""}],
]


def tiny_base(folder: Path) -> BaseModelInfo:
    return BaseModelInfo.from_json({
        "id": "tiny", "source": str(folder), "kind": "folder", "engine": "lora",
        "device": "cpu", "context_length": 1024, "tokens_per_second": None,
        "folder": str(folder)})


def test_open_weight_base_counts_as_the_server_trains(tiny_model_dir: Path) -> None:
    chat = pytest.importorskip("tui.server.engines.lora.chat")
    from transformers import AutoTokenizer

    counter = counter_for("tiny", [tiny_base(tiny_model_dir)])
    assert isinstance(counter, ModelTokenizerCounter)
    assert not counter.approximate and counter.free and counter.note is None
    assert counter.name == "tiny tokenizer" and counter.context_limit == 1024
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    for messages in EXAMPLES:
        assert counter.count(messages) == chat.count_tokens(tokenizer, messages)
    # its own vocabulary, not OpenAI's: the counts differ from tiktoken's
    o200k = [count_message_tokens(m, get_encoding(O200K)) for m in EXAMPLES]
    assert [counter.count(m) for m in EXAMPLES] != o200k


def test_the_hub_source_is_used_when_the_folder_is_elsewhere(tiny_model_dir: Path) -> None:
    # the server's folder is on another machine: the source (here a local folder) still loads
    base = BaseModelInfo("tiny2", str(tiny_model_dir), kind="folder", folder="/elsewhere/x")
    counter = counter_for("tiny2", [base])
    assert isinstance(counter, ModelTokenizerCounter)
    assert counter.context_limit == 1024  # the tokenizer's model_max_length


def test_unavailable_tokenizer_falls_back_to_tiktoken_marked_approximate() -> None:
    base = BaseModelInfo("ghost", "/nonexistent/ghost-model", kind="folder",
                         context_length=2048)
    counter = counter_for("ghost", [base])
    assert isinstance(counter, TiktokenCounter)
    assert counter.approximate and counter.free and counter.context_limit == 2048
    assert counter.note is not None and counter.note.startswith("approximate")
    assert "/nonexistent/ghost-model" in counter.note
    for messages in EXAMPLES:
        assert counter.count(messages) == count_message_tokens(messages, get_encoding(O200K))


def test_openai_models_count_with_tiktoken() -> None:
    counter = counter_for("gpt-4.1-mini-2025-04-14", [BaseModelInfo("tiny", "/x")])
    assert isinstance(counter, TiktokenCounter)
    assert counter.name == O200K and not counter.approximate and not counter.free
    assert counter.context_limit == 65_536


def test_route_entries_parse_with_nulls() -> None:
    base = BaseModelInfo.from_json({"id": "q", "source": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
                                    "kind": "hub", "engine": "lora", "device": "cpu",
                                    "context_length": 32768, "tokens_per_second": None,
                                    "folder": None, "extra": 1})
    assert base.tokens_per_second is None and base.folder is None
    assert base.context_length == 32768 and base.device == "cpu"


def test_prepare_counts_the_demo_with_the_base_tokenizer(tiny_model_dir: Path) -> None:
    from tui.core.data.prepare import PrepareOptions, prepare
    from tui.core.paths import demo_dir

    counter = counter_for("tiny", [tiny_base(tiny_model_dir)])
    result = prepare(demo_dir(), PrepareOptions(model="tiny", epochs=2), counter=counter)
    assert result.tokens == [counter.count(m) for m in result.messages]
    budget = result.budget
    assert budget.encoding == "tiny tokenizer" and budget.encoding_note is None
    assert budget.context_limit == 1024 and budget.free
    assert budget.estimated_cost_usd == 0.0 and budget.costs_usd == {}
    # a sqltune server refuses an example over the context (OpenAI truncates it): the demo's
    # schemas are too long for the tiny model's 1,024 tokens, so nothing can be kept
    assert budget.over_context == len(result.tokens) and budget.kept == 0
    assert budget.trained_tokens == 0 and budget.total_tokens == sum(result.tokens)


def test_a_refit_with_the_result_counter_keeps_a_real_base_free(tiny_model_dir: Path) -> None:
    from tui.core.budget.fit import fit_to_budget
    from tui.core.data.prepare import PrepareOptions, prepare
    from tui.core.paths import demo_dir

    counter = counter_for("tiny", [tiny_base(tiny_model_dir)])
    result = prepare(demo_dir(), PrepareOptions(model="tiny", epochs=2), counter=counter)
    assert result.counter is counter
    refit = fit_to_budget(result.tokens, model="tiny", epochs=3, counter=result.counter)
    assert refit.free and refit.context_limit == 1024 and refit.encoding == "tiny tokenizer"
    assert refit.costs_usd == {} and refit.kept == 0


def test_examples_over_a_real_base_context_are_left_out(tiny_model_dir: Path) -> None:
    from tui.core.budget.fit import fit_to_budget

    counter = counter_for("tiny", [tiny_base(tiny_model_dir)])
    tokens, groups = [100, 2000, 300, 1025, 1024], ["a", "a", "b", "b", "b"]
    budget = fit_to_budget(tokens, model="tiny", groups=groups, epochs=1, counter=counter)
    assert budget.kept_indices == (0, 2, 4) and budget.over_context == 2
    assert budget.trained_tokens == 100 + 300 + 1024 and not budget.fits_all
    openai_like = fit_to_budget(tokens, model="gpt-4.1-mini", groups=groups, epochs=1)
    assert openai_like.kept == 5  # OpenAI truncates instead


def test_models_named_directly(tiny_model_dir: Path) -> None:
    from tui.core.budget.counters import base_from_name

    folder = base_from_name(str(tiny_model_dir))
    assert folder is not None and folder.kind == "folder" and folder.folder == str(tiny_model_dir)
    hub = base_from_name("Qwen/Qwen2.5-Coder-0.5B-Instruct")
    assert hub is not None and (hub.kind, hub.source) == ("hub", hub.id)
    gguf = base_from_name("/models/smollm2.Q4_1.gguf")
    assert gguf is not None and gguf.kind == "gguf"
    for openai_name in ("gpt-4.1-mini", "ft:gpt-4o-mini:org::abc", "sqltune-local-base"):
        assert base_from_name(openai_name) is None
    named = base_from_name("tiny", {"tiny": str(tiny_model_dir)})
    assert named is not None and (named.id, named.kind) == ("tiny", "folder")
    assert isinstance(counter_for("tiny", [named]), ModelTokenizerCounter)


def test_an_uncached_hub_tokenizer_offline_fails_fast_and_is_marked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from tui.core.budget.counters import base_from_name

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base = base_from_name("sqltune-tests/not-a-cached-model")
    assert base is not None
    started = time.monotonic()
    counter = counter_for(base.id, [base])
    assert time.monotonic() - started < 10
    assert counter.approximate and counter.note is not None
    assert "sqltune-tests/not-a-cached-model" in counter.note and O200K in counter.note
