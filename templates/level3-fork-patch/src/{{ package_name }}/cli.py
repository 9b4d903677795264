"""The command line: one sub-command per job (see `--help`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from . import rebase as rebasing
from .atomic import write_json_atomic, write_text_atomic
from .commandline import PROG, run_command
from .errors import EXIT_FAILURE, EXIT_OK, ConfigError, Error
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
    refuse_unsaved_patch_edits,
    status,
    write_export,
)


def log(message: str) -> None:
    print(message, file=sys.stderr)


def _project(args: argparse.Namespace) -> Project:
    return find_project(Path(args.directory))


def cmd_fetch(args: argparse.Namespace) -> int:
    project = _project(args)
    pin = project.load_pin()
    fetch(project, pin)
    print(f"fetched {pin.url}: {pin.commit} (tree {pin.tree} as pinned)")
    return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    project = _project(args)
    result = apply(project, discard=args.discard)
    if result.kept:
        log(
            f"discarded the work tree's unexported commits: {result.kept[:12]}"
            f" is kept at {PREVIOUS_REF} in {project.work_tree}"
        )
    for position, name in enumerate(result.applied, start=1):
        print(f"applied {position}/{len(result.applied)} {name}")
    for path in result.overlay:
        print(f"overlay {path}")
    print(f"{project.work_tree}: {result.base[:12]} + {len(result.applied)} patch(es)")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    project = _project(args)
    exported = export_patches(project)
    differences = compare(project, exported)
    if args.output_dir:
        write_export(project, exported, Path(args.output_dir))
    if args.check:
        for difference in differences:
            print(f"{difference.change}: {difference.name}")
        if differences:
            log(
                f"{PROG}: {len(differences)} patch file(s) differ from a fresh export:"
                f" run `{PROG} export` and commit the result"
            )
            return EXIT_FAILURE
        print(f"patches/ matches a fresh export ({len(exported.names)} patches)")
        return EXIT_OK
    if args.output_dir:
        print(f"wrote {len(exported.names)} patch(es) to {args.output_dir}")
        return EXIT_OK
    refuse_if_dirty(project, "export")
    refuse_unsaved_patch_edits(project)
    write_export(project, exported)
    for difference in differences:
        print(f"{difference.change}: {difference.name}")
    print(f"exported {len(exported.names)} patch(es) to patches/")
    return EXIT_OK


def cmd_rebase(args: argparse.Namespace) -> int:
    project = _project(args)
    if args.abort:
        rebasing.abort(project)
        print("rebase aborted: the work tree is back where it was, overlay included")
        return EXIT_OK
    if args.continue_:
        report = rebasing.proceed(project, "continue")
    elif args.skip:
        report = rebasing.proceed(project, "skip")
    else:
        if not args.onto:
            raise ConfigError(
                "rebase needs --onto REVISION, --continue, --skip or --abort"
            )
        report = rebasing.start(
            project, args.onto, Path(args.report) if args.report else None
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
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    project = _project(args)
    result = status(project)
    if args.json:
        print(json.dumps(asdict(result), indent=2))
        return EXIT_OK
    print(f"upstream     {result.url}")
    print(f"commit       {result.commit}")
    print(f"tree         {result.tree}")
    print(f"license      {result.license}")
    print(f"fingerprint  {result.fingerprint}")
    state = result.work_tree
    if result.commits_after_base is not None:
        state += f", {result.commits_after_base} commit(s) after {BASE_REF}"
    print(f"work tree    {state}")
    print(f"patches      {len(result.patches)}")
    for position, patch in enumerate(result.patches, start=1):
        print(f"  {position}. {patch.name}: {patch.subject}  [{patch.upstream_status}]")
        for path in patch.files:
            print(f"       {path}")
    return EXIT_OK


def cmd_lint(args: argparse.Namespace) -> int:
    project = _project(args)
    problems = lint(project)
    for problem in problems:
        print(problem)
    if problems:
        raise Error(f"lint: {len(problems)} problem(s), listed above")
    print("lint: series, patches, trailers, overlay and .gitattributes are in order")
    return EXIT_OK


def cmd_smoke(args: argparse.Namespace) -> int:
    project = _project(args)
    if args.skip and not project.has_smoke():
        print(
            "smoke: skipped: upstream.toml has no [smoke] table yet"
            " (say there how to run the patched app's smallest run)"
        )
        return EXIT_OK
    spec = project.load_smoke()
    if spec.settings is not None:
        path = project.root / spec.settings
        load_settings(path, UpstreamSettings, MIGRATIONS, SCHEMA_VERSION, log=log)
    out = Path(args.out) if args.out else project.state_dir / "smoke"
    result = smoke(project, out)
    print(
        f"smoke: {len(result.files)} file(s), byte-identical across two runs, in {out}"
    )
    print(f"series fingerprint {result.provenance['series_fingerprint']} recorded")
    return EXIT_OK


def cmd_pin(args: argparse.Namespace) -> int:
    project = _project(args)
    refuse_if_dirty(project, "pin")
    pin = pin_upstream(project, args.url, args.rev, args.license)
    print(
        f"upstream.toml pins {pin.url} at {pin.commit}"
        f" (tree {pin.tree}, licence {pin.license})"
    )
    return EXIT_OK


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
    return EXIT_OK


def cmd_settings_check(args: argparse.Namespace) -> int:
    settings = load_settings(
        Path(args.file), UpstreamSettings, MIGRATIONS, SCHEMA_VERSION, log=log
    )
    print(f"{args.file}: valid ({len(type(settings).model_fields)} parameters)")
    return EXIT_OK


def cmd_settings_migrate(args: argparse.Namespace) -> int:
    path = Path(args.file)
    data = migrate(
        read_json_object(path), MIGRATIONS, SCHEMA_VERSION, where=str(path), log=log
    )
    settings = UpstreamSettings.model_validate(data) if not args.no_validate else None
    result = settings.model_dump(mode="json", exclude_unset=True) if settings else data
    text = json.dumps(result, indent=2) + "\n"
    if args.write:
        write_text_atomic(path, text)
        log(f"{path}: rewritten at schema version {SCHEMA_VERSION}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


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
    return EXIT_OK


def cmd_settings_draft(args: argparse.Namespace) -> int:
    path = Path(args.defaults)
    defaults, notes, found = find_defaults(path)
    log(f"{path}: found {found}: {len(defaults)} key(s)")
    for note in notes:
        log(f"{path}: {note}")
    text = draft_model(defaults, args.class_name, path.name)
    if args.output:
        write_text_atomic(args.output, text)
        log(f"drafted {len(defaults)} field(s) into {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


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

    sub = commands.add_parser(
        "fetch", help="fetch the upstream and check the pinned commit and tree"
    )
    sub.set_defaults(handler=cmd_fetch)

    sub = commands.add_parser(
        "apply", help="check out the pin, apply the series strictly, copy the overlay"
    )
    sub.add_argument(
        "--discard",
        action="store_true",
        help=f"drop work-tree commits that patches/ lacks (kept at {PREVIOUS_REF})",
    )
    sub.set_defaults(handler=cmd_apply)

    sub = commands.add_parser(
        "export", help="write the work tree's commits back into patches/"
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

    sub = commands.add_parser(
        "rebase", help="move the series onto another upstream commit"
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

    sub = commands.add_parser(
        "status", help="the pin, each patch and its files, the series fingerprint"
    )
    sub.add_argument("--json", action="store_true", help="print JSON")
    sub.set_defaults(handler=cmd_status)

    sub = commands.add_parser(
        "lint", help="check series, patch trailers, overlay and .gitattributes"
    )
    sub.set_defaults(handler=cmd_lint)

    sub = commands.add_parser(
        "smoke", help="run the patched app's small render twice and check it"
    )
    sub.add_argument("--out", metavar="DIR", help="output folder (default .work/smoke)")
    sub.add_argument(
        "--skip",
        action="store_true",
        help="pass, saying so, while upstream.toml has no [smoke] table",
    )
    sub.set_defaults(handler=cmd_smoke)

    sub = commands.add_parser(
        "pin", help="point upstream.toml at another repository and commit"
    )
    sub.add_argument("url", help="a git URL or a local clone")
    sub.add_argument(
        "--rev",
        default="latest",
        help="commit id, tag or branch (default: its default branch)",
    )
    sub.add_argument(
        "--license", help="the upstream's licence (default: read from its LICENSE file)"
    )
    sub.set_defaults(handler=cmd_pin)

    sub = commands.add_parser(
        "init",
        help="start from your own upstream: pin it, remove the example content",
    )
    sub.add_argument(
        "--upstream", required=True, metavar="URL|PATH", help="a git URL or a clone"
    )
    sub.add_argument(
        "--rev",
        default="latest",
        help="commit id, tag or branch (default: its default branch)",
    )
    sub.add_argument(
        "--license", help="the upstream's licence (default: read from its LICENSE file)"
    )
    sub.add_argument(
        "--force",
        action="store_true",
        help="outside a git repository, remove the example content all the same",
    )
    sub.set_defaults(handler=cmd_init)

    settings = commands.add_parser("settings", help="the upstream's settings schema")
    settings_commands = settings.add_subparsers(
        dest="settings_command", required=True, metavar="COMMAND"
    )
    sub = settings_commands.add_parser(
        "check", help="validate a settings file (migrating it in memory)"
    )
    sub.add_argument("file")
    sub.set_defaults(handler=cmd_settings_check)
    sub = settings_commands.add_parser(
        "migrate", help="bring a settings file to the current schema version"
    )
    sub.add_argument("file")
    sub.add_argument(
        "--write", action="store_true", help="rewrite the file instead of printing"
    )
    sub.add_argument("--no-validate", action="store_true", help="migrate only")
    sub.set_defaults(handler=cmd_settings_migrate)
    sub = settings_commands.add_parser(
        "schema", help="print the JSON Schema, or the Markdown table"
    )
    sub.add_argument(
        "--markdown", action="store_true", help="a table of every parameter"
    )
    sub.add_argument("-o", "--output", type=Path, help="write to a file")
    sub.set_defaults(handler=cmd_settings_schema)
    sub = settings_commands.add_parser(
        "draft", help="draft a schema from an upstream defaults file"
    )
    sub.add_argument(
        "defaults",
        help="a JSON or YAML file, or Python: a dict literal, a function returning"
        " a dict or locals(), a dataclass, argparse defaults",
    )
    sub.add_argument("--class-name", default="UpstreamSettings")
    sub.add_argument("-o", "--output", type=Path, help="write to a file")
    sub.set_defaults(handler=cmd_settings_draft)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.handler(args))
