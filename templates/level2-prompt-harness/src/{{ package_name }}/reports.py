"""Reports of a run: a summary table for the terminal, results.json for machines (and
`compare`), junit.xml for CI, and one self-contained report.html for people: a matrix
of cases by prompt x provider, the answer in each cell, with the changes since a
previous run."""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from . import jsonvalue
from .atomic import write_bytes_atomic
from .compare import Comparison, compare_runs
from .errors import ConfigError, Error
from .results import ERRORED, FAILED, OUTCOMES, PASSED, Cell, cell_key, group_cells

MARKS = {PASSED: "PASS", FAILED: "FAIL", ERRORED: "ERROR"}
REPORT_FILES = ("results.json", "junit.xml", "report.html")


def _first_problem(run: dict[str, Any]) -> str:
    if run.get("error"):
        return str(run["error"])
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
        return "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def skipped_reasons(results: list[dict[str, Any]]) -> Counter[str]:
    return Counter(
        f"{a['assertion']}: {a['reason']}"
        for run in results
        for a in run["assertions"]
        if a.get("skipped")
    )


def metric_totals(results: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """For each named metric: its assertions that passed, and how many were checked
    (skipped ones left out)."""
    totals: dict[str, tuple[int, int]] = {}
    for result in results:
        for assertion in result.get("assertions", []):
            name = assertion.get("metric")
            if name and not assertion.get("skipped"):
                passed, total = totals.get(name, (0, 0))
                totals[name] = (passed + bool(assertion["passed"]), total + 1)
    return totals


def summary_text(results: list[dict[str, Any]]) -> str:
    """One row per suite x prompt x provider, so a prompt A/B shows side by side."""
    cells = group_cells(results)
    groups: dict[tuple[str, str, str], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.suite, cell.prompt, cell.provider), []).append(cell)
    rows = []
    for (suite, prompt, provider), members in groups.items():
        counts = Counter(cell.outcome for cell in members)
        runs = [run for cell in members for run in cell.runs]
        rate = sum(run["outcome"] == PASSED for run in runs) / len(runs)
        rows.append(
            [
                suite,
                prompt,
                provider,
                *(str(counts[o]) for o in OUTCOMES),
                f"{rate:.0%}",
            ]
        )
    header = ["suite", "prompt", "provider", "passed", "failed", "errored", "pass rate"]
    text = _table(header, rows)
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
    skipped = skipped_reasons(results)
    if skipped:
        lines = ["Skipped assertions (not counted):"]
        lines.extend(
            f"  {count} x {reason}" for reason, count in sorted(skipped.items())
        )
        text += "\n\n" + "\n".join(lines)
    metrics = metric_totals(results)
    if metrics:
        rows = [
            [name, str(passed), str(total), f"{passed / total:.0%}"]
            for name, (passed, total) in sorted(metrics.items())
        ]
        text += "\n\nMetrics (assertions that passed, over all cases):\n"
        text += _table(["metric", "passed", "of", "share"], rows)
    total = Counter(cell.outcome for cell in cells)
    text += (
        f"\n\n{len(cells)} cases: {total[PASSED]} passed,"
        f" {total[FAILED]} failed, {total[ERRORED]} errored"
    )
    return text


def results_document(
    results: list[dict[str, Any]], meta: dict[str, Any]
) -> dict[str, Any]:
    counts = Counter(cell.outcome for cell in group_cells(results))
    return {
        "meta": meta,
        "summary": {outcome: counts[outcome] for outcome in OUTCOMES},
        "results": results,
    }


def results_json(document: dict[str, Any]) -> bytes:
    """results.json's bytes, as write_json_atomic writes them: indented, finite."""
    try:
        text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError as exc:  # a NaN or an infinity: no reader could take it
        raise Error(f"results.json: {exc}") from None
    return (text + "\n").encode("utf-8")


def load_results(path: Path) -> dict[str, Any]:
    """A results.json written by `eval`; ConfigError saying what is wrong if not."""
    try:
        document = jsonvalue.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(
            f"{path}: not a results.json written by `eval` ({exc})"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("results"), list):
        raise ConfigError(
            f"{path}: not a results.json written by `eval` (no 'results' list)"
        )
    return document


