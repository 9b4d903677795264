"""The one retry policy: whether an HTTP error may pass, and how long to wait first.

A response that names a wait (`retry-after-ms`, `Retry-After`) gets that wait; one
that asks for longer than `RetryPolicy.max_wait_s` is not retried at all, since waiting
less than asked only earns another refusal: the caller's error names the wait instead.
Without a named wait, the delay doubles from `backoff_s` with jitter, up to the cap.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import mktime_tz, parsedate_tz

from .errors import ConfigError

# Timeouts, conflicts, rate limits and server errors may pass; other 4xx never will.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How often to retry and how long to wait: every HTTP call of the package."""

    max_retries: int = 2  # as the official OpenAI and Anthropic SDKs
    backoff_s: float = 0.5  # the first wait; it doubles on each retry, with jitter
    max_wait_s: float = 60.0  # the longest wait, whether backoff or a server's ask

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not (
            isinstance(self.max_retries, int) and self.max_retries >= 0
        ):
            raise ConfigError(
                f"max_retries: must be a whole number, 0 or more, got"
                f" {self.max_retries!r}"
            )
        for name in ("backoff_s", "max_wait_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (
                isinstance(value, int | float) and 0 <= value < math.inf
            ):
                raise ConfigError(
                    f"{name}: must be a finite number of seconds, 0 or more, got"
                    f" {value!r}"
                )

    def delay(
        self,
        attempt: int,
        headers: Mapping[str, str] | None = None,
        *,
        requested: float | None = None,
    ) -> float | None:
        """Seconds to wait after failed attempt `attempt` (0 for the first), or None
        when the server asks for longer than `max_wait_s`: give up now.

        The headers' wait comes first, then `requested` (a wait the body named, such as
        Hugging Face's `estimated_time` for a loading model), then backoff.
        """
        asked = retry_after_seconds(headers) if headers is not None else None
        if asked is None:
            asked = requested
        if asked is not None:
            return asked if asked <= self.max_wait_s else None
        return self.backoff(attempt)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff after failed attempt `attempt`, with jitter."""
        backoff = min(self.backoff_s * 2.0**attempt, self.max_wait_s)
        # Up to a quarter less, at random: clients that failed together spread out.
        return backoff * (1 - 0.25 * random.random())


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
    (RFC 9110, section 10.2.3). Unreadable, negative or non-finite values count as
    none, so a server that sends `-1` gets the backoff, not a volley of retries.
    """
    lowered = _lowered(headers)
    milliseconds = _wait(lowered.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    value = lowered.get("retry-after")
    if value is None:
        return None
    if _number(value) is not None:
        return _wait(value)
    parsed = parsedate_tz(value)  # e.g. "Wed, 21 Oct 2015 07:28:00 GMT"
    if parsed is None:
        return None
    if parsed[9] is None:  # no zone given: HTTP dates are in UTC
        parsed = (*parsed[:9], 0)
    now = time.time() if now is None else now
    return max(0.0, float(mktime_tz(parsed)) - now)


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _number(text: str | None) -> float | None:
    # Digits and a decimal point only: float() would also take "1_0", "nan" or "1e3".
    if text is None or not _DECIMAL.fullmatch(text.strip()):
        return None
    return float(text)


_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _wait(text: str | None) -> float | None:
    value = _number(text)
    return value if value is not None and 0 <= value < math.inf else None
