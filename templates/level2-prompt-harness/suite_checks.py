"""Python assertions for the suites: `type: python`, `value: suite_checks:<function>`.

Each function gets the response text and a context dict (vars, args, case, provider,
messages) and returns a bool, or (bool, reason) to say why in the reports.
"""

from __future__ import annotations

import json
from typing import Any


def ticket_fields_match(output: str, context: dict[str, Any]) -> tuple[bool, str]:
    """The ticket's fields equal the case's `expected` variable (others unchecked)."""
    try:
        ticket = json.loads(output)
    except ValueError:
        return False, "the response is not JSON"
    if not isinstance(ticket, dict):
        return False, "the response is not a JSON object"
    expected = context["vars"]["expected"]
    wrong = {
        field: ticket.get(field)
        for field, value in expected.items()
        if str(ticket.get(field)).casefold() != str(value).casefold()
    }
    if wrong:
        details = ", ".join(
            f"{field}={got!r} (want {expected[field]!r})"
            for field, got in wrong.items()
        )
        return False, f"wrong fields: {details}"
    return True, f"{len(expected)} fields as expected"


def summary_word_limit(output: str, context: dict[str, Any]) -> tuple[bool, str]:
    """The summary stays within args.max_words words."""
    limit = int(context["args"].get("max_words", 25))
    try:
        summary = json.loads(output).get("summary", "")
    except (ValueError, AttributeError):
        return False, "no summary to count"
    words = len(str(summary).split())
    return words <= limit, f"summary has {words} words (limit {limit})"