def _run_details(run: dict[str, Any]) -> str:
    lines = [f"repeat {run['repeat']}: {run['outcome']}"]
    if run.get("error"):
        lines.append(f"  error: {run['error']}")
    for assertion in run["assertions"]:
        mark = (
            "-" if assertion.get("skipped") else ("x" if assertion["passed"] else " ")
        )
        lines.append(f"  [{mark}] {assertion['assertion']}: {assertion['reason']}")
    for call in run.get("tool_calls") or []:
        lines.append(f"  tool call: {call['name']}({call['arguments']})")
    if run.get("output") is not None:
        lines.append("  output:")
        lines.extend(f"    {line}" for line in run["output"].splitlines())
    return "\n".join(lines)


def render_junit(results: list[dict[str, Any]]) -> bytes:
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
                runs = len(cell.runs)
                rate = (
                    f"pass rate {cell.pass_rate:.0%} over {runs} runs: "
                    if runs > 1
                    else ""
                )
                tag = "failure" if cell.outcome == FAILED else "error"
                problem = ET.SubElement(case, tag, message=rate + _cell_problem(cell))
                problem.text = "\n\n".join(_run_details(run) for run in cell.runs)
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


HTML_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #1b1f23; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .3rem; }
.meta { color: #57606a; margin: .2rem 0; }
.controls { position: sticky; top: 0; background: #fff; padding: .5rem 0;
  border-bottom: 1px solid #d0d7de; z-index: 2; display: flex; gap: 1.2rem; }
table.matrix { border-collapse: collapse; margin: .5rem 0 1rem; table-layout: fixed; }
.matrix th, .matrix td { border: 1px solid #d0d7de; padding: .35rem .5rem;
  text-align: left; vertical-align: top; }
.matrix thead th { background: #f6f8fa; min-width: 18rem; }
.matrix th.case { min-width: 11rem; max-width: 16rem; background: #f6f8fa;
  font-weight: 600; word-break: break-word; }
.case .desc { display: block; font-weight: 400; color: #57606a; }
td.passed { background: #f0fff4; } td.failed { background: #fff5f5; }
td.errored { background: #fffbe6; }
table.overview { border-collapse: collapse; margin: .6rem 0; }
.overview th, .overview td { border: 1px solid #d0d7de; padding: .2rem .6rem; }
.overview td.passed, .overview td.failed, .overview td.errored { text-align: right; }
.badge { font-weight: 700; font-size: 12px; border-radius: 4px; padding: 0 .35rem; }
.passed .badge { color: #116329; } .failed .badge { color: #a40e26; }
.errored .badge { color: #7d4e00; }
.changed { font-size: 12px; font-weight: 600; margin-left: .4rem; color: #7d4e00; }
.regressed { color: #a40e26; } .improved { color: #116329; }
pre { background: #fff; border: 1px solid #eaeef2; padding: .4rem; margin: .3rem 0;
  white-space: pre-wrap; word-break: break-word; max-height: 14rem; overflow: auto;
  font-size: 12.5px; }
ul.asserts { list-style: none; padding: 0; margin: .2rem 0; font-size: 12.5px; }
li.failed-assertion { color: #a40e26; } li.errored-assertion { color: #7d4e00; }
li.skipped-assertion { color: #57606a; }
details { font-size: 12.5px; } summary { cursor: pointer; color: #0969da; }
.tool { font-family: ui-monospace, monospace; font-size: 12.5px; }
body.only-failures tr[data-outcome=passed] { display: none; }
tr.hidden { display: none; }
"""

HTML_SCRIPT = """
var onlyFailures = document.getElementById('only-failures');
onlyFailures.addEventListener('change', function (e) {
  document.body.classList.toggle('only-failures', e.target.checked);
});
if (location.hash === '#failures') {  // a link that opens on the failures alone
  onlyFailures.checked = true;
  document.body.classList.add('only-failures');
}
document.getElementById('search').addEventListener('input', function (e) {
  var text = e.target.value.toLowerCase();
  document.querySelectorAll('tr[data-case]').forEach(function (row) {
    var id = row.dataset.case.toLowerCase();
    row.classList.toggle('hidden', text && id.indexOf(text) < 0);
  });
});
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell_label(cell: Cell) -> str:
    label = MARKS[cell.outcome]
    if len(cell.runs) > 1:
        label += f" {cell.pass_rate:.0%}"
    scores = [run["score"] for run in cell.runs if run.get("score") is not None]
    if scores:
        label += f" · {sum(scores) / len(scores):.2f}"
    return label


def _assertion_items(run: dict[str, Any], *, only_problems: bool) -> str:
    items = []
    for a in run["assertions"]:
        if a.get("skipped"):
            state, mark = "skipped", "-"
        elif a["passed"]:
            state, mark = "passed", "✓"
        else:
            state, mark = ("errored", "!") if a["error"] else ("failed", "✗")
        if only_problems and state in ("passed", "skipped"):
            continue
        text = f"{mark} {a['assertion']}: {a['reason']}"
        items.append(f"<li class={state}-assertion>{_e(text)}</li>")
    return f"<ul class=asserts>{''.join(items)}</ul>" if items else ""


def _run_html(run: dict[str, Any]) -> str:
    facts = []
    for key, unit in (
        ("latency_ms", " ms"),
        ("prompt_tokens", " in"),
        ("completion_tokens", " out"),
        ("cost_usd", " USD"),
    ):
        if run.get(key) is not None:
            facts.append(f"{run[key]:g}{unit}")
    if run.get("finish_reason"):
        facts.append(f"finish {run['finish_reason']}")
    if run.get("cached"):
        facts.append("from cache")
    parts = [
        f"<p class=meta>repeat {_e(run['repeat'])}: {_e(run['outcome'])}"
        f" · {_e(', '.join(facts))}</p>"
    ]
    parts.append(_assertion_items(run, only_problems=False))
    for message in run["messages"]:
        parts.append(
            f"<p class=meta>{_e(message['role'])}</p>"
            f"<pre>{_e(message['content'])}</pre>"
        )
    return "".join(parts)


def _cell_html(cell: Cell, before: Cell | None) -> str:
    run = next((r for r in cell.runs if r["outcome"] != PASSED), cell.runs[0])
    change = ""
    if before is not None and before.outcome != cell.outcome:
        kind = "improved" if cell.outcome == PASSED else "changed"
        kind = "regressed" if before.outcome == PASSED else kind
        change = (
            f"<span class='changed {kind}'>{kind}: was {MARKS[before.outcome]}</span>"
        )
    parts = [f"<span class=badge>{_e(_cell_label(cell))}</span>{change}"]
    if run.get("error"):
        parts.append(f"<pre class=error>{_e(run['error'])}</pre>")
    if run.get("output"):
        parts.append(f"<pre class=output>{_e(run['output'])}</pre>")
    for call in run.get("tool_calls") or []:
        parts.append(
            f"<div class=tool>→ {_e(call['name'])}({_e(call['arguments'])})</div>"
        )
    parts.append(_assertion_items(run, only_problems=True))
    previous = before.runs[0].get("output") if before is not None else None
    if previous is not None and previous != run.get("output"):
        parts.append(
            f"<details class=previous><summary>previous output</summary>"
            f"<pre>{_e(previous)}</pre></details>"
        )
    details = "".join(_run_html(r) for r in cell.runs)
    parts.append(f"<details><summary>details</summary>{details}</details>")
    return f"<td class='cell {cell.outcome}'>{''.join(parts)}</td>"


def _diff_summary(comparison: Comparison, baseline: str) -> str:
    def items(pairs: list[tuple[Cell, Cell]]) -> str:
        return "".join(
            f"<li>{_e(new.suite)}: {_e(new.name)}:"
            f" {MARKS[old.outcome]} → {MARKS[new.outcome]}</li>"
            for old, new in pairs
        )

    return (
        f"<section class=diff><h2>Changes since {_e(baseline)}</h2>"
        f"<p class=meta>{len(comparison.regressed)} regressed,"
        f" {len(comparison.improved)} improved, {len(comparison.added)} new,"
        f" {len(comparison.removed)} gone, {comparison.unchanged} unchanged</p>"
        f"<ul class=regressed>{items(comparison.regressed)}</ul>"
        f"<ul class=improved>{items(comparison.improved)}</ul></section>"
    )


def render_html(
    results: list[dict[str, Any]],
    meta: dict[str, Any],
    baseline: list[dict[str, Any]] | None = None,
    baseline_name: str = "",
) -> str:
    cells = group_cells(results)
    total = Counter(cell.outcome for cell in cells)
    facts = (
        f"{meta.get('run', '')} · {meta.get('started', '')}"
        f" · mode {meta.get('mode', '')}"
        f" · repeat {meta.get('repeat', 1)} · {len(cells)} cells:"
        f" {total[PASSED]} passed, {total[FAILED]} failed, {total[ERRORED]} errored"
    )
    body = [
        "<h1>Prompt evaluation report</h1>",
        f"<p class=meta>{_e(facts)}</p>",
        "<div class=controls><label><input type=checkbox id=only-failures>"
        " only cases that did not pass</label>"
        "<label>case <input type=search id=search title='part of a case id'>"
        "</label></div>",
    ]
    before: dict[tuple[str, str, str, str], Cell] = {}
    if baseline is not None:
        body.append(_diff_summary(compare_runs(baseline, results), baseline_name))
        before = {cell_key(c.runs[0]): c for c in group_cells(baseline)}
    suites: dict[str, list[Cell]] = {}
    for cell in cells:
        suites.setdefault(cell.suite, []).append(cell)
    overview = ["<table class=overview><thead><tr><th>suite</th>"]
    overview.extend(f"<th>{outcome}</th>" for outcome in OUTCOMES)
    overview.append("</tr></thead><tbody>")
    for suite, members in suites.items():
        counts = Counter(cell.outcome for cell in members)
        overview.append(
            f"<tr><td><a href='#suite-{_e(suite)}'>{_e(suite)}</a></td>"
            + "".join(f"<td class={o}>{counts[o]}</td>" for o in OUTCOMES)
            + "</tr>"
        )
    overview.append("</tbody></table>")
    body.append("".join(overview))
    descriptions = meta.get("descriptions") or {}
    for suite, members in suites.items():
        columns = list(dict.fromkeys((cell.prompt, cell.provider) for cell in members))
        rows: dict[str, dict[tuple[str, str], Cell]] = {}
        for cell in members:
            rows.setdefault(cell.case, {})[(cell.prompt, cell.provider)] = cell
        body.append(f"<h2 id='suite-{_e(suite)}'>{_e(suite)}</h2>")
        if descriptions.get(suite):
            body.append(f"<p class=meta>{_e(descriptions[suite])}</p>")
        head = ["<th class=case>case</th>"]
        for prompt, provider in columns:
            column = [
                c for c in members if (c.prompt, c.provider) == (prompt, provider)
            ]
            passed = sum(c.outcome == PASSED for c in column)
            head.append(
                f"<th data-prompt='{_e(prompt)}' data-provider='{_e(provider)}'>"
                f"{_e(prompt)}<br><span class=meta>@ {_e(provider)} ·"
                f" {passed}/{len(column)} passed</span></th>"
            )
        lines = [
            f"<table class=matrix data-suite='{_e(suite)}'><thead><tr>{''.join(head)}"
            "</tr></thead><tbody>"
        ]
        for case, row in rows.items():
            # The row's worst outcome: the failures filter hides rows that all passed.
            outcome = max((c.outcome for c in row.values()), key=OUTCOMES.index)
            description = next(iter(row.values())).runs[0].get("description") or ""
            desc = f"<span class=desc>{_e(description)}</span>" if description else ""
            cells_html = [
                _cell_html(row[column], before.get((suite, case, *column)))
                if column in row
                else "<td></td>"
                for column in columns
            ]
            lines.append(
                f"<tr data-case='{_e(case)}' data-outcome={outcome}>"
                f"<th class=case>{_e(case)}{desc}</th>{''.join(cells_html)}</tr>"
            )
        lines.append("</tbody></table>")
        body.extend(lines)
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>Prompt evaluation report</title><style>{HTML_STYLE}</style></head>"
        f"<body>\n{chr(10).join(body)}\n<script>{HTML_SCRIPT}</script></body></html>\n"
    )


def write_reports(
    results: list[dict[str, Any]],
    meta: dict[str, Any],
    directory: Path,
    baseline: list[dict[str, Any]] | None = None,
    baseline_name: str = "",
    *,
    copy_to: Path | None = None,
) -> list[Path]:
    """results.json, junit.xml and report.html in `directory`, each written whole,
    and the same bytes in `copy_to` (the latest run, where CI and people look)."""
    document = results_json(results_document(results, meta))
    junit = render_junit(results)
    page = render_html(results, meta, baseline, baseline_name).encode("utf-8")
    for folder in (directory, copy_to) if copy_to is not None else (directory,):
        write_bytes_atomic(folder / REPORT_FILES[0], document)
        write_bytes_atomic(folder / REPORT_FILES[1], junit)
        write_bytes_atomic(folder / REPORT_FILES[2], page)
    return [directory / name for name in REPORT_FILES]
