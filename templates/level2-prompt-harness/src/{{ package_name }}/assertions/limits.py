"""Assertions on what a call cost: time, tokens, money."""

from __future__ import annotations

from typing import Any

from .base import (
    Assertion,
    CheckError,
    GradeContext,
    ParseContext,
    Prepared,
    Skip,
    Verdict,
    assertion_type,
    limit_value,
    need,
)


@assertion_type("latency", prepare=limit_value)
def latency(assertion: Assertion, context: GradeContext) -> Verdict:
    """The call took at most `value` milliseconds."""
    measured = context.completion.latency_ms
    return measured <= assertion.value, f"{measured:g} ms (limit {assertion.value:g})"


def _token_limit(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value = raw.get("value")
    need(
        isinstance(value, int) and not isinstance(value, bool) and value > 0,
        raw,
        "a positive integer",
    )
    return value, {}


@assertion_type("tokens", prepare=_token_limit)
def tokens(assertion: Assertion, context: GradeContext) -> Verdict:
    """Prompt and completion tokens together are at most `value`."""
    measured = context.completion.total_tokens
    if measured is None:
        raise CheckError("the provider reported no token usage to measure")
    return measured <= assertion.value, f"{measured} tokens (limit {assertion.value})"


@assertion_type("cost", prepare=limit_value)
def cost(assertion: Assertion, context: GradeContext) -> Verdict:
    """The call cost at most `value` US dollars; skipped for a provider without
    prices."""
    profile, completion = context.profile, context.completion
    if profile.cost_usd(0, 0) is None:
        raise Skip(f"provider '{profile.name}' sets no price_per_million_tokens")
    measured = profile.cost_usd(completion.prompt_tokens, completion.completion_tokens)
    if measured is None:
        raise CheckError("the provider reported no token usage to price")
    return measured <= assertion.value, f"{measured:g} USD (limit {assertion.value:g})"
