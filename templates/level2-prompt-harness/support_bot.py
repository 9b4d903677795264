"""An example of your own application under test (provider `type: python`).

A real one would call your RAG pipeline or agent. This one is a few rules, so the
bundled suite runs offline: it looks orders up with a tool, and answers the rest.
"""

from __future__ import annotations

import re
from typing import Any

ORDER = re.compile(r"\b(\d{2}-\d{4})\b")


def answer(messages: list[dict[str, str]], context: dict[str, Any]) -> dict[str, Any]:
    question = messages[-1]["content"]
    order = ORDER.search(question)
    if order and any(t["function"]["name"] == "lookup_order" for t in context["tools"]):
        return {
            "output": "",
            "tool_calls": [
                {"name": "lookup_order", "arguments": {"order_id": order.group(1)}}
            ],
        }
    if "refund" in question.lower():
        return {
            "output": "Refunds go back to the original card within 5 business days."
        }
    return {"output": "I can help with orders and refunds. What is your order number?"}
