"""When to retry a request, and how long to wait first."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import mktime_tz, parsedate_tz

from ._errors import ConfigurationError

# Timeouts, conflicts, rate limits and server errors may pass; other 4xx never will.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def is_retryable_status(status_code: int) -> bool:
    return status_code in RETRYABLE_STATUSES or status_code >= 500


def should_retry(status_code: int, headers: Mapping[str, str]) -> bool:
    """Whether an error response may pass on a retry: the server's `x-should-retry`
    (`true` or `false`) decides where it is sent, the status code otherwise."""
    verdict = headers.get("x-should-retry", "").strip().lower()
    if verdict in ("true", "false"):
        return verdict == "true"
    return is_retryable_status(status_code)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, unless the server says how long to wait."""

    initial_delay: float = 0.5
    max_delay: float = 8.0
    # The longest wait a server may ask for (Retry-After); asked for longer, the
    # client gives up at once, as the official SDKs do, instead of sleeping.
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        for name in ("initial_delay", "max_delay", "max_retry_after"):
            value = getattr(self, name)
            if not 0 <= value < math.inf:
                raise ConfigurationError(
                    f"RetryPolicy({name}={value!r}): expected seconds, 0 or more"
                )

    def delay(
        self, attempt: int, headers: Mapping[str, str] | None = None
    ) -> float | None:
        """Seconds to wait after failed attempt number `attempt` (0 for the first), or
        None when the server asks for longer than `max_retry_after`: give up now."""
        requested = retry_after_seconds(headers) if headers is not None else None
        if requested is not None:
            return requested if requested <= self.max_retry_after else None
        return self.backoff(attempt)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff after failed attempt `attempt`, with jitter."""
        backoff = min(self.initial_delay * 2.0**attempt, self.max_delay)
        # Up to 25% less, at random: clients that failed together don't retry together.
        return backoff * (1 - 0.25 * random.random())


def retry_after_seconds(
    headers: Mapping[str, str], now: float | None = None
) -> float | None:
    """The wait a response asks for, from `retry-after-ms` or `Retry-After`, if any."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            seconds = float(milliseconds) / 1000
        except ValueError:
            pass
        else:
            if math.isfinite(seconds):
                return max(0.0, seconds)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    parsed = parsedate_tz(value)  # an HTTP date, e.g. "Wed, 21 Oct 2015 07:28:00 GMT"
    if parsed is None:
        return None
    if parsed[9] is None:  # no zone given: HTTP dates are in UTC
        parsed = (*parsed[:9], 0)
    now = time.time() if now is None else now
    return max(0.0, float(mktime_tz(parsed)) - now)
