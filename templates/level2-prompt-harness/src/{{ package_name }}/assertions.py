"""Assertions: what a response must satisfy, one registered function per type.

    @assertion_type("starts-with", prepare=text_value, negatable=True)
    def starts_with(assertion: Assertion, context: GradeContext) -> Verdict:
        held = context.output.startswith(assertion.value)
        return held, f"starts with {short(context.output[:40])}"

is the whole of a type: the decorator registers it, `prepare` checks its `value` when
the suite loads (so a typo stops the run before any API call), and the function
returns (held, reason). `not-<type>` exists where `negatable` says so. A check raises
CheckError when it cannot be made (a judge reply that cannot be read, a Python check
that raised): the case is then errored, never passed. It raises Skip when it does not
apply (a cost limit for a provider with no prices): the assertion then counts for
nothing, and the report says why.
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import jsonschema

from .config import ProviderProfile
from .errors import ConfigError, Error
from .providers import ChatRequest, Completion, ToolCall, load_function

COMMON_FIELDS = frozenset({"type", "weight", "description"})
Verdict = tuple[bool, str]
JudgeCall = Callable[[str, ChatRequest], Awaitable[Completion]]
EmbedCall = Callable[[str, list[str]], Awaitable[list[list[float]]]]

JUDGE_SYSTEM = (
    "You grade a response written by another model against a rubric. "
    "Be strict and literal.\n"
    'Answer with only a JSON object, no other text: {"score": <number from 0 to 1>, '
    '"reason": "<one sentence>"}. 1 means the rubric is fully met, 0 not at all.'
)


class CheckError(Error):
    """The check could not be made: the case is errored, never passed."""


class Skip(Exception):
    """The check does not apply to this call; the message says why."""


class JudgeReplyError(CheckError):
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
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "assertion": self.label,
            "passed": self.passed,
            "weight": self.weight,
            "reason": self.reason,
            "error": self.error,
            "skipped": self.skipped,
        }


@dataclass
class GradeContext:
    """Everything a check may look at: the answer, the request, the case."""

    completion: Completion
    profile: ProviderProfile
    messages: list[dict[str, str]]
    variables: dict[str, Any]
    case_id: str
    repeat: int
    judge: JudgeCall
    embed: EmbedCall
    tools: list[dict[str, Any]] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.completion.text


@dataclass(frozen=True)
class ParseContext:
    """What `prepare` functions may need while a suite loads."""

    suite_dir: Path
    root: Path
    providers: dict[str, ProviderProfile]
    judge_provider: str | None = None
    embedding_provider: str | None = None
    judge_forced: bool = False  # --judge on the command line beats `provider:` too


Prepared = tuple[Any, dict[str, Any]]  # (value, extra)
Prepare = Callable[[dict[str, Any], ParseContext], Prepared]
Check = Callable[["Assertion", GradeContext], "Verdict | Awaitable[Verdict]"]


@dataclass(frozen=True)
class AssertionType:
    name: str
    check: Check
    prepare: Prepare
    fields: frozenset[str]
    negatable: bool


REGISTRY: dict[str, AssertionType] = {}


def assertion_type(
    name: str,
    *,
    prepare: Prepare,
    fields: tuple[str, ...] = ("value",),
    negatable: bool = False,
) -> Callable[[Check], Check]:
    """Register `check` as the assertion type `name` (and `not-name` if negatable)."""

    def register(check: Check) -> Check:
        if name in REGISTRY:
            raise ValueError(f"assertion type {name!r} is registered twice")
        REGISTRY[name] = AssertionType(
            name, check, prepare, frozenset(fields), negatable
        )
        return check

    return register


def known_types() -> list[str]:
    names = sorted(REGISTRY)
    return names + sorted(f"not-{n}" for n, t in REGISTRY.items() if t.negatable)


# -- value checks shared by several types ------------------------------------------


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def short(text: Any, limit: int = 80) -> str:
    text = text if isinstance(text, str) else json.dumps(text)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _need(condition: bool, raw: dict[str, Any], what: str) -> None:
    if not condition:
        raise ValueError(f"'value' must be {what}, got {raw.get('value')!r}")


def any_value(raw: dict[str, Any], context: ParseContext) -> Prepared:
    _need("value" in raw, raw, "given")
    return raw["value"], {}


def no_value(raw: dict[str, Any], context: ParseContext) -> Prepared:
    return None, {}


def text_value(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value = raw.get("value")
    _need(isinstance(value, str) and value != "", raw, "non-empty text")
    return value, {}


def text_list(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value = raw.get("value")
    _need(
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) and v for v in value),
        raw,
        "a non-empty list of non-empty strings",
    )
    return value, {}


def limit_value(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value = raw.get("value")
    if not _is_number(value) or value < 0:
        raise ValueError(f"'value' must be a number >= 0, got {value!r}")
    return float(value), {}


def _threshold(raw: dict[str, Any], default: float | None) -> float:
    threshold = raw.get("threshold", default)
    if not _is_number(threshold) or not 0 <= threshold <= 1:
        raise ValueError(f"'threshold' must be a number from 0 to 1, got {threshold!r}")
    return float(threshold)


def _schema_validator(value: Any, suite_dir: Path) -> Any:
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
            "'value' must be a JSON Schema mapping or a path to a .json file"
        )
    validator_class = jsonschema.validators.validator_for(value)
    try:
        validator_class.check_schema(value)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON Schema: {exc.message}") from None
    return validator_class(value)


def _schema_problem(validator: Any, instance: Any) -> str | None:
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"schema violation at {where}: {error.message}"


def _parse_json(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, f"not JSON: {exc}"


# -- text ----------------------------------------------------------------------------


@assertion_type("equals", prepare=any_value, negatable=True)
def equals(assertion: Assertion, context: GradeContext) -> Verdict:
    """The reply equals `value` (text, trimmed), or parses as JSON equal to a mapping
    or list `value`."""
    value, output = assertion.value, context.output
    if isinstance(value, str):
        held = output.strip() == value.strip()
        return (
            held,
            "output equals the expected text" if held else f"output is {short(output)}",
        )
    parsed, problem = _parse_json(output)
    if problem:
        return False, problem
    held = parsed == value
    return (
        held,
        "JSON equals the expected value" if held else f"JSON is {short(output)}",
    )


@assertion_type("contains", prepare=text_value, negatable=True)
def contains(assertion: Assertion, context: GradeContext) -> Verdict:
    held = assertion.value in context.output
    return held, f"{short(assertion.value)} {'found' if held else 'not found'}"


@assertion_type("icontains", prepare=text_value, negatable=True)
def icontains(assertion: Assertion, context: GradeContext) -> Verdict:
    held = assertion.value.casefold() in context.output.casefold()
    return (
        held,
        f"{short(assertion.value)} {'found' if held else 'not found'} (any case)",
    )


@assertion_type("starts-with", prepare=text_value, negatable=True)
def starts_with(assertion: Assertion, context: GradeContext) -> Verdict:
    held = context.output.lstrip().startswith(assertion.value)
    return held, f"output starts with {short(context.output.lstrip()[:40])}"


def _found(values: list[str], output: str, fold: bool) -> tuple[list[str], list[str]]:
    if fold:
        output = output.casefold()
    found = [v for v in values if (v.casefold() if fold else v) in output]
    return found, [v for v in values if v not in found]


@assertion_type("contains-any", prepare=text_list, negatable=True)
def contains_any(assertion: Assertion, context: GradeContext) -> Verdict:
    found, missing = _found(assertion.value, context.output, fold=False)
    return bool(found), f"found {found}, missing {missing}"


@assertion_type("contains-all", prepare=text_list, negatable=True)
def contains_all(assertion: Assertion, context: GradeContext) -> Verdict:
    found, missing = _found(assertion.value, context.output, fold=False)
    return not missing, f"found {found}, missing {missing}"


@assertion_type("icontains-any", prepare=text_list, negatable=True)
def icontains_any(assertion: Assertion, context: GradeContext) -> Verdict:
    found, missing = _found(assertion.value, context.output, fold=True)
    return bool(found), f"found {found}, missing {missing} (any case)"


@assertion_type("icontains-all", prepare=text_list, negatable=True)
def icontains_all(assertion: Assertion, context: GradeContext) -> Verdict:
    found, missing = _found(assertion.value, context.output, fold=True)
    return not missing, f"found {found}, missing {missing} (any case)"


def _regex(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value = raw.get("value")
    _need(isinstance(value, str), raw, "a regular expression")
    try:
        return re.compile(value), {}
    except re.error as exc:
        raise ValueError(f"invalid regex {value!r}: {exc}") from None


@assertion_type("regex", prepare=_regex, negatable=True)
def regex(assertion: Assertion, context: GradeContext) -> Verdict:
    match = assertion.value.search(context.output)
    found = f"matched {short(match.group(0))}" if match else "no match"
    return match is not None, f"/{assertion.value.pattern}/ {found}"


@assertion_type("finish-reason", prepare=text_value, negatable=True)
def finish_reason(assertion: Assertion, context: GradeContext) -> Verdict:
    """The model stopped for this reason: stop, length, tool_calls, content_filter."""
    reason = context.completion.finish_reason
    if reason is None:
        raise CheckError("the provider reported no finish reason")
    return reason == assertion.value, f"finish reason {reason!r}"


# -- JSON ----------------------------------------------------------------------------


@assertion_type("is-json", prepare=no_value, fields=(), negatable=True)
def is_json(assertion: Assertion, context: GradeContext) -> Verdict:
    _, problem = _parse_json(context.output)
    return problem is None, problem or "valid JSON"


def _schema(raw: dict[str, Any], context: ParseContext) -> Prepared:
    return raw.get("value"), {
        "validator": _schema_validator(raw.get("value"), context.suite_dir)
    }


@assertion_type("json-schema", prepare=_schema, negatable=True)
def json_schema(assertion: Assertion, context: GradeContext) -> Verdict:
    parsed, problem = _parse_json(context.output)
    if problem:
        return False, problem
    problem = _schema_problem(assertion.extra["validator"], parsed)
    return problem is None, problem or "matches the schema"


def _optional_schema(raw: dict[str, Any], context: ParseContext) -> Prepared:
    if raw.get("value") is None:
        return None, {}
    return _schema(raw, context)


def find_json(text: str) -> list[Any]:
    """Every JSON object or array inside prose or code fences, in order."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    position = 0
    while True:
        starts = [
            i for i in (text.find("{", position), text.find("[", position)) if i >= 0
        ]
        if not starts:
            return found
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        found.append(value)
        position = end


