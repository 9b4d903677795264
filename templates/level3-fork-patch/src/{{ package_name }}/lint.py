"""lint: the series, the patch files, their trailers, the overlay and .gitattributes."""

from __future__ import annotations

from .configfile import read_text
from .errors import ConfigError
from .patchfile import (
    NUMBERED,
    PATCH_START,
    line_ending_problem,
    name_problem,
    parse_patch,
    trailer_problems,
)
from .project import (
    ALLOW_REPLACE,
    DROPPED_DIR,
    SERIES,
    Project,
    read_pin,
    read_series,
)
from .worktree import allowed_replacements, corrupt_problem, overlay_files

# The lines .gitattributes must hold: patch files stay byte-exact (no end-of-line
# conversion on any platform) and concurrent additions to series merge by union.
REQUIRED_ATTRIBUTES = {
    "patches/series": {"merge=union"},
    "patches/*.patch": {"-text"},
}


def lint(project: Project) -> list[str]:
    """Every problem found, one line each; an empty list means all is well."""
    problems: list[str] = []
    try:
        read_pin(project.pin_file)
    except ConfigError as error:
        problems.append(str(error))
    problems += _series_problems(project)
    problems += _overlay_problems(project)
    problems += _attribute_problems(project)
    return problems


def _series_problems(project: Project) -> list[str]:
    problems: list[str] = []
    try:
        names = read_series(project)
    except ConfigError as error:
        return [str(error)]
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        where = f"patches/series line {position}"
        if name in seen:
            problems.append(f"{where}: {name} is listed twice")
        seen.add(name)
        problem = name_problem(name)
        if problem:
            problems.append(f"{where}: {problem}")
            continue
        if NUMBERED.match(name):
            problems.append(
                f"{where}: {name}: no numbers in front; series gives the order"
            )
        path = project.patches_dir / name
        if not path.is_file():
            problems.append(f"{where}: {name}: no such file in patches/")
            continue
        problems += [
            f"patches/{name}: {problem}"
            for problem in _patch_problems(project, path.read_bytes())
        ]
    for path in (
        sorted(project.patches_dir.iterdir()) if project.patches_dir.is_dir() else []
    ):
        # patches/.dropped/ keeps the text of patches a rebase removed from the series.
        if path.name == DROPPED_DIR and path.is_dir():
            continue
        if path.name != SERIES and path.name not in seen:
            problems.append(f"patches/{path.name}: not listed in patches/series")
    return problems


def _patch_problems(project: Project, data: bytes) -> list[str]:
    crlf = line_ending_problem(data)
    if crlf:
        return [crlf]
    if not PATCH_START.match(data):
        return [
            "does not start like a `git format-patch --zero-commit` file (run export)"
        ]
    try:
        info = parse_patch(data)
    except ValueError as error:
        return [str(error)]
    corrupt = corrupt_problem(project, data)
    return [*([corrupt] if corrupt else []), *trailer_problems(info)]


def _overlay_problems(project: Project) -> list[str]:
    files = set(overlay_files(project))
    return [
        f"overlay/{ALLOW_REPLACE}: {path}: no such file in overlay/"
        for path in sorted(allowed_replacements(project))
        if path not in files
    ]


def _attribute_problems(project: Project) -> list[str]:
    path = project.root / ".gitattributes"
    found: dict[str, set[str]] = {}
    if path.is_file():
        for line in read_text(path).splitlines():
            parts = line.split()
            if parts and not parts[0].startswith("#"):
                found.setdefault(parts[0], set()).update(parts[1:])
    return [
        f".gitattributes: needs the line `{pattern} {' '.join(sorted(wanted))}`"
        for pattern, wanted in REQUIRED_ATTRIBUTES.items()
        if not wanted <= found.get(pattern, set())
    ]
