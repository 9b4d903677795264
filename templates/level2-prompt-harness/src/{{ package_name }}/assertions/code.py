"""Assertions written in Python: a function of yours, a file, or inline code."""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

from ..providers.python_function import USER_CODE_FAILURES
from .base import (
    PYTHON_REFERENCE,
    Assertion,
    GradeContext,
    ParseContext,
    Prepared,
    UserCodeError,
    Verdict,
    assertion_type,
    code_output,
    is_number,
    load_reference,
    threshold_value,
)


def _inline(code: str) -> Any:
    """promptfoo's inline Python: one line is the expression returned; several are
    the body of a function of `output` and `context`."""
    lines = code.strip("\n").splitlines()
    if len(lines) == 1:
        body = f"    return {lines[0].strip()}"
    else:
        body = textwrap.indent(textwrap.dedent("\n".join(lines)), "    ")
    source = f"def check(output, context):\n{body}\n"
    try:
        compiled = compile(source, "<inline python assertion>", "exec")
    except SyntaxError as exc:
        raise ValueError(f"inline Python does not compile: {exc.msg}") from None
    namespace: dict[str, Any] = {"json": json, "re": re}
    exec(compiled, namespace)  # the suite's own code, as the python provider runs it
    return namespace["check"]


def _python(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value = raw.get("value")
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            "'value' must be 'module:function', 'file://check.py[:function]'"
            f" or inline Python, got {value!r}"
        )
    if value.startswith("file://") or PYTHON_REFERENCE.fullmatch(value):
        function = load_reference(value, context, "get_assert")
    else:
        function = _inline(value)
    args = raw.get("args", {})
    if not isinstance(args, dict):
        raise ValueError("'args' must be a mapping")
    threshold = raw.get("threshold")
    if threshold is not None:
        threshold = threshold_value(raw, None)
    return value, {"function": function, "args": args, "threshold": threshold}


def _named(value: str) -> str:
    return value if "\n" not in value and len(value) <= 60 else "the Python check"


def python_verdict(returned: Any, name: str, threshold: float | None) -> Verdict:
    """What a Python check may return: a bool; (bool, reason); a score (passes above
    0, or at `threshold` if set); or {pass, score, reason} as promptfoo takes it."""
    if isinstance(returned, bool):
        return returned, f"{name} returned {returned}"
    if (
        isinstance(returned, tuple)
        and len(returned) == 2
        and isinstance(returned[0], bool)
        and isinstance(returned[1], str)
    ):
        return returned[0], returned[1]
    if is_number(returned):
        held = returned >= threshold if threshold is not None else returned > 0
        return held, f"{name} scored {returned:g}"
    if isinstance(returned, dict) and ("pass" in returned or "pass_" in returned):
        held = bool(returned.get("pass", returned.get("pass_")))
        score = returned.get("score")
        if threshold is not None and is_number(score) and score < threshold:
            held = False
        return held, str(returned.get("reason") or f"{name} returned {held}")
    raise UserCodeError(
        f"{name} returned {returned!r}; expected a bool, (bool, reason), a score"
        " or {pass, score, reason}"
    )


@assertion_type("python", prepare=_python, fields=("value", "args", "threshold"))
def python(assertion: Assertion, context: GradeContext) -> Verdict:
    """`value` is `module:function`, `file://check.py[:function]` (default
    get_assert) or inline Python; called with the output and a context mapping."""
    check_context = {
        "vars": context.variables,
        "args": assertion.extra["args"],
        "case": context.case_id,
        "provider": context.profile.name,
        "messages": context.messages,
        "prompt": context.messages[-1]["content"] if context.messages else "",
        "test": {"vars": context.variables},
        "tool_calls": [call.to_dict() for call in context.completion.tool_calls],
    }
    name = _named(assertion.value)
    try:
        returned = assertion.extra["function"](code_output(context), check_context)
    except USER_CODE_FAILURES as exc:
        raise UserCodeError(f"{name} raised {type(exc).__name__}: {exc}") from None
    return python_verdict(returned, name, assertion.extra["threshold"])
