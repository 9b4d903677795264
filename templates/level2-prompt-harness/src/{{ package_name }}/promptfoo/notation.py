"""promptfoo's notations, read as promptfoo reads them: YAML 1.2, the type names
and shorthands of its assertions, vars that use vars, chat prompts as message lists."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment

from .. import jsonvalue
from ..assertions import REGISTRY
from ..configfile import SafeChecks
from ..prompts import ROLES

# Keys only a promptfoo config has; a harness suite has `cases` instead of `tests`.
PROMPTFOO_KEYS = frozenset({"tests", "defaultTest", "scenarios", "assertionTemplates"})
OPENAI_BASE_URL = "${OPENAI_BASE_URL:-https://api.openai.com/v1}"
# What promptfoo 0.120 grades llm-rubric and embeds `similar` with by default.
DEFAULT_GRADER = "openai:gpt-5-2025-08-07"
DEFAULT_EMBEDDING = "openai:embedding:text-embedding-3-large"
# promptfoo types with a harness type of another name (or other fields).
RENAMED = {
    "llm-rubric": "llm-judge",
    "is-valid-openai-tools-call": "is-valid-tool-call",
    "is-valid-openai-function-call": "is-valid-tool-call",
    "similar:cosine": "similar",
}
# Fields that promptfoo puts in `threshold` and the harness in `value`.
THRESHOLD_IS_VALUE = frozenset({"latency", "cost"})
# The harness types that read `threshold`.
WITH_THRESHOLD = frozenset(
    {"rouge-n", "bleu", "similar", "levenshtein", "python", "assert-set", "llm-judge"}
)
# promptfoo's own types that have no counterpart here: kept, skipped, noted.
NOT_HERE = frozenset(
    {
        "answer-relevance",
        "bertscore",
        "classifier",
        "context-faithfulness",
        "context-recall",
        "context-relevance",
        "conversation-relevance",
        "factuality",
        "g-eval",
        "gleu",
        "guardrails",
        "javascript",
        "max-score",
        "meteor",
        "model-graded-closedqa",
        "model-graded-factuality",
        "moderation",
        "perplexity",
        "perplexity-score",
        "pi",
        "ruby",
        "search-rubric",
        "select-best",
        "similar:dot",
        "similar:euclidean",
        "tool-call-f1",
        "webhook",
    }
)
# The `type:value` shorthand of a CSV `__expected` cell: `icontains:paris`,
# `not-contains-any:a,b`, `similar(0.9):text`, `rouge-n(0.6):text`.
_SHORTHAND = re.compile(
    r"(not-)?(similar:[a-z]+|[a-z][a-z0-9-]*)(?:\((\d+(?:\.\d+)?)\))?:"
)
_LIST_TYPES = frozenset(
    {"contains-any", "contains-all", "icontains-any", "icontains-all"}
)
_THRESHOLD_TYPES = frozenset({"levenshtein", "rouge-n", "similar", "starts-with"})
_VAR_REFERENCE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
PROMPT_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)


# YAML as promptfoo's parser reads it (YAML 1.2): `Yes`, `no`, `on` and `off` are
# text, only true and false are booleans. (Built with type(): PyYAML has no types.)
# On PyYAML's C parser when the wheel has it: several times faster on a large config.
# A key given twice in one mapping is refused, as promptfoo's parser refuses it, and
# so are aliases that expand past what any config holds.
_Yaml12Loader: Any = type(
    "_Yaml12Loader", (SafeChecks, getattr(yaml, "CSafeLoader", yaml.SafeLoader)), {}
)
_Yaml12Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Yaml12Loader)


def is_promptfoo_config(raw: dict[str, Any]) -> bool:
    return "cases" not in raw and bool(PROMPTFOO_KEYS & set(raw))


# One of those keys at the top of a block-style file: what promptfoo configs look like.
_PROMPTFOO_TOP_KEY = re.compile(
    r"^(?:tests|defaultTest|scenarios|assertionTemplates)[ \t]*:", re.MULTILINE
)


def read_promptfoo_yaml(path: Path) -> Any | None:
    """The file as promptfoo reads it, if its text shows a promptfoo config's key at
    the top; None otherwise, or when it cannot be read (read_yaml then says why).
    Parsing a large config twice, once each way, would double the start-up."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not _PROMPTFOO_TOP_KEY.search(text):
        return None
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return None


