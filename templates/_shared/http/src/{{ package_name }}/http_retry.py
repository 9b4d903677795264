"""What an HTTP error response says about retrying: whether to, and how long to wait."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from email.utils import mktime_tz, parsedate_tz

# Timeouts, conflicts, rate limits and server errors may pass; other 4xx never will.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def should_retry(status_code: int, headers: Mapping[str, str]) -> bool:
    """The server's `x-should-retry` (`true` or `false`) decides where it is sent (as
    the official OpenAI and Anthropic SDKs honour it); the status code otherwise."""
    verdict = _lowered(headers).get("x-should-retry", "").strip().lower()
    if verdict in ("true", "false"):
        return verdict == "true"
    return status_code in RETRYABLE_STATUSES or status_code >= 500


def retry_after_seconds(
    headers: Mapping[str, str], now: float | None = None
) -> float | None:
    """The wait a response asks for, in seconds, or None if it names none.

    `retry-after-ms` (OpenAI's) first, then `Retry-After` as seconds or an HTTP date
    (RFC 9110, section 10.2.3). Unreadable or non-finite values count as none.
    """
    lowered = _lowered(headers)
    milliseconds = _finite(lowered.get("retry-after-ms"))
    if milliseconds is not None:
        return max(0.0, milliseconds / 1000)
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _finite(value)
    if seconds is not None:
        return max(0.0, seconds)
    parsed = parsedate_tz(value)  # e.g. "Wed, 21 Oct 2015 07:28:00 GMT"
    if parsed is None:
        return None
    if parsed[9] is None:  # no zone given: HTTP dates are in UTC
        parsed = (*parsed[:9], 0)
    now = time.time() if now is None else now
    return max(0.0, float(mktime_tz(parsed)) - now)


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _finite(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
