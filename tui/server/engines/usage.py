"""Token accounting shared by the engines' chat models: o200k_base counts and max_tokens cuts."""

from __future__ import annotations

from typing import Any

import tiktoken

from tui.core.budget.tokens import O200K, content_text, count_message_tokens, get_encoding
from tui.server.engines.base import Completion


def encoding() -> tiktoken.Encoding:
    """The tokenizer every local engine counts and learns with (o200k_base, offline)."""
    return get_encoding(O200K)


def make_completion(messages: list[dict[str, Any]], text: str,
                    max_tokens: int | None) -> Completion:
    """A Completion for ``text`` with OpenAI-style usage, cut to ``max_tokens`` when given."""
    enc = encoding()
    ids = enc.encode_ordinary(text)
    finish = "stop"
    if max_tokens is not None and len(ids) > max(0, max_tokens):
        ids = ids[: max(0, max_tokens)]
        text = enc.decode(ids)
        finish = "length"
    return Completion(text=text, prompt_tokens=count_message_tokens(messages, enc),
                      completion_tokens=len(ids), finish_reason=finish)


def message_text(message: dict[str, Any]) -> str:
    """A message's text content (string content, or the text parts of a content list)."""
    return content_text(message.get("content"))
