"""Test suites: prompts x providers x cases, read from YAML, checked before any call.

    description: Pull structured fields out of support emails
    prompts: [extract_ticket]          # files in prompts/
    providers: [openai-mini]           # profiles in harness.yaml
    judge: openai-judge                # grades llm-judge assertions (optional)
    defaults:                          # every case inherits these
      vars: {product: Acme Cloud}
      assert:
        - type: is-json
      threshold: 1.0                   # weighted share of assertions that must pass
    cases:
      - id: refund
        vars: {subject: ..., body: ..., expected: refund}
        assert:
          - type: icontains
            value: "{{ expected }}"    # variables work in assertion values too
      - more_cases.csv                 # or .jsonl / .yaml files beside the suite

Every problem found is reported at once, each with the file, the case and what is
wrong; a variable that a prompt or an assertion uses and the case does not define is
one of them. A file with `tests` instead of `cases` is a promptfoo config: promptfoo/
reads it into the same cases.
"""

from __future__ import annotations

import csv
import difflib
import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from . import jsonvalue
from .assertions import (
    Assertion,
    ParseContext,
    Transform,
    load_transform,
    parse_assertion,
)
from .config import Config, ProviderProfile
from .configfile import display_path, not_a_file, read_yaml
from .errors import ConfigError
from .promptfoo.notation import is_promptfoo_config, read_promptfoo_yaml
from .promptfoo.reader import read_promptfoo
from .prompts import MissingVariableError, Prompt, PromptLibrary

SUITE_FIELDS = {"description", "prompts", "providers", "judge", "defaults", "cases"}
DEFAULTS_FIELDS = {"vars", "assert", "threshold"}
CASE_FIELDS = {"id", "description", "vars", "assert", "threshold", "transform"}
CASE_FILE_SUFFIXES = (".csv", ".jsonl", ".yaml", ".yml")
# Fields of an assertion whose text may use the case's variables.
RENDERED_FIELDS = ("value", "arguments", "args")
_WHOLE_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_VALUES = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


class SuiteError(ConfigError):
    """Every problem found in the suites, one per line; nothing was run."""

    def __init__(self, problems: list[str]) -> None:
        count = len(problems)
        plural = "s" if count > 1 else ""
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{count} problem{plural} found, nothing was run:\n{lines}")
        self.problems = problems


@dataclass(frozen=True)
class Case:
    id: str
    description: str
    variables: dict[str, Any]
    assertions: tuple[Assertion, ...]
    threshold: float
    messages: dict[str, list[dict[str, str]]]  # prompt name -> rendered messages
    transform: Transform | None = None  # rewrites the output all assertions see


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    description: str
    prompts: tuple[Prompt, ...]
    providers: tuple[str, ...]
    cases: tuple[Case, ...]
    judge: str | None = None
    # Profiles a promptfoo config builds from its provider ids, beside harness.yaml's.
    profiles: dict[str, ProviderProfile] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what a promptfoo config has that was not carried over


def _unknown_field(key: Any, known: set[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = (
        f"did you mean '{close[0]}'?" if close else f"known: {', '.join(sorted(known))}"
    )
    return f"unknown field '{key}'; {hint}"


def _names(raw: dict[str, Any], key: str) -> list[str] | None:
    value = raw.get(key)
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) for v in value)
    ):
        return None
    return value


def _threshold(raw: dict[str, Any], default: float) -> float | None:
    value = raw.get("threshold", default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= 1
    ):
        return None
    return float(value)


def render_value(value: Any, variables: dict[str, Any]) -> Any:
    """Fill `{{ name }}` in assertion values; a lone `{{ name }}` keeps its type."""
    if isinstance(value, str):
        whole = _WHOLE_VARIABLE.fullmatch(value.strip())
        if whole:
            name = whole.group(1)
            if name not in variables:
                raise MissingVariableError(f"'{name}' is undefined")
            return variables[name]
        if "{{" not in value and "{%" not in value:
            return value
        try:
            return _VALUES.from_string(value).render(variables)
        except jinja2.UndefinedError as exc:
            raise MissingVariableError(exc.message or str(exc)) from None
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"template error in {value!r}: {exc.message}") from None
        # A template can also fail on some values, e.g. a filter given a number.
        except Exception as exc:
            raise ValueError(
                f"cannot render {value!r}: {type(exc).__name__}: {exc}"
            ) from None
    if isinstance(value, list):
        return [render_value(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, variables) for key, item in value.items()}
    return value


