"""The model's own chat template: ids, labels on assistant tokens only, prompts for inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tui.server.engines.base import EngineError
from tui.server.engines.lora.chat import IGNORE_INDEX, count_tokens, encode_chat, prompt_ids

SYSTEM = {"role": "system", "content": "CREATE TABLE singer (id INTEGER, name TEXT);"}
USER = {"role": "user", "content": "What is the name of singer 3?"}
ANSWER = "SELECT name FROM singer WHERE id = 3"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def learned_text(tokenizer: Any, messages: list[dict[str, Any]]) -> str:
    encoded = encode_chat(tokenizer, messages)
    return tokenizer.decode([label for label in encoded.labels if label != IGNORE_INDEX])


def test_labels_cover_the_answer_and_its_end_of_turn_token_only(tokenizer: Any) -> None:
    messages = [SYSTEM, USER, {"role": "assistant", "content": ANSWER}]
    encoded = encode_chat(tokenizer, messages)
    assert len(encoded.input_ids) == len(encoded.labels)
    assert learned_text(tokenizer, messages) == ANSWER + "<|im_end|>"
    # the ids are the template's own rendering, token for token
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    assert tokenizer.decode(encoded.input_ids) == rendered
    assert count_tokens(tokenizer, messages) == len(encoded.input_ids)
    # the prompt tokens are masked and are exactly what inference feeds the model
    prompt = prompt_ids(tokenizer, [SYSTEM, USER])
    assert encoded.input_ids[:len(prompt)] == prompt
    assert set(encoded.labels[:len(prompt)]) == {IGNORE_INDEX}
    assert encoded.labels[len(prompt)] == encoded.input_ids[len(prompt)]
    assert tokenizer.decode(prompt).endswith("<|im_start|>assistant\n")


def test_transformers_apply_chat_template_tokenized_agrees_on_the_prompt(tokenizer: Any) -> None:
    out = tokenizer.apply_chat_template([SYSTEM, USER], tokenize=True, add_generation_prompt=True)
    ids = out["input_ids"] if not isinstance(out, list) else out  # transformers 5: BatchEncoding
    assert list(ids) == prompt_ids(tokenizer, [SYSTEM, USER])


def test_weight_zero_assistant_turns_are_context_not_targets(tokenizer: Any) -> None:
    messages = [SYSTEM, USER,
                {"role": "assistant", "content": "SELECT * FROM singer", "weight": 0},
                {"role": "user", "content": "Only the name, please."},
                {"role": "assistant", "content": ANSWER, "weight": 1}]
    assert learned_text(tokenizer, messages) == ANSWER + "<|im_end|>"
    encoded = encode_chat(tokenizer, messages)
    assert "SELECT * FROM singer" in tokenizer.decode(encoded.input_ids)
    # without weights both answers are learned
    unweighted = [{k: v for k, v in m.items() if k != "weight"} for m in messages]
    assert learned_text(tokenizer, unweighted) == \
        "SELECT * FROM singer<|im_end|>" + ANSWER + "<|im_end|>"
    assert encode_chat(tokenizer, unweighted).n_trained > encoded.n_trained


def test_a_template_without_trailing_newline_and_with_a_bos(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = (  # Llama-3-like: a BOS, no newline after the end-of-turn token
        "<|endoftext|>{% for m in messages %}<|im_start|>{{ m['role'] }}\n\n"
        "{{ m['content'] | trim }}<|im_end|>{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n\n{% endif %}")
    messages = [USER, {"role": "assistant", "content": ANSWER}]
    assert learned_text(tokenizer, messages) == ANSWER + "<|im_end|>"
    assert encode_chat(tokenizer, messages).input_ids[0] == \
        tokenizer.convert_tokens_to_ids("<|endoftext|>")


def test_content_parts_and_no_template(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    parts = {"role": "assistant", "content": [{"type": "text", "text": ANSWER}]}
    assert learned_text(tokenizer, [USER, parts]) == ANSWER + "<|im_end|>"
    tokenizer.chat_template = None
    with pytest.raises(EngineError, match="no chat template"):
        count_tokens(tokenizer, [USER])
