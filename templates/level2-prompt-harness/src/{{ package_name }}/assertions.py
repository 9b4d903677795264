"""Assertions: what a response must satisfy.

Each is parsed and checked once when a suite loads, so a typo (unknown type, bad regex,
missing module) stops the run before any API call. Each result is passed or failed, or
errored when the check itself could not be made (a judge reply that cannot be parsed, a
Python check that raised): an error is never counted as a pass.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from .config import ProviderProfile
from .providers import ChatRequest, Completion

# type -> (fields it takes besides type/weight/description, whether `not-<type>` exists)
ASSERTION_FIELDS: dict[str, tuple[frozenset[str], bool]] = {
    "equals": (frozenset({"value"}), True),
    "contains": (frozenset({"value"}), True),
    "icontains": (frozenset({"value"}), True),
    "contains-any": (frozenset({"value"}), True),
    "contains-all": (frozenset({"value"}), True),
    "regex": (frozenset({"value"}), True),
    "is-json": (frozenset(), True),
    "json-schema": (frozenset({"value"}), True),
    "python": (frozenset({"value", "args"}), False),
    "latency": (frozenset({"value"}), False),
    "tokens": (frozenset({"value"}), False),
    "cost": (frozenset({"value"}), False),
    "llm-judge": (frozenset({"value", "threshold", "provider"}), False),
}
COMMON_FIELDS = frozenset({"type", "weight", "description"})

JUDGE_SYSTEM = (
    "You grade a response written by another model against a rubric. "
    "Be strict and literal.\n"
    'Answer with only a JSON object, no other text: {"score": <number from 0 to 1>, '
    '"reason": "<one sentence>"}. 1 means the rubric is fully met, 0 not at all.'
)


class JudgeReplyError(Exception):
    """The judge answered, but not in the required form."""


@dataclass(frozen=True)
class Assertion:
    type: str
    negate: bool
    value: Any = None
    weight: float = 1.0
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        name = f"not-{self.type}" if self.negate else self.type
        return f"{name}: {self.description}" if self.description else name


@dataclass
class AssertionResult:
    label: str
    passed: bool
    weight: float
    reason: str
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "assertion": self.label,
            "passed": self.passed,
            "weight": self.weight,
            "reason": self.reason,
            "error": self.error,
        }


JudgeCall = Callable[[str, ChatRequest], Awaitable[Completion]]


@dataclass
class GradeContext:
    """Everything a check may look at besides the response text."""

    completion: Completion
    profile: ProviderProfile
    messages: list[dict[str, str]]
    variables: dict[str, Any]
    case_id: str
    repeat: int
    judge: JudgeCall


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _load_function(reference: Any, root: Path) -> Callable[..., Any]:
    if not isinstance(reference, str) or reference.count(":") != 1:
        raise ValueError(f"'value' must be 'module:function', got {reference!r}")
    module_name, function_name = reference.split(":")
    # Checks live beside the suites (e.g. suite_checks.py in the project folder).
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ValueError(
            f"cannot import module '{module_name}': {type(exc).__name__}: {exc}"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(f"module '{module_name}' has no function '{function_name}'")
    return function


def _load_schema(value: Any, suite_dir: Path) -> jsonschema.protocols.Validator:
    if isinstance(value, str):
        path = suite_dir / value
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(
                f"cannot read schema file {path}: {exc.strerror or exc}"
            ) from None
        except ValueError as exc:
            raise ValueError(f"schema file {path} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(
            "'value' must be a JSON Schema mapping or a path to a .json schema file"
        )
    validator_class = jsonschema.validators.validator_for(value)
    try:
        validator_class.check_schema(value)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON Schema: {exc.message}") from None
    return validator_class(value)


def parse_assertion(
    raw: Any,
    *,
    suite_dir: Path,
    root: Path,
    providers: dict[str, ProviderProfile],
    judge_provider: str | None,
) -> Assertion:
    """Check one assertion from a suite; raises ValueError saying what is wrong."""
    if not isinstance(raw, dict) or "type" not in raw:
        raise ValueError("expected a mapping with a 'type'")
    name = raw["type"]
    negate = isinstance(name, str) and name.startswith("not-")
    kind = name[4:] if negate else name
    if kind not in ASSERTION_FIELDS or (negate and not ASSERTION_FIELDS[kind][1]):
        known = sorted(ASSERTION_FIELDS)
        negatable = sorted(
            f"not-{k}" for k, (_, can_negate) in ASSERTION_FIELDS.items() if can_negate
        )
        raise ValueError(
            f"unknown assertion type {name!r}; known: {', '.join(known + negatable)}"
        )
    allowed = ASSERTION_FIELDS[kind][0] | COMMON_FIELDS
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValueError(
            f"{name}: unknown field(s) {', '.join(unknown)};"
            f" allowed: {', '.join(sorted(allowed))}"
        )
    weight = raw.get("weight", 1)
    if not _is_number(weight) or weight < 0:
        raise ValueError(f"{name}: 'weight' must be a number >= 0, got {weight!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"{name}: 'description' must be text")
    value = raw.get("value")
    extra: dict[str, Any] = {}

    def need(condition: bool, what: str) -> None:
        if not condition:
            raise ValueError(f"{name}: 'value' must be {what}, got {value!r}")

    if kind == "equals":
        need("value" in raw, "the expected text, or a mapping/list compared as JSON")
    elif kind in ("contains", "icontains"):
        need(isinstance(value, str) and value != "", "non-empty text")
    elif kind in ("contains-any", "contains-all"):
        need(
            isinstance(value, list)
            and bool(value)
            and all(isinstance(v, str) and v for v in value),
            "a non-empty list of non-empty strings",
        )
    elif kind == "regex":
        need(isinstance(value, str), "a regular expression")
        try:
            value = re.compile(value)
        except re.error as exc:
            raise ValueError(f"{name}: invalid regex {raw['value']!r}: {exc}") from None
    elif kind == "json-schema":
        try:
            extra["validator"] = _load_schema(value, suite_dir)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    elif kind == "python":
        try:
            extra["function"] = _load_function(value, root)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        args = raw.get("args", {})
        if not isinstance(args, dict):
            raise ValueError(f"{name}: 'args' must be a mapping")
        extra["args"] = args
    elif kind in ("latency", "cost"):
        need(
            _is_number(value) and value >= 0,
            "a number >= 0 (milliseconds for latency, US dollars for cost)",
        )
    elif kind == "tokens":
        need(
            isinstance(value, int) and not isinstance(value, bool) and value > 0,
            "a positive integer",
        )
    elif kind == "llm-judge":
        need(isinstance(value, str) and value.strip() != "", "the rubric, as text")
        threshold = raw.get("threshold")
        if not _is_number(threshold) or not 0 <= threshold <= 1:
            raise ValueError(
                f"{name}: 'threshold' is required: a number from 0 to 1,"
                f" got {threshold!r}"
            )
        judge = raw.get("provider", judge_provider)
        if judge is None:
            raise ValueError(
                f"{name}: no 'provider' given and harness.yaml sets no judge_provider"
            )
        if judge not in providers:
            raise ValueError(f"{name}: judge provider {judge!r} is not in harness.yaml")
        extra["threshold"] = float(threshold)
        extra["provider"] = judge
    return Assertion(kind, negate, value, float(weight), description, extra)


def _short(text: str, limit: int = 80) -> str:
    text = text if isinstance(text, str) else json.dumps(text)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _parse_json(output: str) -> tuple[Any, str | None]:
    try:
        return json.loads(output), None
    except ValueError as exc:
        return None, f"not JSON: {exc}"


def _text_check(assertion: Assertion, output: str) -> tuple[bool, str]:
    """Returns (held, what was found); negation is applied by the caller."""
    kind, value = assertion.type, assertion.value
    if kind == "equals":
        if isinstance(value, str):
            held = output.strip() == value.strip()
            return (
                held,
                "output equals the expected text"
                if held
                else f"output is {_short(output)}",
            )
        parsed, problem = _parse_json(output)
        if problem:
            return False, problem
        return (
            parsed == value,
            "JSON equals the expected value"
            if parsed == value
            else f"JSON is {_short(output)}",
        )
    if kind == "contains":
        held = value in output
        return held, f"{_short(value)} {'found' if held else 'not found'}"
    if kind == "icontains":
        held = value.casefold() in output.casefold()
        return (
            held,
            f"{_short(value)} {'found' if held else 'not found'} (ignoring case)",
        )
    if kind in ("contains-any", "contains-all"):
        found = [v for v in value if v in output]
        missing = [v for v in value if v not in output]
        held = bool(found) if kind == "contains-any" else not missing
        return held, f"found {found}, missing {missing}"
    if kind == "regex":
        match = value.search(output)
        return (
            match is not None,
            f"/{value.pattern}/ "
            + (f"matched {_short(match.group(0))}" if match else "no match"),
        )
    if kind == "is-json":
        _, problem = _parse_json(output)
        return problem is None, problem or "valid JSON"
    if kind == "json-schema":
        parsed, problem = _parse_json(output)
        if problem:
            return False, problem
        error = jsonschema.exceptions.best_match(
            assertion.extra["validator"].iter_errors(parsed)
        )
        if error is None:
            return True, "matches the schema"
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        return False, f"schema violation at {where}: {error.message}"
    raise AssertionError(f"unhandled text assertion {kind}")


def parse_judge_reply(text: str) -> tuple[float, str]:
    """The judge must answer {"score": 0..1, "reason": "..."}; all else is an error."""
    body = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, flags=re.DOTALL)
    if fenced:
        body = fenced.group(1)
    try:
        data = json.loads(body)
    except ValueError:
        raise JudgeReplyError(f"judge reply is not JSON: {_short(text)}") from None
    if (
        not isinstance(data, dict)
        or not _is_number(data.get("score"))
        or not isinstance(data.get("reason"), str)
    ):
        raise JudgeReplyError(
            f'judge reply lacks a numeric "score" and a text "reason": {_short(text)}'
        )
    score = float(data["score"])
    if not 0 <= score <= 1:
        raise JudgeReplyError(f"judge score {score} is outside 0..1")
    return score, data["reason"]


def _judge_request(
    assertion: Assertion, context: GradeContext, judge_profile_params: dict[str, Any]
) -> ChatRequest:
    asked = next(
        (m["content"] for m in reversed(context.messages) if m["role"] == "user"), ""
    )
    user = (
        f"Rubric:\n{assertion.value.strip()}\n\n"
        f"The request the response answers:\n<request>\n{asked}\n</request>\n\n"
        f"The response to grade:\n<response>\n{context.completion.text}\n</response>"
    )
    messages = [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": user},
    ]
    return ChatRequest(
        messages=messages, params=dict(judge_profile_params), repeat=context.repeat
    )


async def grade(
    assertion: Assertion, context: GradeContext, providers: dict[str, ProviderProfile]
) -> AssertionResult:
    output = context.completion.text

    def result(passed: bool, reason: str) -> AssertionResult:
        return AssertionResult(assertion.label, passed, assertion.weight, reason)

    def error(message: str) -> AssertionResult:
        return AssertionResult(
            assertion.label, False, assertion.weight, message, error=message
        )

    kind, value = assertion.type, assertion.value
    if kind in ("latency", "tokens", "cost"):
        if kind == "latency":
            measured, unit = context.completion.latency_ms, "ms"
        elif kind == "tokens":
            measured, unit = context.completion.total_tokens, "tokens"
        else:
            measured = context.profile.cost_usd(
                context.completion.prompt_tokens, context.completion.completion_tokens
            )
            unit = "USD"
        if measured is None:
            return error(f"{kind}: the provider reported no token usage to measure")
        return result(measured <= value, f"{measured:g} {unit} (limit {value:g})")
    if kind == "python":
        check_context = {
            "vars": context.variables,
            "args": assertion.extra["args"],
            "case": context.case_id,
            "provider": context.profile.name,
            "messages": context.messages,
        }
        try:
            returned = assertion.extra["function"](output, check_context)
        except Exception as exc:
            return error(f"{value} raised {type(exc).__name__}: {exc}")
        if isinstance(returned, bool):
            return result(returned, f"{value} returned {returned}")
        if (
            isinstance(returned, tuple)
            and len(returned) == 2
            and isinstance(returned[0], bool)
            and isinstance(returned[1], str)
        ):
            return result(returned[0], returned[1])
        return error(
            f"{value} returned {returned!r}; expected a bool or (bool, reason)"
        )
    if kind == "llm-judge":
        judge_name = assertion.extra["provider"]
        request = _judge_request(assertion, context, providers[judge_name].params)
        try:
            reply = await context.judge(judge_name, request)
            score, reason = parse_judge_reply(reply.text)
        except (
            Exception
        ) as exc:  # an API failure or an unreadable verdict: never a pass
            return error(f"judge {judge_name}: {exc}")
        threshold = assertion.extra["threshold"]
        return result(
            score >= threshold,
            f"judge score {score:g} (threshold {threshold:g}): {reason}",
        )
    held, reason = _text_check(assertion, output)
    return result(held != assertion.negate, reason)  # the label already says "not-"
