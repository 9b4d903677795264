"""What one run of one case produced, and how repeated runs of a case add up."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `compare` and `runs` read results without loading the checks
    from .assertions import AssertionResult

PASSED, FAILED, ERRORED = "passed", "failed", "errored"
OUTCOMES = (PASSED, FAILED, ERRORED)


@dataclass
class CaseResult:
    """One case, through one prompt and one provider, on one repeat."""

    suite: str
    case: str
    prompt: str
    provider: str
    repeat: int
    # passed: score reached the threshold; failed: it did not; errored: no verdict
    outcome: str
    messages: list[dict[str, str]]
    description: str = ""
    output: str | None = None
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    finish_reason: str | None = None
    error: str | None = None
    score: float | None = None
    threshold: float = 1.0
    assertions: list[AssertionResult] = field(default_factory=list)
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "assertions"
        }
        data["assertions"] = [result.to_dict() for result in self.assertions]
        return data


def cell_key(result: dict[str, Any]) -> tuple[str, str, str, str]:
    return (result["suite"], result["case"], result["prompt"], result["provider"])


@dataclass
class Cell:
    """All repeats of one case x prompt x provider; passes only if every repeat did."""

    suite: str
    case: str
    prompt: str
    provider: str
    runs: list[dict[str, Any]]

    @property
    def counts(self) -> Counter[str]:
        return Counter(run["outcome"] for run in self.runs)

    @property
    def outcome(self) -> str:
        counts = self.counts
        if counts[FAILED]:
            return FAILED
        if counts[ERRORED]:
            return ERRORED
        return PASSED

    @property
    def pass_rate(self) -> float:
        return self.counts[PASSED] / len(self.runs)

    @property
    def flaky(self) -> bool:
        return 0 < self.pass_rate < 1

    @property
    def name(self) -> str:
        return f"{self.case} [{self.prompt} @ {self.provider}]"


def group_cells(results: list[dict[str, Any]]) -> list[Cell]:
    cells: dict[tuple[str, str, str, str], Cell] = {}
    for result in results:
        key = cell_key(result)
        if key not in cells:
            cells[key] = Cell(*key, runs=[])
        cells[key].runs.append(result)
    return list(cells.values())
