"""The paper and what travels with it: PDF build, generated-macro check, checklist,
CITATION.cff.

The build uses latexmk (with pdflatex) or tectonic, whichever is on PATH; with neither
it says SKIP, removes an ms.pdf left from before (it would show older numbers) and
succeeds, unless strict. Before building, every \\Res... macro the paper uses must be
defined by paper/generated/numbers.tex: a number in the prose that nothing generates is
an error, not a "??" in the PDF. After it, the build fails on an overfull box wider than
`OVERFULL_LIMIT_PT` (a table running off the page), naming it, and on a figure or table
that LaTeX placed after the references.

The same inputs give the same PDF bytes: SOURCE_DATE_EPOCH (from the environment, else
the time of the last commit, else 0) and FORCE_SOURCE_DATE=1 fix every date and the
document ID that pdfTeX would take from the clock.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import configfile
from .errors import ConfigError, Error
from .tables import NUMBERS_TEX, defined_macros, used_generated_macros

PAPER_DIR = Path("paper")
MAIN_TEX = PAPER_DIR / "ms.tex"
CHECKLIST = PAPER_DIR / "checklist.md"
CITATION = Path("CITATION.cff")
PYPROJECT = Path("pyproject.toml")
ANSWERS = ("Yes", "No", "NA")
MAIN_PDF = PAPER_DIR / "ms.pdf"
MAIN_LOG = PAPER_DIR / "ms.log"
MAIN_AUX = PAPER_DIR / "ms.aux"
OVERFULL_LIMIT_PT = 2.0
REFERENCES_LABEL = "references"  # \\label{references} just before the bibliography


class PaperError(Error):
    """The paper does not build, or uses numbers nothing generates (exit 1)."""


def tex_sources(main: Path = MAIN_TEX) -> list[Path]:
    """ms.tex and the hand-written .tex files it inputs (generated/ ones excluded)."""
    found = [main]
    try:
        text = main.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{main}: missing") from None
    for name in re.findall(r"\\(?:input|include)\{([^}]+)\}", text):
        path = main.parent / (name if name.endswith(".tex") else f"{name}.tex")
        if "generated" not in path.parts and path.is_file() and path not in found:
            found.append(path)
    return found


def undefined_macros(main: Path = MAIN_TEX, numbers: Path = NUMBERS_TEX) -> list[str]:
    if not main.is_file():
        raise ConfigError(f"{main}: missing")
    try:
        defined = defined_macros(numbers.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{numbers}: missing; `tables` writes it") from None
    used: set[str] = set()
    for source in tex_sources(main):
        used |= used_generated_macros(source.read_text(encoding="utf-8"))
    return sorted(used - defined)


def check_macros(main: Path = MAIN_TEX, numbers: Path = NUMBERS_TEX) -> None:
    missing = undefined_macros(main, numbers)
    if missing:
        listed = ", ".join(f"\\{name}" for name in missing)
        raise PaperError(f"{main} uses {listed}, which {numbers} does not define")


def tex_engine() -> list[str] | None:
    if shutil.which("latexmk"):
        return [
            "latexmk",
            "-pdf",
            "-interaction=nonstopmode",
            "-halt-on-error",
            MAIN_TEX.name,
        ]
    if shutil.which("tectonic"):
        return ["tectonic", "--keep-logs", MAIN_TEX.name]
    return None


def missing_figures(main: Path = MAIN_TEX) -> list[Path]:
    """Files the paper's \\includegraphics name that do not exist (yet)."""
    missing = []
    for source in tex_sources(main):
        lines = source.read_text(encoding="utf-8").splitlines()
        code = "\n".join(re.sub(r"(?<!\\)%.*", "", line) for line in lines)
        for name in re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]+)\}", code):
            path = main.parent / name
            # Without an extension LaTeX tries its own list; any of these will do.
            candidates = (
                [path]
                if path.suffix
                else [path.with_suffix(suffix) for suffix in (".pdf", ".png", ".jpg")]
            )
            if not any(c.exists() for c in candidates) and path not in missing:
                missing.append(path)
    return missing


