"""When to retry a request, and how long to wait first."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from ._errors import ConfigurationError
from .http_retry import retry_after_seconds


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
        self,
        attempt: int,
        headers: Mapping[str, str] | None = None,
        *,
        requested: float | None = None,
    ) -> float | None:
        """Seconds to wait after failed attempt number `attempt` (0 for the first), or
        None when the server asks for longer than `max_retry_after`: give up now.

        The headers' wait (Retry-After) comes first, then `requested`, a wait the
        body named (Hugging Face's `estimated_time` for a loading model), then backoff.
        """
        from_headers = retry_after_seconds(headers) if headers is not None else None
        wait = requested if from_headers is None else from_headers
        if wait is not None:
            return wait if wait <= self.max_retry_after else None
        return self.backoff(attempt)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff after failed attempt `attempt`, with jitter."""
        backoff = min(self.initial_delay * 2.0**attempt, self.max_delay)
        # Up to 25% less, at random: clients that failed together don't retry together.
        return backoff * (1 - 0.25 * random.random())
