"""The level registry (templates/_jinja/levels.jinja), read as Copier reads it.

The template's tests import it, and it is the command line for the registry's chores:

    python tests/levels.py matrix            the CI's jobs: one per level, plus "none"
    python tests/levels.py apt [LEVEL...]    the system packages those levels' tests need
    python tests/levels.py stubs             add every missing shared-file stub to every level
    python tests/levels.py scaffold N NAME [--shared common,torch]
                                             a new level's folder: stubs, package, CLI
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import jinja2

REPO = Path(__file__).resolve().parent.parent
REGISTRY = "templates/_jinja/levels.jinja"


def _module(name: str) -> Any:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(REPO)).get_template(name).module


def registry() -> dict[int, dict[str, Any]]:
    """Level number -> its entry: folder, label, title, main_job, imports, torch, ..."""
    return dict(_module(REGISTRY).levels)


LEVELS = registry()


def examples(level: int) -> list[str]:
    """Level `level`'s example content: the patterns copier.yml's `_exclude` adds on update.

    copier.yml is their one source (Copier renders that list against older releases too,
    so it cannot import this registry); this renders it as Copier does on `copier update`.
    """
    import yaml  # imported here: the CI's matrix job has only jinja2

    config = yaml.safe_load((REPO / "copier.yml").read_text(encoding="utf-8"))
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(REPO))
    on_update_only = [pattern for pattern in config["_exclude"] if "_copier_operation" in pattern]
    return [
        line
        for pattern in on_update_only
        for line in environment.from_string(pattern)
        .render(level=level, _copier_operation="update")
        .splitlines()
        if line
    ]


def needs_torch(level: int) -> bool:
    return bool(LEVELS[level]["torch"])


def folder(level: int) -> Path:
    return REPO / "templates" / LEVELS[level]["folder"]


SHARED = "templates/_shared"
STUB_LINES = {
    "include": '{{% include "templates/_shared/{group}/{path}" -%}}\n',
    "extends": '{{% extends "templates/_shared/{group}/{path}" %}}\n',
}


def shared_files(root: Path, group: str) -> list[Path]:
    base = root / SHARED / group
    return sorted(path.relative_to(base) for path in base.rglob("*") if path.is_file())


def stub_path(relative: Path) -> Path:
    """Where a level's stub of a shared file sits: its path, with `.jinja` added if missing."""
    return relative if relative.suffix == ".jinja" else relative.with_name(relative.name + ".jinja")


def write_stubs(root: Path, folder: Path, groups: list[str]) -> list[Path]:
    """Write, in `folder`, the stub of every shared file of `groups` that it lacks.

    A shared file with blocks to fill is extended, any other is included; the level then
    fills the blocks it needs. Returns the stubs written.
    """
    written = []
    for group in groups:
        for relative in shared_files(root, group):
            stub = folder / stub_path(relative)
            if stub.exists():
                continue
            source = (root / SHARED / group / relative).read_text(encoding="utf-8")
            verb = "extends" if "{% block" in source or "{%- block" in source else "include"
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text(STUB_LINES[verb].format(group=group, path=relative), encoding="utf-8")
            written.append(stub)
    return written


# What a new level starts from besides its stubs: a package, a house-style command line
# with one sub-command, and the README's blocks that every level must fill.
NEW_LEVEL_FILES = {
    "src/{{ package_name }}/__init__.py": '"""{title}: a level {number} project."""\n',
    "src/{{ package_name }}/cli.py": '''"""The command line, one sub-command per job."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib.metadata import version

from .commandline import PROG, run_command


def version_command(args: argparse.Namespace) -> int:
    print(version(__package__ or __name__.partition(".")[0]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the installed version").set_defaults(
        handler=version_command
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.handler(args))
''',
}
README_BLOCKS = """
{{% block about %}}
A level {number} project: {label}.
{{% endblock %}}
{{% block yours %}}
Everything under `src/` is yours to grow; the shared modules (`errors.py`, `commandline.py`,
`progress.py`, `atomic.py`) are the template's and arrive with `copier update`.
{{% endblock %}}
"""


def scaffold(root: Path, number: int, name: str, groups: list[str]) -> Path:
    """Create templates/level<number>-<name>/ with its stubs and a starting package."""
    folder = root / "templates" / f"level{number}-{name}"
    if folder.exists():
        raise SystemExit(f"{folder} exists already: `stubs` adds what a level lacks")
    folder.mkdir(parents=True)
    write_stubs(root, folder, groups)
    label = name.replace("-", " ")
    for relative, text in NEW_LEVEL_FILES.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(number=number, title=label.capitalize()), encoding="utf-8")
    readme = folder / "README.md.jinja"
    readme.write_text(
        readme.read_text(encoding="utf-8") + README_BLOCKS.format(number=number, label=label),
        encoding="utf-8",
    )
    return folder


def apt_packages(numbers: list[int]) -> list[str]:
    return sorted({package for number in numbers for package in LEVELS[number].get("apt", [])})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tests/levels.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("matrix", help="the CI's jobs, as JSON")
    apt = commands.add_parser("apt", help="system packages the levels' tests need")
    apt.add_argument("numbers", nargs="*", type=int, help="levels (default: all)")
    commands.add_parser("stubs", help="add missing shared-file stubs to every level")
    new = commands.add_parser("scaffold", help="a new level's folder")
    new.add_argument("number", type=int)
    new.add_argument("name", help="the folder's suffix, e.g. audio-agent")
    new.add_argument("--shared", default="common", help="groups of _shared/, comma-separated")
    new.add_argument("--root", type=Path, default=REPO, help="the template repository")
    args = parser.parse_args(argv)

    if args.command == "matrix":
        print(json.dumps(["none", *map(str, sorted(LEVELS))]))
    elif args.command == "apt":
        print(" ".join(apt_packages(args.numbers or sorted(LEVELS))))
    elif args.command == "stubs":
        for number in sorted(LEVELS):
            for stub in write_stubs(REPO, folder(number), LEVELS[number]["shared"]):
                print(f"level {number}: wrote {stub.relative_to(REPO)}")
    else:
        created = scaffold(args.root, args.number, args.name, args.shared.split(","))
        page = f"docs/levels/level{args.number}.md"
        print(f"created {created}; now add its entry to {REGISTRY}, and {page}")


if __name__ == "__main__":
    main()