def environment() -> jinja2.Environment:
    # Nunjucks, which promptfoo uses, renders an undefined variable as nothing.
    # Sandboxed, as the project's own prompts are.
    environment = SandboxedEnvironment(
        undefined=jinja2.ChainableUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    # promptfoo's own filters: dump writes JSON, load reads it.
    environment.filters["dump"] = lambda value: json.dumps(value, ensure_ascii=False)
    environment.filters["load"] = jsonvalue.loads
    return environment


def is_python_reference(text: str) -> bool:
    location = text.removeprefix("file://")
    return text.startswith("file://") and (
        location.endswith(".py") or ".py:" in location
    )


def assertion_from_text(cell: str) -> dict[str, Any]:
    """A CSV `__expected` cell as an assertion, by promptfoo's shorthand: a known
    `type:` prefix (with `not-` and a `(threshold)`), `grade:` for llm-rubric,
    `python:` or a .py file for Python, `javascript:`/`fn:`/`eval:` for JavaScript;
    anything else must equal the output."""
    for prefix in ("javascript:", "fn:", "eval:"):
        if cell.startswith(prefix):
            return {"type": "javascript", "value": cell[len(prefix) :].strip()}
    for prefix in ("grade:", "llm-rubric:"):
        if cell.startswith(prefix):
            return {"type": "llm-rubric", "value": cell[len(prefix) :]}
    if cell.startswith("python:"):
        return {"type": "python", "value": cell[7:].strip()}
    if is_python_reference(cell):
        return {"type": "python", "value": cell.strip()}
    match = _SHORTHAND.match(cell)
    if match:
        negate, kind, threshold = match.group(1), match.group(2), match.group(3)
        if kind in REGISTRY or kind in RENAMED or kind in NOT_HERE:
            value = cell[match.end() :]
            assertion: dict[str, Any] = {"type": f"{negate or ''}{kind}"}
            if kind in _LIST_TYPES:
                assertion["value"] = [item.strip() for item in value.split(",")]
            elif value.strip():
                assertion["value"] = value.strip()
            base = RENAMED.get(kind, kind)
            if base in _THRESHOLD_TYPES:
                default = 0.8 if base == "similar" else 0.75
                assertion["threshold"] = float(threshold) if threshold else default
            return assertion
    return {"type": "equals", "value": cell}


def _filler(values: dict[str, Any], own: str) -> Any:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values and name != own:
            return str(values[name])
        return match.group(0)

    return fill


def resolve_variables(variables: dict[str, Any]) -> dict[str, Any]:
    """Vars that use vars: `{{ name }}` in a var's text takes that var's value,
    repeated up to five rounds, as promptfoo does before it renders a prompt."""
    resolved = dict(variables)
    for _ in range(5):
        changed = False
        for key, value in resolved.items():
            if isinstance(value, str):
                new = _VAR_REFERENCE.sub(_filler(resolved, key), value)
                if new != value:
                    resolved[key], changed = new, True
        if not changed:
            break
    return resolved


def expand_vars(variables: dict[str, Any]) -> list[dict[str, Any]]:
    """One set of vars per combination of the values of the vars that are lists;
    ValueError when they make more than MAX_COMBINATIONS."""
    lists = {
        name: value for name, value in variables.items() if isinstance(value, list)
    }
    if not lists:
        return [variables]
    count = math.prod(len(value) for value in lists.values())
    if count > MAX_COMBINATIONS:
        sizes = " x ".join(f"{name} {len(value):,}" for name, value in lists.items())
        raise ValueError(
            f"its list vars make {count:,} cases ({sizes}); at most"
            f" {MAX_COMBINATIONS:,} are made from one test"
        )
    names = list(lists)
    return [
        {**variables, **dict(zip(names, combination, strict=True))}
        for combination in itertools.product(*(lists[name] for name in names))
    ]


# Each combination is a case, and each case a call per prompt and provider: more than
# this from one test is a slip (a list meant as one value), not a suite.
MAX_COMBINATIONS = 10_000


def flat_assertions(assertions: list[Any]) -> list[dict[str, Any]]:
    """The assertions, with those inside each assert-set; those of another shape
    are left out (the suite loader says what is wrong with them)."""
    flat = []
    for assertion in assertions:
        if isinstance(assertion, dict) and isinstance(assertion.get("type"), str):
            flat.append(assertion)
            children = assertion.get("assert")
            if isinstance(children, list):
                flat.extend(flat_assertions(children))
    return flat


def first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "prompt"
    return line if len(line) <= 40 else line[:39] + "…"


def chat_messages(text: str) -> list[dict[str, str]] | None:
    """A prompt that is a JSON or YAML list of {role, content} messages."""
    stripped = text.strip()
    if not stripped.startswith(("[", "- ")):
        return None
    try:
        loaded = load_yaml(stripped)
    except yaml.YAMLError:
        return None
    if not isinstance(loaded, list) or not loaded:
        return None
    for message in loaded:
        if (
            not isinstance(message, dict)
            or message.get("role") not in ROLES
            or not isinstance(message.get("content"), str)
        ):
            return None
    return [{"role": m["role"], "content": m["content"]} for m in loaded]
