"""Compare two runs (results.json files): what regressed, improved, came and went."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .results import PASSED, Cell, group_cells


@dataclass
class Comparison:
    regressed: list[tuple[Cell, Cell]] = field(default_factory=list)
    improved: list[tuple[Cell, Cell]] = field(default_factory=list)
    added: list[Cell] = field(default_factory=list)
    removed: list[Cell] = field(default_factory=list)
    unchanged: int = 0


def _key(cell: Cell) -> tuple[str, str, str, str]:
    return (cell.suite, cell.case, cell.prompt, cell.provider)


def compare_runs(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> Comparison:
    before = {_key(cell): cell for cell in group_cells(old)}
    after = {_key(cell): cell for cell in group_cells(new)}
    comparison = Comparison()
    for key, cell in after.items():
        previous = before.get(key)
        if previous is None:
            comparison.added.append(cell)
        elif cell.pass_rate < previous.pass_rate or (
            previous.outcome == PASSED and cell.outcome != PASSED
        ):
            comparison.regressed.append((previous, cell))
        elif cell.pass_rate > previous.pass_rate:
            comparison.improved.append((previous, cell))
        else:
            comparison.unchanged += 1
    comparison.removed = [cell for key, cell in before.items() if key not in after]
    return comparison


def _state(cell: Cell) -> str:
    if len(cell.runs) > 1:
        return f"{cell.outcome} ({cell.pass_rate:.0%})"
    return cell.outcome


def format_comparison(comparison: Comparison) -> str:
    lines = []
    for title, pairs in (
        ("Regressed", comparison.regressed),
        ("Improved", comparison.improved),
    ):
        lines.append(f"{title}: {len(pairs)}")
        lines.extend(
            f"  {new.suite}: {new.name}: {_state(old)} -> {_state(new)}"
            for old, new in pairs
        )
    for title, cells in (("New", comparison.added), ("Gone", comparison.removed)):
        if cells:
            lines.append(f"{title}: {len(cells)}")
            lines.extend(
                f"  {cell.suite}: {cell.name}: {_state(cell)}" for cell in cells
            )
    lines.append(f"Unchanged: {comparison.unchanged}")
    return "\n".join(lines)
