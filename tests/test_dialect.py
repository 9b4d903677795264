"""One command-line dialect across the levels, read from the template's sources.

docs/contributing.md ("House style") is the rule; these checks need no rendering, so
they run in the fast subset. The same rule is checked at run time on every rendered
project by tests/dialect_probe.py (test_generated_projects.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import levels
from conftest import LEVELS

ROOT = Path(__file__).resolve().parent.parent


def sources(level: int) -> dict[str, str]:
    """The level's package modules (not its tests), by file name."""
    package = levels.folder(level) / "src" / "{{ package_name }}"
    return {
        path.name.removesuffix(".jinja"): path.read_text(encoding="utf-8")
        for path in sorted(package.rglob("*.py*"))
    }


@pytest.mark.parametrize("level", LEVELS)
def test_main_is_run_cli_on_the_parser(level: int) -> None:
    cli = sources(level)["cli.py"]
    assert re.search(r"return run_cli\(build_parser\(\), argv\)", cli), (
        f"level {level}: main() must be `return run_cli(build_parser(), argv)`"
    )


@pytest.mark.parametrize("level", LEVELS)
def test_handlers_are_cmd_verb(level: int) -> None:
    cli = sources(level)["cli.py"]
    handlers = re.findall(r"set_defaults\(\s*handler=([A-Za-z_][\w.]*)", cli)
    assert handlers, f"level {level}: no set_defaults(handler=...) in cli.py"
    # A builder that takes the handler as an argument is checked by name at run time,
    # on the rendered project (dialect_probe.py); here, the names written out.
    wrong = [
        name
        for name in handlers
        if name != "handler" and not name.rpartition(".")[2].startswith("cmd_")
    ]
    assert not wrong, f"level {level}: handlers not named cmd_<verb>: {wrong}"


@pytest.mark.parametrize("level", LEVELS)
def test_exit_codes_come_from_the_one_table(level: int) -> None:
    for name, text in sources(level).items():
        if name == "errors.py":
            continue
        own = re.findall(r"^\s*(EXIT_[A-Z_]+)\s*=", text, re.MULTILINE)
        assert not own, f"level {level} {name}: defines its own exit code {own}"
        literal = re.findall(r"exit_code\s*=\s*\d+", text)
        assert not literal, f"level {level} {name}: {literal}; use the errors.py kinds"


@pytest.mark.parametrize("level", LEVELS)
def test_only_the_shared_modules_write_to_stderr(level: int) -> None:
    allowed = {"commandline.py", "progress.py"}
    for name, text in sources(level).items():
        if name in allowed:
            continue
        assert "file=sys.stderr" not in text, (
            f"level {level} {name}: prints to stderr; log with logging.getLogger(__name__)"
        )