@assertion_type("contains-json", prepare=_optional_schema, negatable=True)
def contains_json(assertion: Assertion, context: GradeContext) -> Verdict:
    """JSON somewhere in the reply (in prose or a code fence); valid under `value`
    when a schema is given."""
    found = find_json(context.output)
    if not found:
        return False, "no JSON object or array in the output"
    validator = assertion.extra.get("validator")
    if validator is None:
        return True, f"found {len(found)} JSON value(s)"
    problems = [_schema_problem(validator, value) for value in found]
    if None in problems:
        return True, "found JSON that matches the schema"
    return False, str(problems[0])


# -- reference metrics ---------------------------------------------------------------


def levenshtein_distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute one character) that turn a into b."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(
                min(
                    previous[j] + 1,
                    current[j - 1] + 1,
                    previous[j - 1] + (char_a != char_b),
                )
            )
        previous = current
    return previous[-1]


def _reference_with_distance(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value, _ = text_value(raw, context)
    distance = raw.get("threshold", 5)
    if not isinstance(distance, int) or isinstance(distance, bool) or distance < 0:
        raise ValueError(
            f"'threshold' must be a whole number of edits >= 0, got {distance!r}"
        )
    return value, {"threshold": distance}


@assertion_type(
    "levenshtein", prepare=_reference_with_distance, fields=("value", "threshold")
)
def levenshtein(assertion: Assertion, context: GradeContext) -> Verdict:
    """At most `threshold` character edits (default 5) from the reference `value`."""
    distance = levenshtein_distance(context.output.strip(), assertion.value.strip())
    limit = assertion.extra["threshold"]
    return distance <= limit, f"edit distance {distance} (limit {limit})"


def _reference_with_share(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value, _ = text_value(raw, context)
    return value, {"threshold": _threshold(raw, 0.75)}


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


@assertion_type(
    "rouge-1",
    prepare=_reference_with_share,
    fields=("value", "threshold"),
    negatable=True,
)
def rouge_1(assertion: Assertion, context: GradeContext) -> Verdict:
    """ROUGE-1 recall: the share of the reference's words the reply contains
    (counting repeats), at least `threshold` (default 0.75)."""
    reference, output = _words(assertion.value), _words(context.output)
    remaining: dict[str, int] = {}
    for word in output:
        remaining[word] = remaining.get(word, 0) + 1
    overlap = 0
    for word in reference:
        if remaining.get(word, 0) > 0:
            remaining[word] -= 1
            overlap += 1
    recall = overlap / len(reference) if reference else 1.0
    threshold = assertion.extra["threshold"]
    return recall >= threshold, f"ROUGE-1 recall {recall:.2f} (threshold {threshold:g})"


def _similar(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value, extra = _reference_with_share(raw, context)
    extra["threshold"] = _threshold(raw, 0.8)
    provider = raw.get("provider", context.embedding_provider)
    if provider is None:
        raise ValueError(
            "no 'provider' given and harness.yaml sets no embedding_provider"
        )
    if provider not in context.providers:
        raise ValueError(f"embedding provider {provider!r} is not in harness.yaml")
    extra["provider"] = provider
    return value, extra


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0


@assertion_type(
    "similar",
    prepare=_similar,
    fields=("value", "threshold", "provider"),
    negatable=True,
)
async def similar(assertion: Assertion, context: GradeContext) -> Verdict:
    """Cosine similarity of the reply's and the reference's embeddings is at least
    `threshold` (default 0.8); embeddings from `embedding_provider`."""
    name = assertion.extra["provider"]
    try:
        output, reference = await context.embed(name, [context.output, assertion.value])
        score = cosine(output, reference)
    except Exception as exc:
        raise CheckError(f"embeddings from {name}: {exc}") from None
    threshold = assertion.extra["threshold"]
    return score >= threshold, f"similarity {score:.3f} (threshold {threshold:g})"


# -- tools ---------------------------------------------------------------------------


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
    arguments, problem = _parse_json(call.arguments or "{}")
    if problem:
        return None, f"{call.name}: arguments are {problem}"
    schema = declared[call.name]
    validator = jsonschema.validators.validator_for(schema)(schema)
    problem = _schema_problem(validator, arguments)
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


# -- your own code -------------------------------------------------------------------


def _python(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value = raw.get("value")
    if not isinstance(value, str):
        raise ValueError(f"'value' must be 'module:function', got {value!r}")
    try:
        function = load_function(value, context.root)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    args = raw.get("args", {})
    if not isinstance(args, dict):
        raise ValueError("'args' must be a mapping")
    return value, {"function": function, "args": args}


@assertion_type("python", prepare=_python, fields=("value", "args"))
def python(assertion: Assertion, context: GradeContext) -> Verdict:
    """`value: module:function` returns True, or (True, reason)."""
    check_context = {
        "vars": context.variables,
        "args": assertion.extra["args"],
        "case": context.case_id,
        "provider": context.profile.name,
        "messages": context.messages,
        "tool_calls": [call.to_dict() for call in context.completion.tool_calls],
    }
    try:
        returned = assertion.extra["function"](context.output, check_context)
    except Exception as exc:
        raise CheckError(
            f"{assertion.value} raised {type(exc).__name__}: {exc}"
        ) from None
    if isinstance(returned, bool):
        return returned, f"{assertion.value} returned {returned}"
    if (
        isinstance(returned, tuple)
        and len(returned) == 2
        and isinstance(returned[0], bool)
        and isinstance(returned[1], str)
    ):
        return returned[0], returned[1]
    raise CheckError(
        f"{assertion.value} returned {returned!r}; expected a bool or (bool, reason)"
    )


# -- cost and speed ------------------------------------------------------------------


@assertion_type("latency", prepare=limit_value)
def latency(assertion: Assertion, context: GradeContext) -> Verdict:
    """The call took at most `value` milliseconds."""
    measured = context.completion.latency_ms
    return measured <= assertion.value, f"{measured:g} ms (limit {assertion.value:g})"


def _token_limit(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value = raw.get("value")
    _need(
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


# -- model-graded --------------------------------------------------------------------


def _judge(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value = raw.get("value")
    _need(isinstance(value, str) and value.strip() != "", raw, "the rubric, as text")
    if "threshold" not in raw:
        raise ValueError("'threshold' is required: a number from 0 to 1")
    threshold = _threshold(raw, None)
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
        data = json.loads(body)
    except ValueError:
        raise JudgeReplyError(f"judge reply is not JSON: {short(text)}") from None
    if (
        not isinstance(data, dict)
        or not _is_number(data.get("score"))
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


# -- parsing and grading -------------------------------------------------------------


def parse_assertion(raw: Any, context: ParseContext) -> Assertion:
    """Check one assertion from a suite; raises ValueError saying what is wrong."""
    if not isinstance(raw, dict) or "type" not in raw:
        raise ValueError("expected a mapping with a 'type'")
    name = raw["type"]
    negate = isinstance(name, str) and name.startswith("not-")
    kind = name[4:] if negate else name
    registered = REGISTRY.get(kind) if isinstance(kind, str) else None
    if registered is None or (negate and not registered.negatable):
        known = known_types()
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
        hint = (
            f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(known)}"
        )
        raise ValueError(f"unknown assertion type {name!r}{hint}")
    allowed = registered.fields | COMMON_FIELDS
    unknown = sorted(set(raw) - allowed)
    if len(unknown) == 1:
        close = difflib.get_close_matches(str(unknown[0]), allowed, n=1, cutoff=0.6)
        if close:
            raise ValueError(
                f"{name}: unknown field {unknown[0]!r}; did you mean {close[0]!r}?"
            )
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
    try:
        value, extra = registered.prepare(raw, context)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    return Assertion(kind, negate, value, float(weight), description, extra)


async def grade(assertion: Assertion, context: GradeContext) -> AssertionResult:
    label, weight = assertion.label, assertion.weight
    try:
        verdict = REGISTRY[assertion.type].check(assertion, context)
        if inspect.isawaitable(verdict):
            verdict = await verdict
    except Skip as skip:
        return AssertionResult(label, True, weight, f"skipped: {skip}", skipped=True)
    except CheckError as exc:
        return AssertionResult(label, False, weight, str(exc), error=str(exc))
    held, reason = verdict
    return AssertionResult(label, held != assertion.negate, weight, reason)
