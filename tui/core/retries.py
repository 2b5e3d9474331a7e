"""When to retry a provider call, and how long the provider asks to wait first."""

from __future__ import annotations

import email.utils
import time
from typing import Any

__all__ = ["is_transient", "retry_after_seconds"]


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
