"""Assertions that compare the reply with a reference: edit distance, ROUGE,
BLEU, embedding similarity."""

from __future__ import annotations

import math
import re
from typing import Any

from .base import (
    Assertion,
    CheckError,
    GradeContext,
    ParseContext,
    Prepared,
    Verdict,
    assertion_type,
    text_value,
    threshold_value,
)


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
    return value, {"threshold": threshold_value(raw, 0.75)}


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


def rouge_tokens(text: str) -> list[str]:
    """Words and punctuation marks, each a token, case kept."""
    return re.findall(r"\w+(?:'\w+)*|[^\w\s]", text)


def rouge_n_score(candidate: str, reference: str, n: int = 1) -> float:
    """ROUGE-N F1: n-grams the candidate shares with the reference (each counted at
    most as often as the reference has it), harmonic mean of precision and recall."""
    ours, theirs = rouge_tokens(candidate), rouge_tokens(reference)
    grams = [tuple(ours[i : i + n]) for i in range(len(ours) - n + 1)]
    wanted: dict[tuple[str, ...], int] = {}
    for i in range(len(theirs) - n + 1):
        gram = tuple(theirs[i : i + n])
        wanted[gram] = wanted.get(gram, 0) + 1
    total_reference = max(0, len(theirs) - n + 1)
    matches = 0
    for gram in grams:
        if wanted.get(gram, 0) > 0:
            wanted[gram] -= 1
            matches += 1
    if not matches:
        return 0.0
    precision, recall = matches / len(grams), matches / total_reference
    return 2 * precision * recall / (precision + recall)


@assertion_type(
    "rouge-n",
    prepare=_reference_with_share,
    fields=("value", "threshold"),
    negatable=True,
)
def rouge_n(assertion: Assertion, context: GradeContext) -> Verdict:
    """ROUGE-N (unigrams, F1, case-sensitive, punctuation as tokens), as promptfoo
    scores it: at least `threshold` (default 0.75)."""
    score = rouge_n_score(context.output, assertion.value)
    threshold = assertion.extra["threshold"]
    return score >= threshold, f"ROUGE-N {score:.2f} (threshold {threshold:g})"


def _ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def bleu_score(candidate: str, references: list[str]) -> float:
    """BLEU (Papineni et al., 2002): the geometric mean of clipped 1- to 4-gram
    precisions (an empty one counts as 1e-7), times the brevity penalty against the
    reference closest in length; words are lower-cased, split on whitespace."""
    words = candidate.lower().split()
    if not words:
        return 0.0
    refs = [reference.lower().split() for reference in references]
    closest = min((len(ref) for ref in refs), key=lambda size: abs(size - len(words)))
    log_sum = 0.0
    for n in range(1, 5):
        grams = _ngrams(words, n)
        counts: dict[tuple[str, ...], int] = {}
        for gram in grams:
            counts[gram] = counts.get(gram, 0) + 1
        best = 0
        for ref in refs:
            available: dict[tuple[str, ...], int] = {}
            for gram in _ngrams(ref, n):
                available[gram] = available.get(gram, 0) + 1
            clipped = sum(min(c, available.get(g, 0)) for g, c in counts.items())
            best = max(best, clipped)
        precision = best / len(grams) if grams else 0.0
        log_sum += 0.25 * math.log(precision or 1e-7)
    brevity = 1.0 if len(words) > closest else math.exp(1 - closest / len(words))
    return brevity * math.exp(log_sum)


def _references(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value = raw.get("value")
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise ValueError(
            f"'value' must be a reference text or a list of them, got {value!r}"
        )
    return value, {"threshold": threshold_value(raw, 0.5)}


@assertion_type(
    "bleu", prepare=_references, fields=("value", "threshold"), negatable=True
)
def bleu(assertion: Assertion, context: GradeContext) -> Verdict:
    """BLEU of the reply against the reference(s) in `value` is at least
    `threshold` (default 0.5)."""
    score = bleu_score(context.output, assertion.value)
    threshold = assertion.extra["threshold"]
    return score >= threshold, f"BLEU {score:.4f} (threshold {threshold:g})"


def _similar(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value, extra = _reference_with_share(raw, context)
    extra["threshold"] = threshold_value(raw, 0.8)
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
