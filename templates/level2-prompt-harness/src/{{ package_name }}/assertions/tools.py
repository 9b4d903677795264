"""Assertions on the tool calls a reply makes."""

from __future__ import annotations

from typing import Any

from ..providers.base import ToolCall
from .base import (
    Assertion,
    GradeContext,
    ParseContext,
    Prepared,
    Verdict,
    assertion_type,
    no_value,
    parse_json,
    schema_problem,
    validator_for,
)


def _declared(context: GradeContext) -> dict[str, dict[str, Any]]:
    tools = {}
    for tool in context.tools:
        function = tool.get("function", tool)
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            tools[function["name"]] = function.get("parameters") or {"type": "object"}
    return tools


def _call_problem(
    call: ToolCall, declared: dict[str, dict[str, Any]]
) -> tuple[Any, str | None]:
    if call.name not in declared:
        known = ", ".join(sorted(declared)) or "none"
        return None, f"{call.name}: not a declared tool (declared: {known})"
    arguments, problem = parse_json(call.arguments or "{}")
    if problem:
        return None, f"{call.name}: arguments are {problem}"
    problem = schema_problem(validator_for(declared[call.name]), arguments)
    return arguments, f"{call.name}: {problem}" if problem else None


def _tool_call(raw: dict[str, Any], context: ParseContext) -> Prepared:
    name = raw.get("value")
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"'value' must name the tool, got {name!r}")
    arguments = raw.get("arguments", {})
    if not isinstance(arguments, dict):
        raise ValueError("'arguments' must map argument names to expected values")
    return name, {"arguments": arguments}


@assertion_type(
    "tool-call", prepare=_tool_call, fields=("value", "arguments"), negatable=True
)
def tool_call(assertion: Assertion, context: GradeContext) -> Verdict:
    """The reply calls the tool `value` (any tool if none is named) with arguments
    valid under the tool's declared JSON Schema and equal to those in `arguments`."""
    calls = [
        c for c in context.completion.tool_calls if assertion.value in (None, c.name)
    ]
    wanted = f"tool {assertion.value!r}" if assertion.value else "any tool"
    if not calls:
        made = [c.name for c in context.completion.tool_calls]
        return False, f"no call to {wanted} (calls: {made or 'none'})"
    declared, reasons = _declared(context), []
    for call in calls:
        arguments, problem = _call_problem(call, declared)
        if problem:
            reasons.append(problem)
            continue
        wrong = {
            key: arguments.get(key, "<missing>")
            for key, expected in assertion.extra["arguments"].items()
            if arguments.get(key) != expected
        }
        if wrong:
            reasons.append(f"{call.name}: arguments differ: {wrong}")
            continue
        return True, f"{call.name}({call.arguments})"
    return False, "; ".join(reasons)


@assertion_type("is-valid-tool-call", prepare=no_value, fields=())
def is_valid_tool_call(assertion: Assertion, context: GradeContext) -> Verdict:
    """The reply makes at least one tool call, and every call names a declared tool
    with arguments valid under its JSON Schema."""
    calls = context.completion.tool_calls
    if not calls:
        return False, "no tool call in the reply"
    declared = _declared(context)
    problems = [p for call in calls if (p := _call_problem(call, declared)[1])]
    return not problems, "; ".join(problems) or f"{len(calls)} valid tool call(s)"
