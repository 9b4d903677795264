"""The model-graded assertion: a judge model scores the reply against a rubric."""

from __future__ import annotations

import re
from typing import Any

from .. import jsonvalue
from ..providers.base import ChatRequest
from .base import (
    Assertion,
    CheckError,
    GradeContext,
    ParseContext,
    Prepared,
    Verdict,
    assertion_type,
    is_number,
    need,
    short,
    threshold_value,
)

JUDGE_SYSTEM = (
    "You grade a response written by another model against a rubric. "
    "Be strict and literal.\n"
    'Answer with only a JSON object, no other text: {"score": <number from 0 to 1>, '
    '"reason": "<one sentence>"}. 1 means the rubric is fully met, 0 not at all.'
)


class JudgeReplyError(CheckError):
    """The judge answered, but not in the required form."""


def _judge(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value = raw.get("value")
    need(isinstance(value, str) and value.strip() != "", raw, "the rubric, as text")
    if "threshold" not in raw:
        raise ValueError("'threshold' is required: a number from 0 to 1")
    threshold = threshold_value(raw, None)
    judge = context.judge_provider
    if not context.judge_forced:
        judge = raw.get("provider", judge)
    if judge is None:
        raise ValueError(
            "no judge: set 'judge' in the suite, 'provider' here,"
            " or judge_provider in harness.yaml"
        )
    if judge not in context.providers:
        raise ValueError(f"judge provider {judge!r} is not in harness.yaml")
    return value, {"threshold": threshold, "provider": judge}


def parse_judge_reply(text: str) -> tuple[float, str]:
    """The judge must answer {"score": 0..1, "reason": "..."}; all else is an error."""
    body = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, flags=re.DOTALL)
    if fenced:
        body = fenced.group(1)
    try:
        data = jsonvalue.loads(body)
    except ValueError:
        raise JudgeReplyError(f"judge reply is not JSON: {short(text)}") from None
    if (
        not isinstance(data, dict)
        or not is_number(data.get("score"))
        or not isinstance(data.get("reason"), str)
    ):
        raise JudgeReplyError(
            f'judge reply lacks a numeric "score" and a text "reason": {short(text)}'
        )
    score = float(data["score"])
    if not 0 <= score <= 1:
        raise JudgeReplyError(f"judge score {score} is outside 0..1")
    return score, data["reason"]


def judge_request(
    rubric: str, context: GradeContext, params: dict[str, Any]
) -> ChatRequest:
    asked = next(
        (m["content"] for m in reversed(context.messages) if m["role"] == "user"), ""
    )
    user = (
        f"Rubric:\n{rubric.strip()}\n\n"
        f"The request the response answers:\n<request>\n{asked}\n</request>\n\n"
        f"The response to grade:\n<response>\n{context.output}\n</response>"
    )
    messages = [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": user},
    ]
    return ChatRequest(messages=messages, params=dict(params), repeat=context.repeat)


@assertion_type("llm-judge", prepare=_judge, fields=("value", "threshold", "provider"))
async def llm_judge(assertion: Assertion, context: GradeContext) -> Verdict:
    """A judge model scores the reply against the rubric `value`: at least
    `threshold` passes."""
    name = assertion.extra["provider"]
    request = judge_request(assertion.value, context, {})
    try:
        reply = await context.judge(name, request)
        score, reason = parse_judge_reply(reply.text)
    except Exception as exc:  # an API failure or an unreadable verdict: never a pass
        raise CheckError(f"judge {name}: {exc}") from None
    threshold = assertion.extra["threshold"]
    return (
        score >= threshold,
        f"judge score {score:g} (threshold {threshold:g}): {reason}",
    )
