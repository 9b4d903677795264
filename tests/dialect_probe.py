"""Run inside a generated project's virtual environment: checks its command line speaks
the house dialect (docs/contributing.md, "House style") and prints what it found.

    <venv>/bin/python dialect_probe.py <package>

Every sub-command (nested ones too) must take -q/--quiet and -v/--verbose, refuse both at
once with exit 2, and be handled by a function named cmd_<verb>; `main([])` must print the
usage and exit 2 rather than fail, and `main(["--version"])` print the version. Exits 1
listing every sub-command that does not.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys


def leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(leaves(sub, (*path, name)))
    if not found and path:
        found.append((path, parser))
    return found


def main() -> int:
    package = sys.argv[1]
    cli = importlib.import_module(f"{package}.cli")
    problems = []
    commands = leaves(cli.build_parser())
    if not commands:
        problems.append("no sub-commands")
    for path, parser in commands:
        name = " ".join(path)
        text = parser.format_help()
        for option in ("--quiet", "--verbose"):
            if option not in text:
                problems.append(f"{name}: no {option}")
        handler = parser.get_default("handler")
        if handler is None or not handler.__name__.startswith("cmd_"):
            problems.append(f"{name}: handler {handler!r} is not cmd_<verb>")
        error = io.StringIO()
        with contextlib.redirect_stderr(error):
            try:
                code = cli.main([*path, "--quiet", "--verbose"])
            except SystemExit as stop:
                code = stop.code
        if code != 2 or "not allowed with" not in error.getvalue():
            problems.append(f"{name}: --quiet --verbose gave exit {code}, not 2")
    error = io.StringIO()
    with contextlib.redirect_stderr(error):
        try:
            code = cli.main([])
        except SystemExit as stop:
            code = stop.code
    if code != 2 or "usage:" not in error.getvalue():
        problems.append(f"no sub-command: exit {code}, not 2 with the usage")
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        try:
            code = cli.main(["--version"])
        except SystemExit as stop:
            code = stop.code
    if code != 0 or not output.getvalue().startswith(f"{cli.PROG} "):
        problems.append(f"--version: exit {code}, {output.getvalue()!r}")
    for problem in problems:
        print(problem)
    print(f"{len(commands)} sub-commands checked")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
