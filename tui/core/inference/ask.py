"""Ask a chat model for SQL: one call, the SQL pulled out of its reply, latency, tokens, cost."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tui.core.budget.pricing import inference_cost
from tui.core.provider.retries import describe_error

if TYPE_CHECKING:  # the SDK costs ~0.5 s to import: not before the app's first frame
    import openai

DEFAULT_MAX_TOKENS = 512

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_SQL_START = re.compile(r"(?<![\w.])(SELECT|WITH|VALUES)\b", re.IGNORECASE)
_CONTINUES_SQL = re.compile(
    r"(SELECT|FROM|WHERE|GROUP|ORDER|HAVING|LIMIT|JOIN|INNER|LEFT|RIGHT|CROSS|NATURAL|ON|AND|OR|"
    r"UNION|INTERSECT|EXCEPT|WITH|AS|OFFSET|CASE|WHEN|THEN|ELSE|END|\(|\))\b",
    re.IGNORECASE,
)


class InferenceError(Exception):
    """A model call that failed; `kind` is rate_limited, quota, auth, not_found, bad_request,
    timeout, connection, server or empty. `fatal` errors will fail every call alike."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message

    @property
    def fatal(self) -> bool:
        """True when retrying other questions is pointless (bad key, unknown model...)."""
        return self.kind in ("auth", "not_found", "permission", "quota")


@dataclass(frozen=True)
class Answer:
    """One model reply and what it cost."""

    sql: str
    """The SQL found in the reply (extract_sql)."""
    raw_text: str
    """The reply as the model wrote it."""
    latency_s: float
    """Seconds for the call, the SDK's retries and their waits included."""
    prompt_tokens: int
    """Input tokens the provider billed."""
    completion_tokens: int
    """Output tokens the provider billed."""
    cost_usd: float | None
    """Dollars from the pricing table; None when the model is not priced."""
    model: str = ""
    """The model that answered, as the provider names it."""
    finish_reason: str | None = None
    """stop, length, ... as reported."""


def _split_first_statement(text: str) -> str:
    """Text up to the first ';' outside quotes and comments."""
    quote: str | None = None
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"`":
            quote = char
        elif char == "[":
            quote = "]"
        elif text.startswith("--", index):
            end = text.find("\n", index)
            index = len(text) if end < 0 else end
            continue
        elif char == ";":
            return text[:index]
        index += 1
    return text


def extract_sql(text: str) -> str:
    """The SQL in a model reply: a ```sql fence, else text from the first SELECT/WITH,
    without leading prose, trailing explanation, trailing semicolons or a second statement."""
    text = _THINKING.sub("", text or "").strip()
    fences = _FENCE.findall(text)
    if fences:
        sql_fences = [body for language, body in fences if language.lower() in ("sql", "sqlite")]
        text = (sql_fences or [body for _, body in fences])[0].strip()
    if text.startswith("`") and text.endswith("`"):
        text = text.strip("`").strip()
    start = _SQL_START.search(text)
    if start is not None:
        text = text[start.start():]
    text = _split_first_statement(text)
    # Prose after a blank line ("This query ...") is not SQL; a clause keyword would be.
    paragraphs = re.split(r"\n[ \t]*\n", text)
    kept = [paragraphs[0]]
    for paragraph in paragraphs[1:]:
        if not _CONTINUES_SQL.match(paragraph.lstrip()):
            break
        kept.append(paragraph)
    return "\n".join(kept).strip().rstrip(";").strip()


def _as_inference_error(error: openai.OpenAIError) -> InferenceError:
    import openai

    kinds: list[tuple[type[Exception], str]] = [
        (openai.RateLimitError, "rate_limited"), (openai.AuthenticationError, "auth"),
        (openai.PermissionDeniedError, "permission"), (openai.NotFoundError, "not_found"),
        (openai.BadRequestError, "bad_request"), (openai.APITimeoutError, "timeout"),
        (openai.APIConnectionError, "connection"), (openai.APIStatusError, "server"),
    ]
    kind = next((name for cls, name in kinds if isinstance(error, cls)), "server")
    if kind == "rate_limited" and getattr(error, "code", None) == "insufficient_quota":
        kind = "quota"  # OpenAI's 429 for an exhausted quota or billing limit: waiting cannot help
    return InferenceError(kind, describe_error(error))


async def ask_for_sql(
    client: openai.AsyncOpenAI,
    model: str,
    messages: Sequence[dict[str, str]],
    *,
    temperature: float | None = 0.0,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> Answer:
    """One chat completion; raises InferenceError.

    Transient failures (429, 5xx, dropped connections) are retried by the SDK alone, as the
    client's ``max_retries`` says, with its backoff and the provider's retry-after."""
    import openai

    options: dict[str, Any] = {"max_completion_tokens": max_tokens}
    if temperature is not None:
        options["temperature"] = temperature
    while True:
        started = time.perf_counter()
        try:
            response = await client.chat.completions.create(
                model=model, messages=list(messages), **options)  # type: ignore[arg-type]
            break
        except openai.BadRequestError as error:
            # Older OpenAI-compatible servers only know max_tokens.
            if "max_completion_tokens" in str(error) and "max_tokens" not in options:
                options["max_tokens"] = options.pop("max_completion_tokens")
                continue
            raise _as_inference_error(error) from None
        except openai.OpenAIError as error:
            raise _as_inference_error(error) from None
    latency = time.perf_counter() - started
    if not response.choices:
        raise InferenceError("empty", "the reply had no choices")
    choice = response.choices[0]
    text = choice.message.content or ""
    usage = response.usage
    prompt_tokens = usage.prompt_tokens if usage else 0
    completion_tokens = usage.completion_tokens if usage else 0
    return Answer(
        sql=extract_sql(text), raw_text=text, latency_s=latency,
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
        cost_usd=inference_cost(model, prompt_tokens, completion_tokens),
        model=response.model or model, finish_reason=choice.finish_reason,
    )
