"""Chat examples to token ids with the base model's own chat template, labels on assistant turns.

The template is rendered to text once per prefix of the conversation: the text between
``render(messages[:i], add_generation_prompt=True)`` and ``render(messages[:i + 1])`` is what
assistant turn ``i`` adds (its content and the end-of-turn token that closes it; trailing
whitespace after that token is left out, as the model stops at the token). This works for any
template, with or without ``{% generation %}`` markers. Each segment of text is tokenized on
its own and the ids concatenated, which is exactly how inference sees a conversation: the
prompt is tokenized up to the generation prompt and the answer's tokens follow it. The
rendering and cutting is tui.core.budget.counters' (``chat_segments``), so what the app
counts before a job is what training feeds the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tui.core.budget.counters import TemplateError, chat_segments, render_chat, template_messages
from tui.server.engines.base import EngineError

IGNORE_INDEX = -100
"""Label of a token the loss skips (PyTorch's cross-entropy default)."""


@dataclass
class EncodedChat:
    """One chat example as model inputs."""

    input_ids: list[int]
    """Token ids of the whole rendered conversation."""
    labels: list[int]
    """``input_ids`` where an assistant token is learned, ``IGNORE_INDEX`` elsewhere."""

    @property
    def n_trained(self) -> int:
        """How many tokens carry a label."""
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def _require_template(tokenizer: Any) -> None:
    """EngineError when the tokenizer has no chat template (a base, not an Instruct, model)."""
    if not getattr(tokenizer, "chat_template", None):
        raise EngineError(f"the tokenizer of {getattr(tokenizer, 'name_or_path', 'this model')!r}"
                          " has no chat template; a chat (Instruct) model is required")


def _ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text``; the template already wrote any BOS/special tokens into it."""
    if not text:
        return []
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _segments(tokenizer: Any, messages: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """The rendered conversation cut into (text, learned) segments, in order."""
    _require_template(tokenizer)
    try:
        return chat_segments(tokenizer, messages)
    except TemplateError as error:
        raise EngineError(str(error)) from None


def encode_chat(tokenizer: Any, messages: list[dict[str, Any]]) -> EncodedChat:
    """Input ids and labels of one OpenAI chat example (assistant ``weight: 0`` not learned)."""
    input_ids: list[int] = []
    labels: list[int] = []
    for text, learned in _segments(tokenizer, messages):
        ids = _ids(tokenizer, text)
        input_ids.extend(ids)
        labels.extend(ids if learned else [IGNORE_INDEX] * len(ids))
    return EncodedChat(input_ids=input_ids, labels=labels)


def count_tokens(tokenizer: Any, messages: list[dict[str, Any]]) -> int:
    """Tokens of the full rendered example, as training feeds them to the model."""
    return len(encode_chat(tokenizer, messages).input_ids)


def prompt_ids(tokenizer: Any, messages: list[dict[str, Any]]) -> list[int]:
    """The prompt for inference: the conversation rendered with the generation prompt."""
    _require_template(tokenizer)
    try:
        text = render_chat(tokenizer, template_messages(messages), generation=True)
    except TemplateError as error:
        raise EngineError(str(error)) from None
    return _ids(tokenizer, text)
