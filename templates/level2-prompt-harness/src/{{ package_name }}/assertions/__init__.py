"""Assertions: what a response must satisfy, one registered function per type.

The machinery (registry, parsing, grading, weights, transforms, assert-set) is in
`base.py`; the types are grouped by what they look at, one module per family:
`text.py`, `structured.py`, `reference.py`, `tools.py`, `code.py`, `limits.py`,
`judge.py`. Importing this package registers them all.
"""

from . import code, judge, limits, reference, structured, text, tools
from .base import (
    REGISTRY,
    Assertion,
    AssertionResult,
    CheckError,
    GradeContext,
    ParseContext,
    Skip,
    Transform,
    UserCodeError,
    apply_transform,
    compact_json,
    grade,
    known_types,
    load_reference,
    load_transform,
    parse_assertion,
    reply_text,
    weigh,
)
from .judge import JudgeReplyError, judge_request, parse_judge_reply
from .reference import cosine, levenshtein_distance
from .structured import find_json
from .text import count_words, is_refusal_text

__all__ = [
    "REGISTRY",
    "Assertion",
    "AssertionResult",
    "CheckError",
    "GradeContext",
    "JudgeReplyError",
    "ParseContext",
    "Skip",
    "Transform",
    "UserCodeError",
    "apply_transform",
    "code",
    "compact_json",
    "cosine",
    "count_words",
    "find_json",
    "grade",
    "is_refusal_text",
    "judge",
    "judge_request",
    "known_types",
    "levenshtein_distance",
    "limits",
    "load_reference",
    "load_transform",
    "parse_assertion",
    "parse_judge_reply",
    "reference",
    "reply_text",
    "structured",
    "text",
    "tools",
    "weigh",
]
