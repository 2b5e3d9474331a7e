"""Provider call failures: which to retry, how long the provider asks to wait, what to say."""

from __future__ import annotations

import email.utils
import time
from typing import Any

from tui.core.provider.providers import redact

__all__ = ["describe_error", "is_transient", "retry_after_seconds"]


def retry_after_seconds(headers: Any, now: float | None = None) -> float | None:
    """Seconds asked for by retry-after-ms / retry-after (number or HTTP date), or None."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            if name == "retry-after":
                parsed = email.utils.parsedate_tz(value)
                if parsed is not None:
                    wall = time.time() if now is None else now
                    return max(0.0, email.utils.mktime_tz(parsed) - wall)
    return None


def is_transient(error: BaseException) -> bool:
    """Dropped connections, timeouts, 408/409/429 and 5xx are worth retrying."""
    import openai  # lazily: the SDK is slow to import
    if isinstance(error, openai.APIConnectionError):
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in (408, 409, 429) or error.status_code >= 500
    return False


def describe_error(error: BaseException, *, subject: str | None = None) -> str:
    """A short, key-free description of a failed provider call, in the provider's own words.

    ``subject`` names what a 404 was about (``job ftjob-1`` -> "job ftjob-1 was not found on
    this provider"); without it a 404 reads like any other status.
    """
    import openai  # lazily: the SDK is slow to import
    if isinstance(error, openai.APIStatusError):
        body = error.body if isinstance(error.body, dict) else {}
        detail = body.get("message")  # the provider's words, without the SDK's "Error code: ..."
        if error.status_code == 404 and subject:
            text = f"{subject} was not found on this provider"
        elif error.status_code in (401, 403):
            text = f"the provider refused the API key (HTTP {error.status_code})"
        else:
            said = detail if isinstance(detail, str) else error.message
            text = f"HTTP {error.status_code}: {said}"
    elif isinstance(error, openai.APITimeoutError):
        text = "the request timed out"
    elif isinstance(error, openai.APIConnectionError):
        text = "could not reach the provider (connection failed)"
    else:
        text = f"{type(error).__name__}: {error}"
    return redact(text)
