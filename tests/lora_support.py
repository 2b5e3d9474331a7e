"""A tiny open-weight chat model built inside the tests: random weights, its own tokenizer.

The real engine's fast tests train and serve this model instead of downloading one: a few
Llama layers (any ``AutoModelForCausalLM`` loads it) and a byte-level BPE tokenizer trained
here on the demo data, with a ChatML chat template like Qwen's and SmolLM2's. It is saved as a
plain Hugging Face folder (config.json, model.safetensors, tokenizer.json, ...), exactly what
``sqltune server --base-model NAME=FOLDER`` takes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from tui.core.paths import demo_dir

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""ChatML, as SmolLM2-Instruct and Qwen2.5-Instruct render chats."""
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _corpus() -> Iterator[str]:
    """Text the tokenizer learns from: the demo questions, SQL and schema words."""
    folder = demo_dir()
    for name in ("train.json",):
        for entry in json.loads((folder / name).read_text(encoding="utf-8")):
            yield entry["question"]
            yield entry["query"]
    yield (folder / "tables.json").read_text(encoding="utf-8")
    yield "CREATE TABLE PRIMARY KEY FOREIGN KEY REFERENCES INTEGER TEXT REAL system user assistant"


def build_tiny_model(folder: Path, *, vocab_size: int = 512, hidden: int = 64,
                     layers: int = 2, seed: int = 0) -> Path:
    """Write a randomly initialised tiny Llama chat model and its tokenizer into ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        bos_token=None, unk_token=None, model_max_length=1024)
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(folder)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=1024, tie_word_embeddings=True,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"), bos_token_id=None)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    model.save_pretrained(folder)
    return folder
