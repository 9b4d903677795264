"""When to retry a request, and how long to wait first."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import mktime_tz, parsedate_tz

# Timeouts, conflicts, rate limits and server errors may pass; other 4xx never will.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def is_retryable_status(status_code: int) -> bool:
    return status_code in RETRYABLE_STATUSES or status_code >= 500


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, unless the server says how long to wait."""

    initial_delay: float = 0.5
    max_delay: float = 8.0
    # The longest Retry-After this client will wait; longer requests are cut to this.
    max_retry_after: float = 60.0

    def delay(self, attempt: int, headers: Mapping[str, str] | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (0 for the first)."""
        requested = retry_after_seconds(headers) if headers is not None else None
        if requested is not None:
            return min(requested, self.max_retry_after)
        backoff = min(self.initial_delay * 2**attempt, self.max_delay)
        # Up to 25% less, at random: clients that failed together don't retry together.
        return backoff * (1 - 0.25 * random.random())


def retry_after_seconds(
    headers: Mapping[str, str], now: float | None = None
) -> float | None:
    """The wait a response asks for, from `retry-after-ms` or `Retry-After`, if any."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = parsedate_tz(value)  # an HTTP date, e.g. "Wed, 21 Oct 2015 07:28:00 GMT"
    if parsed is None:
        return None
    if parsed[9] is None:  # no zone given: HTTP dates are in UTC
        parsed = (*parsed[:9], 0)
    now = time.time() if now is None else now
    return max(0.0, mktime_tz(parsed) - now)
