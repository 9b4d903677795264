"""The machinery of assertions: the registry, parsing, grading, transforms, weights.

    @assertion_type("starts-with", prepare=text_value, negatable=True)
    def starts_with(assertion: Assertion, context: GradeContext) -> Verdict:
        held = context.output.startswith(assertion.value)
        return held, f"starts with {short(context.output[:40])}"

is the whole of a type: the decorator registers it, `prepare` checks its `value` when
the suite loads (so a typo stops the run before any API call), and the function
returns (held, reason). `not-<type>` exists where `negatable` says so. A check raises
CheckError when it cannot be made (a judge reply that cannot be read): the case is then
errored, never passed; UserCodeError when your own code (a Python check, a transform)
raised: the case then fails, with the error. It raises Skip when it does not
apply (a cost limit for a provider with no prices): the assertion then counts for
nothing, and the report says why. The types themselves live in this package's other
modules, one per family.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeGuard

from .. import jsonvalue
from ..config import ProviderProfile
from ..errors import ConfigError, Error
from ..providers.base import (
    ChatRequest,
    Completion,
)
from ..providers.python_function import (
    USER_CODE_FAILURES,
    load_file_function,
    load_function,
)

# Every assertion may carry these besides its type's own fields.
COMMON_FIELDS = frozenset({"type", "weight", "description", "metric", "transform"})
PYTHON_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
Verdict = tuple[bool, str]
JudgeCall = Callable[[str, ChatRequest], Awaitable[Completion]]
EmbedCall = Callable[[str, list[str]], Awaitable[list[list[float]]]]
# A transform gets the output and {vars, prompt} and returns what the checks see.
Transform = Callable[[str, dict[str, Any]], Any]


class CheckError(Error):
    """The check could not be made: the case is errored, never passed."""


class UserCodeError(CheckError):
    """Your own Python check or transform raised, or returned what it may not: the
    case fails (exit 1) with the error. No service is to blame, so it is not among
    the cases that got no verdict (exit 3), and it is never a pass."""


class Skip(Exception):
    """The check does not apply to this call; the message says why."""


@dataclass(frozen=True)
class Assertion:
    type: str
    negate: bool
    value: Any = None
    weight: float = 1.0
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    metric: str = ""  # a named score the reports add up across cases
    transform: Transform | None = None  # rewrites the output this assertion sees

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
    metric: str = ""
    raised: bool = False  # the error is a UserCodeError: the case fails

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "assertion": self.label,
            "passed": self.passed,
            "weight": self.weight,
            "reason": self.reason,
            "error": self.error,
            "skipped": self.skipped,
        }
        if self.metric:
            data["metric"] = self.metric
        return data


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
    # What a transform made of the reply; None while no transform applies.
    transformed: str | None = None

    @property
    def output(self) -> str:
        """The text assertions check: the reply's text, or, when the reply calls
        tools, the calls as JSON in the OpenAI shape (as promptfoo shows them)."""
        if self.transformed is not None:
            return self.transformed
        return reply_text(self.completion)


def _tool_calls_json(completion: Completion) -> list[dict[str, Any]]:
    return [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in completion.tool_calls
    ]


def compact_json(value: Any) -> str:
    """JSON without spaces, as JavaScript's JSON.stringify writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def code_output(context: GradeContext) -> Any:
    """What Python checks and transforms get: the list of calls (as promptfoo hands
    them over) for a reply of only tool calls; the output text otherwise."""
    completion = context.completion
    if context.transformed is None and completion.tool_calls and not completion.text:
        return _tool_calls_json(completion)
    return context.output


def reply_text(completion: Completion) -> str:
    """A reply of only tool calls reads as the list of calls; one with text too as
    the whole message (role, content, tool_calls)."""
    if not completion.tool_calls:
        return completion.text
    calls = _tool_calls_json(completion)
    if not completion.text:
        return compact_json(calls)
    message = {"role": "assistant", "content": completion.text, "tool_calls": calls}
    return compact_json(message)


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


def is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_finite(value: Any) -> TypeGuard[int | float]:
    """A number a suite may give: NaN compares false with every limit, so it passed
    `< 0` checks, then broke results.json, which holds no NaN or infinity."""
    return is_number(value) and math.isfinite(value)


def short(text: Any, limit: int = 80) -> str:
    text = text if isinstance(text, str) else json.dumps(text)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def need(condition: bool, raw: dict[str, Any], what: str) -> None:
    if not condition:
        raise ValueError(f"'value' must be {what}, got {raw.get('value')!r}")