def _rendered(item: Any, variables: dict[str, Any]) -> Any:
    """The assertion with the case's variables filled in, inside an assert-set's
    assertions too."""
    if not isinstance(item, dict):
        return item
    rendered = {
        key: render_value(value, variables) if key in RENDERED_FIELDS else value
        for key, value in item.items()
    }
    if isinstance(item.get("assert"), list):
        rendered["assert"] = [_rendered(child, variables) for child in item["assert"]]
    return rendered


def _csv_cases(path: Path) -> list[dict[str, Any]]:
    """Columns are variables, except `id`, `description`, and `assert:<type>`
    (the cell is that assertion's value; an empty cell adds none)."""
    with path.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    cases = []
    for row in rows:
        case: dict[str, Any] = {"vars": {}, "assert": []}
        for column, cell in row.items():
            if column is None:
                raise ValueError("a row has more cells than the header has columns")
            column = column.strip()
            if column in ("id", "description"):
                case[column] = cell
            elif column.startswith("assert:"):
                if cell:
                    case["assert"].append({"type": column[7:].strip(), "value": cell})
            else:
                case["vars"][column] = cell
        cases.append(case)
    return cases


def read_case_file(path: Path) -> list[Any]:
    """Cases from a .csv, .jsonl or .yaml file; ConfigError naming the line if bad."""
    shown = display_path(path)
    if path.suffix not in CASE_FILE_SUFFIXES:
        raise ConfigError(
            f"{shown}: cases must come from {', '.join(CASE_FILE_SUFFIXES)} files"
        )
    problem = not_a_file(path, "case file")
    if problem:
        raise ConfigError(f"{shown}: {problem}")
    try:
        if path.suffix == ".csv":
            return _csv_cases(path)
        if path.suffix == ".jsonl":
            cases = []
            lines = path.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    try:
                        cases.append(jsonvalue.loads(line))
                    except ValueError as exc:
                        raise ConfigError(
                            f"{shown}:{number}: not JSON: {exc}"
                        ) from None
            return cases
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        raise ConfigError(f"{shown}: cannot read cases: {exc}") from None
    loaded = read_yaml(path)
    if not isinstance(loaded, list):
        raise ConfigError(f"{shown}: expected a list of cases")
    return loaded


