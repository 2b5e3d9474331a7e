"""Chat examples to token ids with the base model's own chat template, labels on assistant turns.

The template is rendered to text once per prefix of the conversation: the text between
``render(messages[:i], add_generation_prompt=True)`` and ``render(messages[:i + 1])`` is what
assistant turn ``i`` adds (its content and the end-of-turn token that closes it; trailing
whitespace after that token is left out, as the model stops at the token). This works for any
template, with or without ``{% generation %}`` markers. Each segment of text is tokenized on
its own and the ids concatenated, which is exactly how inference sees a conversation: the
prompt is tokenized up to the generation prompt and the answer's tokens follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tui.server.engines.base import EngineError
from tui.server.engines.usage import message_text

IGNORE_INDEX = -100
"""Label of a token the loss skips (PyTorch's cross-entropy default)."""
TEMPLATE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id")
"""Message fields passed to the chat template (``weight`` and unknown keys are dropped)."""


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


def _clean(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as the template expects them: string content, no sqltune/OpenAI-only keys."""
    out = []
    for message in messages:
        clean = {key: message[key] for key in TEMPLATE_KEYS if key in message}
        clean["content"] = message_text(message)
        out.append(clean)
    return out


def _render(tokenizer: Any, messages: list[dict[str, Any]], *, generation: bool) -> str:
    """The chat template's text for ``messages``; EngineError when the tokenizer has none."""
    if not getattr(tokenizer, "chat_template", None):
        raise EngineError(f"the tokenizer of {getattr(tokenizer, 'name_or_path', 'this model')!r}"
                          " has no chat template; a chat (Instruct) model is required")
    if not messages:
        return ""
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False,
                                             add_generation_prompt=generation)
    except Exception as error:  # jinja raises its own errors (e.g. role order rules)
        raise EngineError(f"the model's chat template cannot render this conversation: "
                          f"{type(error).__name__}: {error}") from None
    if not isinstance(text, str):
        raise EngineError("the chat template did not render text")
    return text


def _ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text``; the template already wrote any BOS/special tokens into it."""
    if not text:
        return []
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _segments(tokenizer: Any, messages: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """The rendered conversation cut into (text, learned) segments, in order."""
    clean = _clean(messages)
    full = _render(tokenizer, clean, generation=False)
    segments: list[tuple[str, bool]] = []
    done = 0  # characters of ``full`` already placed in a segment
    for i, message in enumerate(messages):
        if message.get("role") != "assistant" or message.get("weight", 1) == 0:
            continue
        before = _render(tokenizer, clean[:i], generation=True)
        after = _render(tokenizer, clean[:i + 1], generation=False)
        if not (after.startswith(before) and full.startswith(after)) or len(before) < done:
            # A template that rewrites earlier turns (e.g. drops reasoning): find the content.
            content = clean[i]["content"]
            start = full.find(content, done) if content else -1
            if start < 0:
                raise EngineError(f"cannot locate assistant message {i + 1} in the rendered "
                                  "chat template output")
            before_len, after_len = start, start + len(content)
            eos = getattr(tokenizer, "eos_token", None)
            if eos and full.startswith(eos, after_len):
                after_len += len(eos)
        else:
            before_len, after_len = len(before), len(after)
            while after_len > before_len and full[after_len - 1].isspace():
                after_len -= 1  # the newline after the end-of-turn token is not learned
            if after_len == before_len:
                after_len = len(after)
        segments.append((full[done:before_len], False))
        segments.append((full[before_len:after_len], True))
        done = after_len
    segments.append((full[done:], False))
    return [(text, learned) for text, learned in segments if text]


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
    return _ids(tokenizer, _render(tokenizer, _clean(messages), generation=True))