def any_value(raw: dict[str, Any], context: ParseContext) -> Prepared:
    need("value" in raw, raw, "given")
    return raw["value"], {}


def no_value(raw: dict[str, Any], context: ParseContext) -> Prepared:
    return None, {}


def text_value(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value = raw.get("value")
    need(isinstance(value, str) and value != "", raw, "non-empty text")
    return value, {}


def limit_value(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value = raw.get("value")
    if not is_finite(value) or value < 0:
        raise ValueError(f"'value' must be a number >= 0, got {value!r}")
    return float(value), {}


def threshold_value(raw: dict[str, Any], default: float | None) -> float:
    threshold = raw.get("threshold", default)
    if not is_number(threshold) or not 0 <= threshold <= 1:
        raise ValueError(f"'threshold' must be a number from 0 to 1, got {threshold!r}")
    return float(threshold)


# How long one regex may search one text. A pattern that backtracks without end on
# some reply (`(a|aa)+$` on forty a's) held the whole run for ever: Python's `re`
# cannot be stopped, not even by Ctrl-C. The `regex` package's matcher takes a
# timeout and reads `re`'s syntax; a fair pattern searches a reply in microseconds.
REGEX_TIME_LIMIT_S = 1.0


def regex_search(pattern: Any, text: str) -> Any:
    """`pattern` (text, or compiled by the `regex` package) searched for in `text`: a
    match or None, or a CheckError once the search runs past REGEX_TIME_LIMIT_S."""
    import regex  # here: most suites search for no pattern

    try:
        return regex.search(pattern, text, timeout=REGEX_TIME_LIMIT_S)
    except TimeoutError:
        shown = getattr(pattern, "pattern", pattern)
        raise CheckError(
            f"/{shown}/ searched this reply for over {REGEX_TIME_LIMIT_S:g} s and was "
            "stopped: it backtracks without end on some text; write it so that no "
            "two parts can match the same characters"
        ) from None


@functools.cache
def _timed(validator_class: Any) -> Any:
    """The JSON Schema validator class with `pattern` searched by `regex_search`: a
    schema is suite input too, and jsonschema searches with `re`."""
    import jsonschema

    def pattern(validator: Any, wanted: str, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "string") and not regex_search(wanted, instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {wanted!r}")

    return jsonschema.validators.extend(validator_class, {"pattern": pattern})


def validator_for(schema: dict[str, Any]) -> Any:
    """A validator of `schema`, already checked, by the draft the schema names."""
    import jsonschema  # here: most suites check no schema, and it takes 50-80 ms

    return _timed(jsonschema.validators.validator_for(schema))(schema)


def schema_validator(value: Any, suite_dir: Path) -> Any:
    if isinstance(value, str):
        path = suite_dir / value.removeprefix("file://")
        try:
            value = jsonvalue.loads(path.read_text(encoding="utf-8"))
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
    import jsonschema

    try:
        jsonschema.validators.validator_for(value).check_schema(value)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON Schema: {exc.message}") from None
    return validator_for(value)


def schema_problem(validator: Any, instance: Any) -> str | None:
    import jsonschema

    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"schema violation at {where}: {error.message}"


def parse_json(text: str) -> tuple[Any, str | None]:
    try:
        return jsonvalue.loads(text), None
    except ValueError as exc:
        return None, f"not JSON: {exc}"


# -- code of the user's: checks and transforms ---------------------------------------


def load_reference(reference: str, context: ParseContext, default: str) -> Any:
    """A function named as `module:function` (importable from the project folder)
    or `file://path.py[:function]` (relative to the suite)."""
    try:
        if reference.startswith("file://"):
            return load_file_function(reference, context.suite_dir, default)
        return load_function(reference, context.root)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def load_transform(reference: Any, context: ParseContext) -> Transform:
    """The function a `transform` (of an assertion or a case) names."""
    if not isinstance(reference, str) or not (
        reference.startswith("file://") or PYTHON_REFERENCE.fullmatch(reference)
    ):
        raise ValueError(
            "'transform' must be file://transform.py[:function] or module:function,"
            f" got {reference!r} (inline Python or JavaScript does not run here)"
        )
    try:
        function: Transform = load_reference(reference, context, "get_transform")
    except ValueError as exc:
        raise ValueError(f"transform: {exc}") from None
    return function


def _transform(raw: dict[str, Any], context: ParseContext) -> Transform | None:
    reference = raw.get("transform")
    return None if reference is None else load_transform(reference, context)


def apply_transform(
    transform: Transform, context: GradeContext, prompt: str = ""
) -> str:
    """The output after `transform`; what it returns is JSON text unless text."""
    try:
        returned = transform(
            code_output(context), {"vars": context.variables, "prompt": prompt}
        )
    except USER_CODE_FAILURES as exc:
        raise UserCodeError(f"transform raised {type(exc).__name__}: {exc}") from None
    return returned if isinstance(returned, str) else compact_json(returned)


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
    if not is_finite(weight) or weight < 0:
        raise ValueError(f"{name}: 'weight' must be a number >= 0, got {weight!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"{name}: 'description' must be text")
    metric = raw.get("metric", "")
    if not isinstance(metric, str):
        raise ValueError(f"{name}: 'metric' must be the name of a score, as text")
    try:
        transform = _transform(raw, context)
        value, extra = registered.prepare(raw, context)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    return Assertion(
        kind, negate, value, float(weight), description, extra, metric, transform
    )


def weigh(results: list[AssertionResult], threshold: float) -> tuple[float, bool]:
    """The weighted share of the results that passed, and whether it reaches the
    threshold; skipped results count for nothing."""
    counted = [r for r in results if not r.skipped]
    total = sum(r.weight for r in counted)
    earned = sum(r.weight for r in counted if r.passed)
    score = earned / total if total else float(all(r.passed for r in counted))
    return score, score >= threshold - 1e-9


async def grade(assertion: Assertion, context: GradeContext) -> AssertionResult:
    label, weight, metric = assertion.label, assertion.weight, assertion.metric
    try:
        if assertion.transform is not None:
            context = replace(
                context, transformed=apply_transform(assertion.transform, context)
            )
        verdict = REGISTRY[assertion.type].check(assertion, context)
        if not isinstance(verdict, tuple):  # a check that waits: a judge, embeddings
            verdict = await verdict
    except Skip as skip:
        return AssertionResult(
            label, True, weight, f"skipped: {skip}", skipped=True, metric=metric
        )
    except CheckError as exc:
        raised = isinstance(exc, UserCodeError)
        return AssertionResult(
            label, False, weight, str(exc), error=str(exc), metric=metric, raised=raised
        )
    held, reason = verdict
    passed = held != assertion.negate
    if not passed and weight == 0:
        # promptfoo's rule: an assertion of weight 0 is reported but always passes.
        passed, reason = True, f"passes at weight 0 (check: {reason})"
    return AssertionResult(label, passed, weight, reason, metric=metric)


# -- types that work on other assertions ---------------------------------------------


def _assert_set(raw: dict[str, Any], context: ParseContext) -> Prepared:
    items = raw.get("assert")
    if not isinstance(items, list) or not items:
        raise ValueError("'assert' must be a non-empty list of assertions")
    children = []
    for number, item in enumerate(items, start=1):
        try:
            children.append(parse_assertion(item, context))
        except ValueError as exc:
            raise ValueError(f"assertion {number} of the set: {exc}") from None
    return tuple(children), {"threshold": threshold_value(raw, 1.0)}


@assertion_type("assert-set", prepare=_assert_set, fields=("assert", "threshold"))
async def assert_set(assertion: Assertion, context: GradeContext) -> Verdict:
    """The assertions in `assert`, weighed together: the set passes when their
    weighted share of passes reaches `threshold` (default 1, all of them)."""
    results = [await grade(child, context) for child in assertion.value]
    errors = [f"{r.label}: {r.error}" for r in results if r.error]
    if errors:
        own = all(r.raised for r in results if r.error)
        raise (UserCodeError if own else CheckError)("; ".join(errors))
    score, held = weigh(results, assertion.extra["threshold"])
    failed = [f"{r.label} ({r.reason})" for r in results if not r.passed]
    detail = f"; failed: {'; '.join(failed)}" if failed else ""
    return held, f"{score:.2f} of the set's weight passed{detail}"


def _reason(raw: dict[str, Any], context: ParseContext) -> Prepared:
    return text_value(raw, context)


@assertion_type("skip", prepare=_reason)
def skip(assertion: Assertion, context: GradeContext) -> Verdict:
    """Never checked: reported as skipped with the reason `value` (a check kept in
    the suite while switched off, or one a promptfoo config has that cannot run)."""
    raise Skip(assertion.value)
