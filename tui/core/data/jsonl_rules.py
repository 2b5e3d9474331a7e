"""The per-line rules of OpenAI's supervised fine-tuning format, as stable issue codes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

MIN_EXAMPLES = 10
"""OpenAI rejects training files with fewer examples."""

EXAMPLE_KEYS = frozenset({"messages", "tools", "functions", "parallel_tool_calls"})
"""Keys allowed on an example (a JSONL line) of the chat format."""

MESSAGE_KEYS = frozenset({"role", "content", "name", "weight", "function_call", "tool_calls",
                          "tool_call_id", "refusal"})
"""Keys allowed on a message."""

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
"""Roles of the chat format."""

ISSUE_CODES: dict[str, str] = {
    "invalid_utf8": "error: the line is not valid UTF-8",
    "blank_line": "error: an empty or whitespace-only line",
    "invalid_json": "error: the line is not valid JSON (NaN and Infinity included)",
    "not_an_object": "error: the line is JSON but not an object",
    "unknown_key": "error: a key the chat format does not know (example or message)",
    "invalid_type": "error: tools/functions/tool_calls not arrays, role or name not strings, ...",
    "missing_messages": "error: no 'messages' key",
    "messages_not_list": "error: 'messages' is not an array",
    "empty_messages": "error: 'messages' is an empty array",
    "message_not_object": "error: a message is not an object",
    "missing_role": "error: a message without 'role'",
    "unknown_role": "error: a role other than system, developer, user, assistant, tool, function",
    "missing_content": "error: a message without 'content' (assistant tool calls excepted)",
    "invalid_content": "error: content of the wrong type (null, number, object, bad parts)",
    "invalid_weight": "error: weight other than 0 or 1, or on a non-assistant message",
    "no_assistant_message": "error: nothing to learn from: no assistant message",
    "too_few_examples": "error (line 0): fewer examples than the provider's minimum of 10",
    "over_context": "warning: longer than the model's per-example context; would be truncated",
    "no_trained_messages": "warning: every assistant message has weight 0",
    "empty_content": "warning: an assistant message with empty content",
    "byte_order_mark": "warning: the file starts with a UTF-8 byte order mark",
}
"""Every issue code, with its severity and meaning (codes are stable: tools match on them)."""

_PART_TYPES = {
    "system": frozenset({"text"}), "developer": frozenset({"text"}),
    "user": frozenset({"text", "image_url"}), "assistant": frozenset({"text"}),
    "tool": frozenset({"text"}), "function": frozenset({"text"}),
}
_FIELD_MESSAGE = re.compile(r"messages\[(\d+)\]")


@dataclass(frozen=True)
class Issue:
    """One problem of a JSONL file."""

    line: int
    """1-based line number (0 for the file as a whole)."""
    code: str
    """Stable snake_case code (e.g. ``unknown_role``)."""
    message: str
    """Human-readable explanation."""
    field: str | None = None
    """Path of the offending field, e.g. ``messages[2].role`` (None for the whole line)."""
    severity: str = "error"
    """``error`` (the provider rejects the file) or ``warning``."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"line": self.line, "code": self.code, "message": self.message,
                "field": self.field}


def openai_error_message(issue: Issue) -> str:
    """The issue worded as the provider words it: ``Invalid file format. Example 3, message 2:
    ...`` (examples and messages counted from 1)."""
    if issue.code == "too_few_examples":
        return issue.message
    match = _FIELD_MESSAGE.match(issue.field or "")
    where = f"Example {issue.line}" if issue.line else "File"
    if match:
        where += f", message {int(match.group(1)) + 1}"
    text = issue.message[:1].upper() + issue.message[1:]
    return f"Invalid file format. {where}: {text}"


@dataclass
class ExampleTokens:
    """Running token totals over the valid examples."""

    total: int = 0
    """Sum of tokens of the counted examples."""
    max_tokens: int = 0
    """Tokens of the longest counted example."""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            int: "number", float: "number"}.get(type(value), type(value).__name__)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def check_example(number: int, line: bytes, token_check: Callable[..., int] | None,
                  context: int | None, totals: ExampleTokens) -> Iterator[Issue]:
    """Every issue of one line (without its line terminator)."""
    if not line.strip():
        yield Issue(number, "blank_line", "blank line; every line must hold one example")
        return
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        yield Issue(number, "invalid_utf8",
                    f"not valid UTF-8 (byte {error.start + 1} of the line)")
        return
    try:
        example = json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        yield Issue(number, "invalid_json", f"not valid JSON: {error}")
        return
    if not isinstance(example, dict):
        yield Issue(number, "not_an_object", f"each line must be a JSON object, got "
                    f"{_kind(example)}")
        return
    errors = list(_check_object(number, example))
    yield from errors
    if errors:
        return
    if token_check is not None:
        try:
            tokens = token_check(example["messages"])
        except Exception:  # an exotic but valid example must not abort validation
            return
        totals.total += tokens
        totals.max_tokens = max(totals.max_tokens, tokens)
        if context is not None and tokens > context:
            yield Issue(number, "over_context",
                        f"example has {tokens:,} tokens, over the model's per-example context "
                        f"of {context:,}; it would be truncated", "messages", "warning")


