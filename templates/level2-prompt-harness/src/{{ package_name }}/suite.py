"""Test suites: prompts x providers x cases, read from YAML, checked before any call.

    description: Pull structured fields out of support emails
    prompts: [extract_ticket]          # files in prompts/
    providers: [openai-mini]           # profiles in harness.yaml
    defaults:                          # every case inherits these
      vars: {product: Acme Cloud}
      assert:
        - type: is-json
      threshold: 1.0                   # weighted share of assertions that must pass
    cases:
      - id: refund
        vars: {subject: ..., body: ...}
        assert:
          - type: icontains
            value: refund
            weight: 2

Every problem found is reported at once, each with the file, the case and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .assertions import Assertion, parse_assertion
from .config import Config, ConfigError, display_path, read_yaml
from .prompts import MissingVariableError, Prompt, PromptLibrary

SUITE_FIELDS = {"description", "prompts", "providers", "defaults", "cases"}
DEFAULTS_FIELDS = {"vars", "assert", "threshold"}
CASE_FIELDS = {"id", "description", "vars", "assert", "threshold"}


class SuiteError(ConfigError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Case:
    id: str
    description: str
    variables: dict[str, Any]
    assertions: tuple[Assertion, ...]
    threshold: float
    messages: dict[str, list[dict[str, str]]]  # prompt name -> rendered messages


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    description: str
    prompts: tuple[Prompt, ...]
    providers: tuple[str, ...]
    cases: tuple[Case, ...]


def _names(raw: Any, key: str) -> list[str] | None:
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


def _threshold(raw: dict, default: float) -> float | None:
    value = raw.get("threshold", default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value <= 1
    ):
        return None
    return float(value)


def load_suite(
    path: Path,
    config: Config,
    library: PromptLibrary,
    providers_override: list[str] | None = None,
) -> Suite:
    shown = display_path(path)
    problems: list[str] = []

    def problem(where: str, what: str) -> None:
        problems.append(f"{shown}: {where}{what}" if where else f"{shown}: {what}")

    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise SuiteError(
            [f"{shown}: expected a mapping with prompts, providers and cases"]
        )
    for key in sorted(set(raw) - SUITE_FIELDS):
        problem("", f"unknown field '{key}'; known: {', '.join(sorted(SUITE_FIELDS))}")

    prompts: list[Prompt] = []
    prompt_names = _names(raw, "prompts")
    if prompt_names is None:
        problem(
            "", "'prompts' must list prompt files in prompts/, e.g. [extract_ticket]"
        )
    for name in prompt_names or []:
        try:
            prompts.append(library.get(name))
        except ConfigError as exc:
            problem("", str(exc))

    provider_names = providers_override or _names(raw, "providers")
    if provider_names is None:
        problem(
            "",
            "'providers' must list provider profiles from harness.yaml:"
            f" {', '.join(config.providers)}",
        )
    for name in provider_names or []:
        if name not in config.providers:
            problem(
                "",
                f"unknown provider '{name}';"
                f" harness.yaml defines {', '.join(config.providers)}",
            )

    def assertions(items: Any, where: str) -> list[Assertion]:
        if items is None:
            return []
        if not isinstance(items, list):
            problem(where, "'assert' must be a list of assertions")
            return []
        parsed = []
        for number, item in enumerate(items, start=1):
            try:
                parsed.append(
                    parse_assertion(
                        item,
                        suite_dir=path.parent,
                        root=config.root,
                        providers=config.providers,
                        judge_provider=config.judge_provider,
                    )
                )
            except ValueError as exc:
                problem(where, f"assertion {number}: {exc}")
        return parsed

    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        problem("", "'defaults' must be a mapping with vars, assert and threshold")
        defaults = {}
    for key in sorted(set(defaults) - DEFAULTS_FIELDS):
        problem(
            "defaults: ",
            f"unknown field '{key}'; known: {', '.join(sorted(DEFAULTS_FIELDS))}",
        )
    default_vars = defaults.get("vars") or {}
    if not isinstance(default_vars, dict):
        problem("defaults: ", "'vars' must be a mapping of variable names to values")
        default_vars = {}
    default_assertions = assertions(defaults.get("assert"), "defaults: ")
    default_threshold = _threshold(defaults, 1.0)
    if default_threshold is None:
        problem("defaults: ", "'threshold' must be a number from 0 to 1")
        default_threshold = 1.0

    cases: list[Case] = []
    raw_cases = raw.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        problem("", "'cases' must be a non-empty list")
        raw_cases = []
    seen: set[str] = set()
    for number, raw_case in enumerate(raw_cases, start=1):
        if not isinstance(raw_case, dict):
            problem(f"case {number}: ", "expected a mapping with vars and assert")
            continue
        case_id = raw_case.get("id", f"case-{number}")
        if not isinstance(case_id, (str, int)) or isinstance(case_id, bool):
            problem(f"case {number}: ", f"'id' must be text, got {case_id!r}")
            continue
        case_id = str(case_id)
        where = f"case '{case_id}': "
        if case_id in seen:
            problem(where, "duplicate id; each case needs its own")
        seen.add(case_id)
        for key in sorted(set(raw_case) - CASE_FIELDS):
            problem(
                where, f"unknown field '{key}'; known: {', '.join(sorted(CASE_FIELDS))}"
            )
        case_vars = raw_case.get("vars") or {}
        if not isinstance(case_vars, dict):
            problem(where, "'vars' must be a mapping of variable names to values")
            continue
        variables = {**default_vars, **case_vars}
        case_assertions = default_assertions + assertions(raw_case.get("assert"), where)
        if not case_assertions:
            problem(
                where,
                "no assertions: a case must check something"
                " (add 'assert' here or in defaults)",
            )
        threshold = _threshold(raw_case, default_threshold)
        if threshold is None:
            problem(where, "'threshold' must be a number from 0 to 1")
            continue
        description = raw_case.get("description", "")
        if not isinstance(description, str):
            problem(where, "'description' must be text")
        rendered = {}
        for prompt in prompts:
            try:
                rendered[prompt.name] = prompt.render(variables)
            except MissingVariableError as exc:
                problem(where, f"prompt '{prompt.name}': missing variable: {exc}")
            # A template can also fail on some values, e.g. a filter given a number.
            except Exception as exc:
                problem(
                    where,
                    f"prompt '{prompt.name}': cannot render:"
                    f" {type(exc).__name__}: {exc}",
                )
        cases.append(
            Case(
                case_id,
                str(description),
                variables,
                tuple(case_assertions),
                threshold,
                rendered,
            )
        )

    for name in provider_names or []:
        profile = config.providers.get(name)
        uses_cost = any(a.type == "cost" for case in cases for a in case.assertions)
        if profile and uses_cost and profile.cost_usd(0, 0) is None:
            problem(
                "",
                f"a cost assertion needs prices, and provider '{name}'"
                " sets no price_per_million_tokens",
            )
    if problems:
        raise SuiteError(problems)
    return Suite(
        name=path.stem,
        path=path,
        description=str(raw.get("description", "")),
        prompts=tuple(prompts),
        providers=tuple(provider_names or ()),
        cases=tuple(cases),
    )


def discover_suites(config: Config) -> list[Path]:
    paths = sorted(
        [*config.suites_dir.glob("*.yaml"), *config.suites_dir.glob("*.yml")]
    )
    if not paths:
        raise ConfigError(f"no suites (*.yaml) in {display_path(config.suites_dir)}")
    return paths


def load_suites(
    paths: list[Path], config: Config, providers_override: list[str] | None = None
) -> list[Suite]:
    """Loads every suite, then raises one SuiteError listing all their problems."""
    library = PromptLibrary(config.prompts_dir)
    suites, problems = [], []
    for path in paths:
        if not path.is_file():
            problems.append(f"{path}: no such suite file")
            continue
        try:
            suites.append(load_suite(path, config, library, providers_override))
        except SuiteError as exc:
            problems.extend(exc.problems)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise SuiteError(problems)
    return suites
