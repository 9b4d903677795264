"""Reports of a run: a live progress line and a summary table for the terminal,
results.json for machines (and `compare`), junit.xml for CI, and one self-contained
report.html for people."""

from __future__ import annotations

import hashlib
import html
import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from .results import ERRORED, FAILED, OUTCOMES, PASSED, CaseResult, Cell, group_cells

MARKS = {PASSED: "PASS", FAILED: "FAIL", ERRORED: "ERROR"}


class Progress:
    """One line, redrawn in place; silent when stderr is no terminal (CI, tests)."""

    def __init__(
        self, total: int, stream: TextIO | None = None, enabled: bool | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = total
        self.counts: Counter[str] = Counter()

    def update(self, result: CaseResult) -> None:
        self.counts[result.outcome] += 1
        if not self.enabled:
            return
        done = sum(self.counts.values())
        width = 30
        filled = round(width * done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(
            f"\r[{bar}] {done}/{self.total}  passed {self.counts[PASSED]}"
            f"  failed {self.counts[FAILED]}  errored {self.counts[ERRORED]}"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _first_problem(run: dict[str, Any]) -> str:
    if run.get("error"):
        return run["error"]
    failed = [a for a in run["assertions"] if not a["passed"]]
    if failed:
        first = failed[0]
        score = f"score {run['score']:.2f} < {run['threshold']:g}"
        return f"{first['assertion']}: {first['reason']} ({score})"
    return ""


def _cell_problem(cell: Cell) -> str:
    for run in cell.runs:
        if run["outcome"] != PASSED:
            return _first_problem(run)
    return ""


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(
            value.ljust(width) for value, width in zip(row, widths, strict=True)
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def summary_text(results: list[dict[str, Any]]) -> str:
    cells = group_cells(results)
    groups: dict[tuple[str, str], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.suite, cell.provider), []).append(cell)
    rows = []
    for (suite, provider), members in groups.items():
        counts = Counter(cell.outcome for cell in members)
        runs = [run for cell in members for run in cell.runs]
        rate = sum(run["outcome"] == PASSED for run in runs) / len(runs)
        rows.append(
            [
                suite,
                provider,
                str(counts[PASSED]),
                str(counts[FAILED]),
                str(counts[ERRORED]),
                f"{rate:.0%}",
            ]
        )
    text = _table(
        ["suite", "provider", "passed", "failed", "errored", "pass rate"], rows
    )
    not_passed = [cell for cell in cells if cell.outcome != PASSED]
    if not_passed:
        lines = ["Not passed:"]
        for cell in sorted(not_passed, key=lambda c: OUTCOMES.index(c.outcome)):
            rate = f" pass rate {cell.pass_rate:.0%}" if len(cell.runs) > 1 else ""
            lines.append(
                f"  {MARKS[cell.outcome]:5} {cell.suite}: {cell.name}{rate}:"
                f" {_cell_problem(cell)}"
            )
        text += "\n\n" + "\n".join(lines)
    total = Counter(cell.outcome for cell in cells)
    text += (
        f"\n\n{len(cells)} cases: {total[PASSED]} passed,"
        f" {total[FAILED]} failed, {total[ERRORED]} errored"
    )
    return text


def write_json(results: list[dict[str, Any]], meta: dict[str, Any], path: Path) -> None:
    counts = Counter(cell.outcome for cell in group_cells(results))
    document = {
        "meta": meta,
        "summary": {outcome: counts[outcome] for outcome in OUTCOMES},
        "results": results,
    }
    path.write_text(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _run_details(run: dict[str, Any]) -> str:
    lines = [f"repeat {run['repeat']}: {run['outcome']}"]
    if run.get("error"):
        lines.append(f"  error: {run['error']}")
    for assertion in run["assertions"]:
        lines.append(
            f"  [{'x' if assertion['passed'] else ' '}] {assertion['assertion']}:"
            f" {assertion['reason']}"
        )
    if run.get("output") is not None:
        lines.append("  output:")
        lines.extend(f"    {line}" for line in run["output"].splitlines())
    return "\n".join(lines)


def write_junit(results: list[dict[str, Any]], path: Path) -> None:
    root = ET.Element("testsuites", name="prompt evals")
    by_suite: dict[str, list[Cell]] = {}
    for cell in group_cells(results):
        by_suite.setdefault(cell.suite, []).append(cell)
    for suite, cells in by_suite.items():
        counts = Counter(cell.outcome for cell in cells)
        element = ET.SubElement(
            root,
            "testsuite",
            name=suite,
            tests=str(len(cells)),
            failures=str(counts[FAILED]),
            errors=str(counts[ERRORED]),
            skipped="0",
        )
        for cell in cells:
            seconds = sum((run.get("latency_ms") or 0) for run in cell.runs) / 1000
            case = ET.SubElement(
                element,
                "testcase",
                classname=f"{suite}.{cell.prompt}",
                name=f"{cell.case} @ {cell.provider}",
                time=f"{seconds:.3f}",
            )
            if cell.outcome != PASSED:
                rate = (
                    f"pass rate {cell.pass_rate:.0%} over {len(cell.runs)} runs: "
                    if len(cell.runs) > 1
                    else ""
                )
                tag = "failure" if cell.outcome == FAILED else "error"
                problem = ET.SubElement(case, tag, message=rate + _cell_problem(cell))
                problem.text = "\n\n".join(_run_details(run) for run in cell.runs)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


HTML_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #1b1f23; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left; }
td { vertical-align: top; }
th { background: #f6f8fa; }
.passed { background: #dafbe1; }
.failed { background: #ffebe9; }
.errored { background: #fff8c5; }
a.cell { color: inherit; text-decoration: none; display: block; }
details { border: 1px solid #d0d7de; border-radius: 6px; margin: .5rem 0; }
details { padding: .4rem .8rem; }
summary { cursor: pointer; font-weight: 600; }
pre { background: #f6f8fa; padding: .6rem; margin: .3rem 0; }
pre { white-space: pre-wrap; word-break: break-word; }
.meta { color: #57606a; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _td(value: Any) -> str:
    return f"<td>{_e(value)}</td>"


def _labelled_pre(label: str, text: str) -> str:
    return f"<p><strong>{_e(label)}</strong></p><pre>{_e(text)}</pre>"


def _anchor(cell: Cell) -> str:
    key = "\0".join((cell.suite, cell.case, cell.prompt, cell.provider))
    return "cell-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]


def _cell_label(cell: Cell) -> str:
    label = MARKS[cell.outcome]
    if len(cell.runs) > 1:
        label += f" {cell.pass_rate:.0%}"
    scores = [run["score"] for run in cell.runs if run.get("score") is not None]
    if scores:
        label += f" · score {sum(scores) / len(scores):.2f}"
    return label


def _html_run(run: dict[str, Any]) -> str:
    parts = [f"<h4>repeat {_e(run['repeat'])}: {_e(run['outcome'])}</h4>"]
    facts = []
    for key, unit in (
        ("latency_ms", " ms"),
        ("prompt_tokens", ""),
        ("completion_tokens", ""),
        ("cost_usd", " USD"),
    ):
        if run.get(key) is not None:
            facts.append(f"{key}: {run[key]:g}{unit}")
    if run.get("cached"):
        facts.append("from cache")
    if facts:
        parts.append(f"<p class=meta>{_e(', '.join(facts))}</p>")
    if run.get("error"):
        parts.append(f"<p><strong>Error:</strong> {_e(run['error'])}</p>")
    if run["assertions"]:
        rows = []
        for a in run["assertions"]:
            state = PASSED if a["passed"] else (ERRORED if a["error"] else FAILED)
            cells = [MARKS[state], a["assertion"], a["weight"], a["reason"]]
            row = "".join(_td(cell) for cell in cells)
            rows.append(f"<tr class={state}>{row}</tr>")
        header = "<tr><th></th><th>assertion</th><th>weight</th><th>detail</th></tr>"
        parts.append(f"<table>{header}{''.join(rows)}</table>")
    for message in run["messages"]:
        parts.append(_labelled_pre(message["role"], message["content"]))
    if run.get("output") is not None:
        parts.append(_labelled_pre("response", run["output"]))
    return "\n".join(parts)


def render_html(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    cells = group_cells(results)
    order = {outcome: index for index, outcome in enumerate((ERRORED, FAILED, PASSED))}
    total = Counter(cell.outcome for cell in cells)
    facts = (
        f"{meta.get('started', '')} · mode {meta.get('mode', '')}"
        f" · repeat {meta.get('repeat', 1)} · {len(cells)} cases:"
        f" {total[PASSED]} passed, {total[FAILED]} failed, {total[ERRORED]} errored"
    )
    body = ["<h1>Prompt evaluation report</h1>", f"<p class=meta>{_e(facts)}</p>"]
    suites: dict[str, list[Cell]] = {}
    for cell in cells:
        suites.setdefault(cell.suite, []).append(cell)
    for suite, members in suites.items():
        providers = list(dict.fromkeys(cell.provider for cell in members))
        rows: dict[tuple[str, str], dict[str, Cell]] = {}
        for cell in members:
            rows.setdefault((cell.case, cell.prompt), {})[cell.provider] = cell

        def worst(row: dict[str, Cell]) -> int:
            return min(order[cell.outcome] for cell in row.values())

        body.append(f"<h2>{_e(suite)}</h2>")
        header = "".join(f"<th>{_e(provider)}</th>" for provider in providers)
        lines = [f"<table><tr><th>case</th><th>prompt</th>{header}</tr>"]
        for (case, prompt), row in sorted(
            rows.items(), key=lambda item: worst(item[1])
        ):
            cells_html = []
            for provider in providers:
                cell = row.get(provider)
                if cell is None:
                    cells_html.append("<td></td>")
                    continue
                label = _e(_cell_label(cell))
                link = f"<a class=cell href='#{_anchor(cell)}'>{label}</a>"
                cells_html.append(f"<td class={cell.outcome}>{link}</td>")
            lines.append(f"<tr>{_td(case)}{_td(prompt)}{''.join(cells_html)}</tr>")
        lines.append("</table>")
        body.extend(lines)
        for cell in sorted(members, key=lambda c: order[c.outcome]):
            opened = " open" if cell.outcome != PASSED else ""
            body.append(
                f"<details id='{_anchor(cell)}'{opened}><summary class={cell.outcome}>"
                f"{_e(MARKS[cell.outcome])} {_e(cell.name)}</summary>"
                + "\n".join(_html_run(run) for run in cell.runs)
                + "</details>"
            )
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>Prompt evaluation report</title><style>{HTML_STYLE}</style></head>"
        f"<body>\n{chr(10).join(body)}\n</body></html>\n"
    )


def write_html(results: list[dict[str, Any]], meta: dict[str, Any], path: Path) -> None:
    path.write_text(render_html(results, meta), encoding="utf-8")


def write_reports(
    results: list[dict[str, Any]], meta: dict[str, Any], directory: Path
) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [
        directory / "results.json",
        directory / "junit.xml",
        directory / "report.html",
    ]
    write_json(results, meta, paths[0])
    write_junit(results, paths[1])
    write_html(results, meta, paths[2])
    return paths