def _check_object(number: int, example: dict[str, Any]) -> Iterator[Issue]:
    for key in example:
        if key not in EXAMPLE_KEYS:
            yield Issue(number, "unknown_key", f"unrecognized key {key!r} on the example", key)
    if "tools" in example and not isinstance(example["tools"], list):
        yield Issue(number, "invalid_type", "tools must be an array", "tools")
    if "functions" in example and not isinstance(example["functions"], list):
        yield Issue(number, "invalid_type", "functions must be an array", "functions")
    if "parallel_tool_calls" in example and not isinstance(example["parallel_tool_calls"], bool):
        yield Issue(number, "invalid_type", "parallel_tool_calls must be a boolean",
                    "parallel_tool_calls")
    if "messages" not in example:
        yield Issue(number, "missing_messages", "missing required key 'messages'", "messages")
        return
    messages = example["messages"]
    if not isinstance(messages, list):
        yield Issue(number, "messages_not_list",
                    f"'messages' must be an array, got {_kind(messages)}", "messages")
        return
    if not messages:
        yield Issue(number, "empty_messages", "'messages' is empty", "messages")
        return
    assistants = 0
    weighted = 0
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            yield Issue(number, "message_not_object",
                        f"each message must be an object, got {_kind(message)}", where)
            continue
        yield from _check_message(number, where, message)
        if message.get("role") == "assistant":
            assistants += 1
            if message.get("weight", 1) != 0:
                weighted += 1
    if assistants == 0:
        yield Issue(number, "no_assistant_message",
                    "example has no assistant message to learn from", "messages")
    elif weighted == 0:
        yield Issue(number, "no_trained_messages", "every assistant message has weight 0; "
                    "this example trains nothing", "messages", "warning")


def _check_message(number: int, where: str, message: dict[str, Any]) -> Iterator[Issue]:
    for key in message:
        if key not in MESSAGE_KEYS:
            yield Issue(number, "unknown_key", f"unrecognized key {key!r} on a message",
                        f"{where}.{key}")
    role = message.get("role")
    if "role" not in message:
        yield Issue(number, "missing_role", "message is missing 'role'", f"{where}.role")
    elif not isinstance(role, str):
        yield Issue(number, "invalid_type", f"role must be a string, got {_kind(role)}",
                    f"{where}.role")
        role = None
    elif role not in ROLES:
        yield Issue(number, "unknown_role", f"unrecognized role {role!r} (expected one of "
                    f"{', '.join(sorted(ROLES))})", f"{where}.role")
        role = None
    calls = message.get("tool_calls") or message.get("function_call")
    if "content" not in message:
        if not (role == "assistant" and calls):
            yield Issue(number, "missing_content", "message is missing 'content'",
                        f"{where}.content")
    elif role is not None:
        yield from _check_content(number, where, role, message["content"], bool(calls))
    if "name" in message and not isinstance(message["name"], str):
        yield Issue(number, "invalid_type", "name must be a string", f"{where}.name")
    if "weight" in message:
        weight = message["weight"]
        if role is not None and role != "assistant":
            yield Issue(number, "invalid_weight", "weight is only allowed on assistant messages",
                        f"{where}.weight")
        elif isinstance(weight, bool) or weight not in (0, 1):
            yield Issue(number, "invalid_weight", f"weight must be 0 or 1, got {weight!r}",
                        f"{where}.weight")
    if "tool_calls" in message and not isinstance(message["tool_calls"], list):
        yield Issue(number, "invalid_type", "tool_calls must be an array", f"{where}.tool_calls")


def _check_content(number: int, where: str, role: str, content: Any,
                   has_calls: bool) -> Iterator[Issue]:
    path = f"{where}.content"
    if content is None:
        if not (role == "assistant" and has_calls):
            yield Issue(number, "invalid_content", "content is null", path)
        return
    if isinstance(content, str):
        if not content.strip() and role == "assistant":
            yield Issue(number, "empty_content", "assistant content is empty", path, "warning")
        return
    if not isinstance(content, list):
        yield Issue(number, "invalid_content",
                    f"content must be a string or an array of parts, got {_kind(content)}", path)
        return
    allowed = _PART_TYPES.get(role, frozenset({"text"}))
    for index, part in enumerate(content):
        part_path = f"{path}[{index}]"
        if not isinstance(part, dict):
            yield Issue(number, "invalid_content", "content part must be an object", part_path)
        elif part.get("type") not in allowed:
            yield Issue(number, "invalid_content", f"content part type {part.get('type')!r} is "
                        f"not allowed for role {role!r}", f"{part_path}.type")
        elif part["type"] == "text" and not isinstance(part.get("text"), str):
            yield Issue(number, "invalid_content", "text part needs a string 'text'",
                        f"{part_path}.text")