def _matches(case_id: str, suite: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        for name in (case_id, f"{suite}/{case_id}"):
            if pattern in name or fnmatch.fnmatchcase(name, pattern):
                return True
    return False


@dataclass(frozen=True)
class Selection:
    """What the command line changes in every suite it loads."""

    providers: list[str] | None = None  # --provider: instead of each suite's own
    judge: str | None = None  # --judge: grades every llm-judge assertion
    cases: list[str] | None = None  # --filter: the case ids (or globs) to run


@dataclass
class _Defaults:
    variables: dict[str, Any]
    assertions: list[Any]
    threshold: float


class _SuiteLoader:
    """Reads one suite file, collecting every problem instead of stopping at one."""

    def __init__(
        self, path: Path, config: Config, library: PromptLibrary, selection: Selection
    ) -> None:
        self.path = path
        self.config = config
        self.library = library
        self.selection = selection
        self.shown = display_path(path)
        self.problems: list[str] = []

    def problem(self, where: str, what: str) -> None:
        self.problems.append(f"{self.shown}: {where}{what}")

    def load(self) -> Suite:
        raw = read_promptfoo_yaml(self.path)
        as_promptfoo = raw is not None
        if not as_promptfoo:
            raw = read_yaml(self.path)
        if not isinstance(raw, dict):
            raise SuiteError(
                [f"{self.shown}: expected a mapping with prompts, providers and cases"]
            )
        if is_promptfoo_config(raw):
            return self.load_promptfoo(raw, as_promptfoo=as_promptfoo)
        for key in sorted(set(raw) - SUITE_FIELDS):
            self.problem("", _unknown_field(key, SUITE_FIELDS))
        prompts = self.prompts(raw)
        providers = self.providers(raw)
        judge = self.judge(raw)
        self.parse_context = self.context(judge, self.config.providers)
        defaults = self.defaults(raw)
        return self.finish(
            raw, prompts, providers, judge, self.entries(raw), defaults, {}, ()
        )

    def load_promptfoo(self, raw: dict[str, Any], *, as_promptfoo: bool) -> Suite:
        """A promptfoo config, read as it is (see the promptfoo package)."""
        translated = read_promptfoo(
            self.path, raw, self.config, as_promptfoo=as_promptfoo
        )
        self.problems.extend(translated.problems)
        profiles = {**self.config.providers, **translated.profiles}
        providers = self.selection.providers or translated.providers
        for name in providers:
            if name not in profiles:
                self.problem(
                    "", f"unknown provider '{name}'; known: {', '.join(profiles)}"
                )
        judge = self.selection.judge or translated.judge or self.config.judge_provider
        self.parse_context = self.context(judge, profiles, translated.embedding)
        defaults = _Defaults({}, [], 1.0)
        return self.finish(
            raw,
            translated.prompts,
            providers,
            judge,
            translated.cases,
            defaults,
            translated.profiles,
            tuple(translated.notes),
        )

    def context(
        self,
        judge: str | None,
        providers: dict[str, ProviderProfile],
        embedding: str | None = None,
    ) -> ParseContext:
        return ParseContext(
            suite_dir=self.path.parent,
            root=self.config.root,
            providers=providers,
            judge_provider=judge,
            embedding_provider=embedding or self.config.embedding_provider,
            judge_forced=self.selection.judge is not None,
        )

    def finish(
        self,
        raw: dict[str, Any],
        prompts: list[Prompt],
        providers: list[str],
        judge: str | None,
        entries: list[tuple[str, Any]],
        defaults: _Defaults,
        profiles: dict[str, ProviderProfile],
        notes: tuple[str, ...],
    ) -> Suite:
        cases: list[Case] = []
        seen: set[str] = set()
        for origin, raw_case in entries:
            case = self.case(origin, raw_case, defaults, prompts, seen)
            if case is not None:
                cases.append(case)
        if self.problems:
            raise SuiteError(self.problems)
        return Suite(
            name=self.path.stem,
            path=self.path,
            description=str(raw.get("description", "")),
            prompts=tuple(prompts),
            providers=tuple(providers),
            cases=tuple(cases),
            judge=judge,
            profiles=profiles,
            notes=notes,
        )

    def prompts(self, raw: dict[str, Any]) -> list[Prompt]:
        names = _names(raw, "prompts")
        if names is None:
            self.problem(
                "",
                "'prompts' must list prompt files in prompts/, e.g. [extract_ticket]",
            )
        prompts = []
        for name in names or []:
            try:
                prompts.append(self.library.get(name))
            except ConfigError as exc:
                self.problem("", str(exc))
        return prompts

    def providers(self, raw: dict[str, Any]) -> list[str]:
        known = self.config.providers
        names = self.selection.providers or _names(raw, "providers")
        if names is None:
            self.problem(
                "",
                "'providers' must list provider profiles from harness.yaml:"
                f" {', '.join(known)}",
            )
        for name in names or []:
            if name not in known:
                self.problem(
                    "",
                    f"unknown provider '{name}';"
                    f" harness.yaml defines {', '.join(known)}",
                )
        return names or []

    def judge(self, raw: dict[str, Any]) -> str | None:
        judge = self.selection.judge or raw.get("judge") or self.config.judge_provider
        if judge is not None and judge not in self.config.providers:
            self.problem("", f"judge '{judge}' is not a provider in harness.yaml")
            return None
        return str(judge) if judge is not None else None

    def assertion_list(self, items: Any, where: str) -> list[Any]:
        if items is None:
            return []
        if not isinstance(items, list):
            self.problem(where, "'assert' must be a list of assertions")
            return []
        return items

    def defaults(self, raw: dict[str, Any]) -> _Defaults:
        where = "defaults: "
        defaults = raw.get("defaults") or {}
        if not isinstance(defaults, dict):
            self.problem(
                "", "'defaults' must be a mapping with vars, assert and threshold"
            )
            defaults = {}
        for key in sorted(set(defaults) - DEFAULTS_FIELDS):
            self.problem(where, _unknown_field(key, DEFAULTS_FIELDS))
        variables = defaults.get("vars") or {}
        if not isinstance(variables, dict):
            self.problem(where, "'vars' must be a mapping of variable names to values")
            variables = {}
        threshold = _threshold(defaults, 1.0)
        if threshold is None:
            self.problem(where, "'threshold' must be a number from 0 to 1")
            threshold = 1.0
        assertions = self.assertion_list(defaults.get("assert"), where)
        return _Defaults(variables, assertions, threshold)

    def entries(self, raw: dict[str, Any]) -> list[tuple[str, Any]]:
        """(where each case came from, the case as written), case files expanded."""
        raw_cases = raw.get("cases")
        if isinstance(raw_cases, str):
            raw_cases = [raw_cases]
        if not isinstance(raw_cases, list) or not raw_cases:
            self.problem("", "'cases' must be a non-empty list of cases or case files")
            return []
        entries: list[tuple[str, Any]] = []
        for number, item in enumerate(raw_cases, start=1):
            if not isinstance(item, str):
                entries.append((f"case {number}", item))
                continue
            try:
                loaded = read_case_file(self.path.parent / item)
            except ConfigError as exc:
                self.problem("", str(exc))
                continue
            entries.extend(
                (f"{item} row {row}", case) for row, case in enumerate(loaded, 1)
            )
        return entries

    def case(
        self,
        origin: str,
        raw_case: Any,
        defaults: _Defaults,
        prompts: list[Prompt],
        seen: set[str],
    ) -> Case | None:
        if not isinstance(raw_case, dict):
            self.problem(f"{origin}: ", "expected a mapping with vars and assert")
            return None
        case_id = raw_case.get("id") or origin.replace(" ", "-")
        if not isinstance(case_id, str | int) or isinstance(case_id, bool):
            self.problem(f"{origin}: ", f"'id' must be text, got {case_id!r}")
            return None
        case_id = str(case_id)
        where = f"case '{case_id}': "
        if case_id in seen:
            self.problem(where, "duplicate id; each case needs its own")
        seen.add(case_id)
        wanted = self.selection.cases
        if wanted and not _matches(case_id, self.path.stem, wanted):
            return None
        for key in sorted(set(raw_case) - CASE_FIELDS):
            self.problem(where, _unknown_field(key, CASE_FIELDS))
        case_vars = raw_case.get("vars") or {}
        if not isinstance(case_vars, dict):
            self.problem(where, "'vars' must be a mapping of variable names to values")
            return None
        variables = {**defaults.variables, **case_vars}
        # A case with no assertions passes when the call succeeds (as in promptfoo):
        # a smoke test whose answer the report shows.
        items = defaults.assertions + self.assertion_list(raw_case.get("assert"), where)
        threshold = _threshold(raw_case, defaults.threshold)
        if threshold is None:
            self.problem(where, "'threshold' must be a number from 0 to 1")
            return None
        description = raw_case.get("description", "")
        if not isinstance(description, str):
            self.problem(where, "'description' must be text")
        transform = None
        reference = raw_case.get("transform")
        if reference is not None:
            try:
                transform = load_transform(reference, self.parse_context)
            except ValueError as exc:
                self.problem(where, str(exc))
        return Case(
            case_id,
            str(description),
            variables,
            tuple(self.assertions(items, variables, where)),
            threshold,
            self.render(prompts, variables, where),
            transform,
        )

    def assertions(
        self, items: list[Any], variables: dict[str, Any], where: str
    ) -> list[Assertion]:
        parsed = []
        for number, item in enumerate(items, start=1):
            try:
                parsed.append(
                    parse_assertion(_rendered(item, variables), self.parse_context)
                )
            except MissingVariableError as exc:
                self.problem(where, f"assertion {number}: unknown variable: {exc}")
            except ValueError as exc:
                self.problem(where, f"assertion {number}: {exc}")
        return parsed

    def render(
        self, prompts: list[Prompt], variables: dict[str, Any], where: str
    ) -> dict[str, list[dict[str, str]]]:
        rendered = {}
        for prompt in prompts:
            try:
                rendered[prompt.name] = prompt.render(variables)
            except MissingVariableError as exc:
                self.problem(where, f"prompt '{prompt.name}': unknown variable: {exc}")
            # A template can also fail on some values, e.g. a filter given a number.
            except Exception as exc:
                self.problem(
                    where,
                    f"prompt '{prompt.name}': cannot render:"
                    f" {type(exc).__name__}: {exc}",
                )
        return rendered


def discover_suites(config: Config) -> list[Path]:
    paths = sorted(
        [*config.suites_dir.glob("*.yaml"), *config.suites_dir.glob("*.yml")]
    )
    if not paths:
        raise ConfigError(f"no suites (*.yaml) in {display_path(config.suites_dir)}")
    return paths


def load_suites(
    paths: list[Path],
    config: Config,
    providers_override: list[str] | None = None,
    *,
    judge_override: str | None = None,
    case_filter: list[str] | None = None,
) -> list[Suite]:
    """Loads every suite, then raises one SuiteError listing all their problems."""
    selection = Selection(providers_override, judge_override, case_filter)
    library = PromptLibrary(config.prompts_dir)
    suites: list[Suite] = []
    problems: list[str] = []
    if judge_override is not None and judge_override not in config.providers:
        problems.append(
            f"--judge {judge_override}: not a provider in harness.yaml"
            f" ({', '.join(config.providers)})"
        )
    for path in paths:
        problem = not_a_file(path, "suite file")
        if problem:
            problems.append(f"{path}: {problem}")
            continue
        try:
            suites.append(_SuiteLoader(path, config, library, selection).load())
        except SuiteError as exc:
            problems.extend(exc.problems)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise SuiteError(problems)
    if case_filter and not any(suite.cases for suite in suites):
        raise ConfigError(f"--filter {' '.join(case_filter)}: no case matches")
    return [suite for suite in suites if suite.cases]