def source_date_epoch() -> str:
    """SOURCE_DATE_EPOCH from the environment, else the last commit's time, else 0."""
    given = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if given.isdigit():
        return given
    try:
        result = subprocess.run(
            ["git", "log", "-1", "--format=%ct"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "0"
    stamp = result.stdout.strip()
    return stamp if result.returncode == 0 and stamp.isdigit() else "0"


def overfull_boxes(log: str, limit: float = OVERFULL_LIMIT_PT) -> list[str]:
    """Each overfull box wider (or taller) than `limit` points, with what it holds."""
    found = []
    lines = log.splitlines()
    pattern = re.compile(r"^Overfull \\[hv]box \((\d+(?:\.\d+)?)pt too (?:wide|high)\)")
    for number, line in enumerate(lines):
        match = pattern.match(line)
        if match and float(match.group(1)) > limit:
            # LaTeX names lines, not the file: the last file it opened is the clue.
            opened = re.findall(r"\((\.?/?[\w./-]+\.tex)", "\n".join(lines[:number]))
            where = f", after reading {opened[-1]}" if opened else ""
            content = lines[number + 1].strip() if number + 1 < len(lines) else ""
            shown = content if content.strip("[] ") else ""
            found.append(f"{line.strip()}{where}" + (f": {shown}" if shown else ""))
    return found


def labels_after_references(aux: str) -> list[str]:
    """Figure and table labels whose page comes after the references' page."""
    pages: dict[str, int] = {}
    for name, page in re.findall(r"\\newlabel\{([^}]*)\}\{\{[^}]*\}\{(\d+)\}", aux):
        pages[name] = int(page)
    if REFERENCES_LABEL not in pages:
        return []
    last = pages[REFERENCES_LABEL]
    return sorted(
        name
        for name, page in pages.items()
        if name.startswith(("fig:", "tab:")) and page > last
    )


def remove_stale_pdf() -> bool:
    try:
        MAIN_PDF.unlink()
    except FileNotFoundError:
        return False
    return True


def build(*, strict: bool = False, overfull_limit: float = OVERFULL_LIMIT_PT) -> str:
    """Build paper/ms.pdf; a line saying what happened (or raise)."""
    check_macros()
    absent = missing_figures()
    if absent:
        listed = ", ".join(path.as_posix() for path in absent)
        raise PaperError(f"{listed}: missing; the `figures` command draws them")
    command = tex_engine()
    if command is None:
        removed = remove_stale_pdf()
        if strict:
            raise PaperError("no TeX engine found (install latexmk or tectonic)")
        return (
            "SKIP paper: no TeX engine found (install latexmk or tectonic to build it)"
            + (f"; removed {MAIN_PDF}, built from older inputs" if removed else "")
        )
    environment = {
        **os.environ,
        "SOURCE_DATE_EPOCH": source_date_epoch(),
        "FORCE_SOURCE_DATE": "1",
    }
    if command[0] == "latexmk":
        # From a clean folder: what an earlier (or killed) build left cannot change
        # the bytes, nor stop latexmk.
        subprocess.run(
            ["latexmk", "-C", MAIN_TEX.name],
            cwd=PAPER_DIR,
            capture_output=True,
            timeout=60,
            check=False,
        )
    try:
        result = subprocess.run(
            command,
            cwd=PAPER_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env=environment,
        )
    except subprocess.TimeoutExpired:
        raise PaperError(f"{command[0]} took over 10 minutes; see {MAIN_LOG}") from None
    if result.returncode != 0:
        error = first_tex_error(_read(MAIN_LOG))
        raise PaperError(
            f"{command[0]} failed (exit {result.returncode})"
            + (f": {error}" if error else "")
            + f"; see {MAIN_LOG}"
        )
    log = _read(MAIN_LOG)
    overfull = overfull_boxes(log, overfull_limit)
    if overfull:
        remove_stale_pdf()
        raise PaperError(
            f"{MAIN_LOG}: {len(overfull)} box(es) over {overfull_limit:g}pt past the "
            f"margin: {'; '.join(overfull)}"
        )
    late = labels_after_references(_read(MAIN_AUX))
    if late:
        remove_stale_pdf()
        raise PaperError(
            f"{', '.join(late)}: placed after the references; put \\clearpage before "
            "the bibliography"
        )
    return f"built {MAIN_PDF} with {command[0]}"


def first_tex_error(log: str) -> str:
    """TeX's first error message in a log (the line after its `! `), or ""."""
    for line in log.splitlines():
        if line.startswith("! "):
            return line[2:].strip()
    return ""


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


@dataclass(frozen=True)
class ChecklistItem:
    title: str
    answer: str
    justification: str


def read_checklist(path: Path = CHECKLIST) -> list[ChecklistItem]:
    """`## <question>` sections, each with an answer [Yes|No|NA] and a justification."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing") from None
    items = []
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        title = section.splitlines()[0].strip()
        answer = re.search(r"^\*\*Answer:\*\*\s*\[([^\]]*)\]", section, re.MULTILINE)
        justification = re.search(
            r"^\*\*Justification:\*\*(.*)", section, re.MULTILINE | re.DOTALL
        )
        items.append(
            ChecklistItem(
                title,
                answer.group(1).strip() if answer else "",
                " ".join(justification.group(1).split()) if justification else "",
            )
        )
    return items


def unanswered(items: list[ChecklistItem]) -> list[str]:
    """Questions without a Yes/No/NA answer, or without a justification."""
    problems = []
    for item in items:
        if item.answer not in ANSWERS:
            problems.append(
                f"{item.title}: answer [{item.answer}] (expected Yes, No or NA)"
            )
        elif not item.justification:
            problems.append(f"{item.title}: no justification")
    return problems


def paper_sections(main: Path = MAIN_TEX) -> dict[str, str]:
    """Each \\section (or subsection) of the paper and the text up to the next one."""
    text = "\n".join(source.read_text(encoding="utf-8") for source in tex_sources(main))
    code = "\n".join(re.sub(r"(?<!\\)%.*", "", line) for line in text.splitlines())
    parts = re.split(r"\\(?:sub)*section\*?\{([^}]*)\}", code)
    return {
        parts[i].strip(): parts[i + 1].split("\\bibliography")[0].strip()
        for i in range(1, len(parts) - 1, 2)
    }


_SECTION_NAMED = re.compile(
    r"\b[Ss]ection ([A-Z][\w-]*(?: [A-Z][\w-]*)*)"
    r"|(?:\bthe|paper's) ([A-Z][\w-]*) section\b"
)


def misplaced_claims(items: list[ChecklistItem], sections: dict[str, str]) -> list[str]:
    """Justifications that name a paper section the paper lacks, or leaves empty; and a
    Limitations answered Yes that names no section."""
    problems = []
    for item in items:
        named = [a or b for a, b in _SECTION_NAMED.findall(item.justification)]
        for name in named:
            if name not in sections:
                have = ", ".join(sections) or "none"
                problems.append(
                    f"{item.title}: names the section {name}, which the paper lacks "
                    f"(it has {have})"
                )
            elif not sections[name]:
                problems.append(f"{item.title}: the section {name} is empty")
        if "limitations" in item.title.lower() and item.answer == "Yes" and not named:
            problems.append(
                f"{item.title}: answered Yes; name the section that states them "
                "(Section <Name>)"
            )
    return problems


def check_checklist(path: Path = CHECKLIST, main: Path = MAIN_TEX) -> int:
    items = read_checklist(path)
    if not items:
        raise ConfigError(f"{path}: no '## ' questions found")
    problems = unanswered(items)
    if not problems and main.is_file():
        problems = misplaced_claims(items, paper_sections(main))
    if problems:
        raise PaperError(f"{path}: {len(problems)} unanswered: " + "; ".join(problems))
    return len(items)


CFF_REQUIRED = ("cff-version", "message", "title", "authors")


def project_version(path: Path = PYPROJECT) -> str:
    """[project] version of pyproject.toml (by pattern: Python 3.10 has no tomllib)."""
    text = path.read_text(encoding="utf-8")
    project = re.search(
        r"^\[project\]\s*$(.*?)(?=^\[)", text + "\n[", re.MULTILINE | re.DOTALL
    )
    match = re.search(
        r'^version\s*=\s*"([^"]+)"', project.group(1) if project else "", re.MULTILINE
    )
    if match is None:
        raise ConfigError(f"{path}: no version in [project]")
    return match.group(1)


def check_citation(path: Path = CITATION, pyproject: Path = PYPROJECT) -> list[str]:
    """What is wrong with CITATION.cff: CFF 1.2.0's required fields, the version."""
    if not path.exists():
        raise ConfigError(f"{path}: missing")
    # The settings files' reader: one line for a folder, bytes that are not UTF-8, a
    # key given twice or aliases that expand too far.
    data = configfile.read_yaml(path)
    if not isinstance(data, dict):
        return ["the file is not a mapping"]
    problems = [f"{key}: required" for key in CFF_REQUIRED if not data.get(key)]
    if data.get("cff-version") not in (None, "1.2.0"):
        problems.append(f"cff-version: {data['cff-version']!r}, expected '1.2.0'")
    for where, authors in (
        ("authors", data.get("authors")),
        (
            "preferred-citation.authors",
            (data.get("preferred-citation") or {}).get("authors"),
        ),
    ):
        if authors is None and where != "authors":
            continue
        if not isinstance(authors, list) or not authors:
            problems.append(f"{where}: expected a list of persons or entities")
            continue
        for number, author in enumerate(authors, 1):
            if not isinstance(author, dict) or not (
                author.get("family-names")
                or author.get("given-names")
                or author.get("name")
            ):
                problems.append(
                    f"{where}[{number}]: needs family-names/given-names or name"
                )
    released = data.get("date-released")
    if released is not None and not isinstance(released, datetime.date):
        try:
            datetime.date.fromisoformat(str(released))
        except ValueError:
            problems.append(f"date-released: {released!r}, expected YYYY-MM-DD")
    version = project_version(pyproject)
    if str(data.get("version")) != version:
        problems.append(
            f"version: {data.get('version')!r}, but {pyproject} says {version!r}"
        )
    preferred = data.get("preferred-citation")
    if preferred is not None and (
        not isinstance(preferred, dict)
        or not preferred.get("type")
        or not preferred.get("title")
    ):
        problems.append("preferred-citation: needs at least type, title and authors")
    return problems
