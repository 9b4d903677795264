"""The command line: one sub-command per job (see `--help`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from . import rebase as rebasing
from .atomic import write_json_atomic, write_text_atomic
from .commandline import PROG, output_options, progress_enabled, run_cli
from .configfile import display_path, validate
from .errors import ConfigError, Error
from .initialise import init, pin_upstream
from .lint import lint
from .project import Project, find_project
from .settings import (
    draft_model,
    find_defaults,
    json_schema,
    load_settings,
    markdown_table,
    migrate,
    read_json_object,
)
from .settings_model import MIGRATIONS, SCHEMA_VERSION, UpstreamSettings
from .smoke import smoke
from .worktree import (
    BASE_REF,
    PREVIOUS_REF,
    apply,
    compare,
    export_patches,
    fetch,
    refuse_if_dirty,
    refuse_other_base,
    refuse_partial,
    refuse_rebase_under_way,
    refuse_unsaved_patch_edits,
    status,
    write_export,
)

if TYPE_CHECKING:
    from typing import TypeAlias

    # What add_subparsers returns; generic only to the type checker.
    Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

log = logging.getLogger(__name__)


def _project(args: argparse.Namespace) -> Project:
    return find_project(Path(args.directory))


def cmd_fetch(args: argparse.Namespace) -> int:
    project = _project(args)
    pin = project.load_pin()
    fetch(project, pin)
    print(f"fetched {pin.url}: {pin.commit} (tree {pin.tree} as pinned)")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    project = _project(args)
    result = apply(project, discard=args.discard, progress=progress_enabled(args))
    if result.kept:
        log.info(
            "discarded the work tree's unexported commits: %s is kept at %s in %s",
            result.kept[:12],
            PREVIOUS_REF,
            project.work_tree,
        )
    for position, name in enumerate(result.applied, start=1):
        print(f"applied {position}/{len(result.applied)} {name}")
    for path in result.overlay:
        print(f"overlay {path}")
    print(f"{project.work_tree}: {result.base[:12]} + {len(result.applied)} patch(es)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    project = _project(args)
    refuse_rebase_under_way(project, "export")
    refuse_partial(project, "export")
    refuse_other_base(project, "export")
    exported = export_patches(project)
    differences = compare(project, exported)
    if args.output_dir:
        write_export(project, exported, Path(args.output_dir))
    if args.check:
        for difference in differences:
            print(f"{difference.change}: {difference.name}")
        if differences:
            raise Error(
                f"{len(differences)} patch file(s) differ from a fresh export:"
                f" run `{PROG} export` and commit the result"
            )
        print(f"patches/ matches a fresh export ({len(exported.names)} patch(es))")
        return 0
    if args.output_dir:
        print(f"wrote {len(exported.names)} patch(es) to {args.output_dir}")
        return 0
    refuse_if_dirty(project, "export")
    refuse_unsaved_patch_edits(project)
    write_export(project, exported)
    for difference in differences:
        print(f"{difference.change}: {difference.name}")
    print(f"exported {len(exported.names)} patch(es) to patches/")
    return 0


def cmd_rebase(args: argparse.Namespace) -> int:
    project = _project(args)
    if args.abort:
        rebasing.abort(project)
        print("rebase aborted: the work tree is back where it was, overlay included")
        return 0
    progress = progress_enabled(args)
    if args.continue_:
        report = rebasing.proceed(project, "continue", progress=progress)
    elif args.skip:
        report = rebasing.proceed(project, "skip", progress=progress)
    else:
        if not args.onto:
            raise ConfigError(
                "rebase needs --onto REVISION, --continue, --skip or --abort"
            )
        report = rebasing.start(
            project,
            args.onto,
            Path(args.report) if args.report else None,
            progress=progress,
        )
    for patch in report.patches:
        print(f"{patch.status:<20} {patch.name}")
    for dropped in report.dropped:
        why = (
            "skipped at your request"
            if dropped.status == rebasing.SKIPPED
            else "upstream has its changes now"
        )
        print(
            f"removed from patches/series and patches/: {dropped.name} ({why});"
            f" its old text is kept in {dropped.kept}"
        )
    print(f"upstream.toml now pins {report.onto}; patches/ re-exported")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    project = _project(args)
    result = status(project)
    if args.json:
        print(json.dumps(asdict(result), indent=2))
        return 0
    print(f"upstream     {result.url}")
    print(f"commit       {result.commit}")
    print(f"tree         {result.tree}")
    print(f"license      {result.license}")
    print(f"fingerprint  {result.fingerprint}")
    state = result.work_tree
    if result.commits_after_base is not None:
        state += f", {result.commits_after_base} commit(s) after {BASE_REF}"
    print(f"work tree    {state}")
    if result.note:
        print(f"             {result.note}")
    print(f"patches      {len(result.patches)}")
    for position, patch in enumerate(result.patches, start=1):
        subject = _one_line(patch.subject)
        print(f"  {position}. {patch.name}: {subject}  [{patch.upstream_status}]")
        for path in patch.files:
            print(f"       {_one_line(path)}")
    return 0


def _one_line(text: str) -> str:
    """`text` as is, or quoted with escapes where it holds a line break or control
    character (a file name may), so each entry keeps to its line."""
    return text if text.isprintable() else json.dumps(text, ensure_ascii=False)


def cmd_lint(args: argparse.Namespace) -> int:
    project = _project(args)
    problems = lint(project)
    for problem in problems:
        print(problem)
    if problems:
        raise Error(f"lint: {len(problems)} problem(s), listed above")
    print("lint: series, patches, trailers, overlay and .gitattributes are in order")
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    project = _project(args)
    if args.skip and not project.has_smoke():
        print(
            "smoke: skipped: upstream.toml has no [smoke] table yet"
            " (say there how to run the patched app's smallest run)"
        )
        return 0
    spec = project.load_smoke()
    if spec.settings is not None:
        path = project.root / spec.settings
        load_settings(path, UpstreamSettings, MIGRATIONS, SCHEMA_VERSION)
    out = Path(args.out) if args.out else project.state_dir / "smoke"
    result = smoke(project, out, progress=progress_enabled(args))
    print(
        f"smoke: {len(result.files)} file(s), byte-identical across two runs, in {out}"
    )
    print(f"series fingerprint {result.provenance['series_fingerprint']} recorded")
    return 0


def cmd_pin(args: argparse.Namespace) -> int:
    project = _project(args)
    refuse_if_dirty(project, "pin")
    pin = pin_upstream(project, args.url, args.rev, args.license)
    print(
        f"upstream.toml pins {pin.url} at {pin.commit}"
        f" (tree {pin.tree}, licence {pin.license})"
    )
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    project = _project(args)
    result = init(project, args.upstream, args.rev, args.license, args.force)
    for path in result.removed:
        print(f"removed {path}")
    pin = result.pin
    print(
        f"upstream.toml pins {pin.url} at {pin.commit}"
        f" (tree {pin.tree}, licence {pin.license})"
    )
    print(
        "patches/series is empty, overlay/ holds only ALLOW_REPLACE, [smoke] is"
        " commented out in upstream.toml; the empty series is applied in"
        f" {project.work_tree}"
    )
    print("nothing was committed: review `git status`, then commit")
    return 0


def cmd_settings_check(args: argparse.Namespace) -> int:
    settings = load_settings(
        Path(args.file), UpstreamSettings, MIGRATIONS, SCHEMA_VERSION
    )
    print(f"{args.file}: valid ({len(type(settings).model_fields)} parameters)")
    return 0


def cmd_settings_migrate(args: argparse.Namespace) -> int:
    path = Path(args.file)
    where = display_path(path)
    data = migrate(read_json_object(path), MIGRATIONS, SCHEMA_VERSION, where=where)
    if not args.no_validate:
        settings = validate(UpstreamSettings, data, where=where)
        data = settings.model_dump(mode="json", exclude_unset=True)
    text = json.dumps(data, indent=2) + "\n"
    if args.write:
        write_text_atomic(path, text)
        log.info("%s: rewritten at schema version %d", where, SCHEMA_VERSION)
    else:
        sys.stdout.write(text)
    return 0


def cmd_settings_schema(args: argparse.Namespace) -> int:
    if args.markdown:
        text = markdown_table(UpstreamSettings)
    else:
        text = json.dumps(json_schema(UpstreamSettings), indent=2) + "\n"
    if args.output:
        if args.markdown:
            write_text_atomic(args.output, text)
        else:
            write_json_atomic(args.output, json_schema(UpstreamSettings))
    else:
        sys.stdout.write(text)
    return 0


def cmd_settings_draft(args: argparse.Namespace) -> int:
    path = Path(args.defaults)
    defaults, notes, found = find_defaults(path)
    log.info("%s: found %s: %d key(s)", path, found, len(defaults))
    for note in notes:
        log.warning("%s: %s", path, note)
    text = draft_model(defaults, args.class_name, path.name)
    if args.output:
        write_text_atomic(args.output, text)
        log.info("drafted %d field(s) into %s", len(defaults), args.output)
    else:
        sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Keep a fork as a pinned upstream plus an ordered patch series.",
    )
    parser.add_argument(
        "-C",
        dest="directory",
        default=".",
        metavar="DIR",
        help="run in DIR (default: the nearest folder with upstream.toml)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_fetch(commands)
    _add_apply(commands)
    _add_export(commands)
    _add_rebase(commands)
    _add_status(commands)
    _add_lint(commands)
    _add_smoke(commands)
    _add_pin(commands)
    _add_init(commands)
    _add_settings(commands)
    return parser


def _command(
    commands: Commands, name: str, help: str, *, progress: bool = False
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=help,
        description=help[:1].upper() + help[1:] + ".",
        parents=[output_options(progress=progress)],
    )


def _add_fetch(commands: Commands) -> None:
    sub = _command(
        commands, "fetch", "fetch the upstream and check the pinned commit and tree"
    )
    sub.set_defaults(handler=cmd_fetch)


def _add_apply(commands: Commands) -> None:
    sub = _command(
        commands,
        "apply",
        "check out the pin, apply the series strictly, copy the overlay",
        progress=True,
    )
    sub.add_argument(
        "--discard",
        action="store_true",
        help=f"drop work-tree commits that patches/ lacks (kept at {PREVIOUS_REF})",
    )
    sub.set_defaults(handler=cmd_apply)


def _add_export(commands: Commands) -> None:
    sub = _command(
        commands, "export", "write the work tree's commits back into patches/"
    )
    sub.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 listing each patch that differs",
    )
    sub.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write the exported patches and series into DIR",
    )
    sub.set_defaults(handler=cmd_export)


def _add_rebase(commands: Commands) -> None:
    sub = _command(
        commands,
        "rebase",
        "move the series onto another upstream commit",
        progress=True,
    )
    group = sub.add_mutually_exclusive_group()
    group.add_argument(
        "--onto",
        metavar="REVISION",
        help="a commit id, tag, upstream branch, or 'latest'",
    )
    group.add_argument(
        "--continue",
        dest="continue_",
        action="store_true",
        help="go on after resolving a conflict",
    )
    group.add_argument(
        "--skip", action="store_true", help="drop the conflicting patch and go on"
    )
    group.add_argument("--abort", action="store_true", help="give the rebase up")
    sub.add_argument(
        "--report",
        metavar="FILE",
        help="where to write the JSON report (default .work/rebase-report.json)",
    )
    sub.set_defaults(handler=cmd_rebase)


def _add_status(commands: Commands) -> None:
    sub = _command(
        commands, "status", "the pin, each patch and its files, the series fingerprint"
    )
    sub.add_argument("--json", action="store_true", help="print JSON")
    sub.set_defaults(handler=cmd_status)


def _add_lint(commands: Commands) -> None:
    sub = _command(
        commands, "lint", "check series, patch trailers, overlay and .gitattributes"
    )
    sub.set_defaults(handler=cmd_lint)


def _add_smoke(commands: Commands) -> None:
    sub = _command(
        commands,
        "smoke",
        "run the patched app's small render twice and check it",
        progress=True,
    )
    sub.add_argument("--out", metavar="DIR", help="output folder (default .work/smoke)")
    sub.add_argument(
        "--skip",
        action="store_true",
        help="pass, saying so, while upstream.toml has no [smoke] table",
    )
    sub.set_defaults(handler=cmd_smoke)


def _add_upstream_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--rev",
        default="latest",
        help="commit id, tag or branch (default: its default branch)",
    )
    sub.add_argument(
        "--license", help="the upstream's licence (default: read from its LICENSE file)"
    )


def _add_pin(commands: Commands) -> None:
    sub = _command(
        commands, "pin", "point upstream.toml at another repository and commit"
    )
    sub.add_argument("url", help="a git URL or a local clone")
    _add_upstream_options(sub)
    sub.set_defaults(handler=cmd_pin)


def _add_init(commands: Commands) -> None:
    sub = _command(
        commands,
        "init",
        "start from your own upstream: pin it, remove the example content",
    )
    sub.add_argument(
        "--upstream", required=True, metavar="URL|PATH", help="a git URL or a clone"
    )
    _add_upstream_options(sub)
    sub.add_argument(
        "--force",
        action="store_true",
        help="remove the content all the same: outside a git repository, or when"
        " upstream.toml already pins your own upstream and patches/ or overlay/ hold"
        " your files",
    )
    sub.set_defaults(handler=cmd_init)


def _add_settings(commands: Commands) -> None:
    # The output options go on each command under `settings`, where they are read:
    # on `settings` too, the chosen command's defaults would silently reset them.
    group = commands.add_parser("settings", help="the upstream's settings schema")
    settings = group.add_subparsers(
        dest="settings_command", required=True, metavar="COMMAND"
    )
    sub = _command(
        settings, "check", "validate a settings file (migrating it in memory)"
    )
    sub.add_argument("file")
    sub.set_defaults(handler=cmd_settings_check)

    sub = _command(
        settings, "migrate", "bring a settings file to the current schema version"
    )
    sub.add_argument("file")
    sub.add_argument(
        "--write", action="store_true", help="rewrite the file instead of printing"
    )
    sub.add_argument("--no-validate", action="store_true", help="migrate only")
    sub.set_defaults(handler=cmd_settings_migrate)

    sub = _command(settings, "schema", "print the JSON Schema, or the Markdown table")
    sub.add_argument(
        "--markdown", action="store_true", help="a table of every parameter"
    )
    sub.add_argument("-o", "--output", type=Path, help="write to a file")
    sub.set_defaults(handler=cmd_settings_schema)

    sub = _command(settings, "draft", "draft a schema from an upstream defaults file")
    sub.add_argument(
        "defaults",
        help="a JSON or YAML file, or Python: a dict literal, a function returning"
        " a dict or locals(), a dataclass, argparse defaults",
    )
    sub.add_argument("--class-name", default="UpstreamSettings")
    sub.add_argument("-o", "--output", type=Path, help="write to a file")
    sub.set_defaults(handler=cmd_settings_draft)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), argv)
