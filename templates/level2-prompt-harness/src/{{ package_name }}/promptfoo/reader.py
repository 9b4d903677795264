"""The reader of a promptfoo config, which makes it the harness's own pieces.

promptfoo configs, read as they are: `eval promptfooconfig.yaml` runs a promptfoo
user's suite with no rewrite and no second copy to keep in step.

Carried over: prompts (inline, `file://` text files with several prompts split by
`---` lines, chat prompts as JSON or YAML message lists), providers (`echo`,
`openai:<model>`, Python providers, or a harness.yaml profile of the same name),
tests (inline or `file://` YAML, JSON, JSON Lines or CSV with `__expected` columns),
`defaultTest`, vars (`file://` contents, lists that make one case per value, vars that
use other vars), assertions with `$ref` templates, `transform` (Python), `metric`,
`assert-set`, `weight` and `threshold`. What cannot run here (JavaScript, webhooks,
promptfoo's model-graded types other than llm-rubric) becomes a skipped assertion
that says so, and each such thing is listed once as a note.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from .. import jsonvalue
from ..config import Config, ProviderProfile
from ..configfile import display_path
from ..errors import ConfigError
from ..prompts import Prompt
from ..providers.python_function import USER_CODE_FAILURES, load_file_function
from .notation import (
    DEFAULT_EMBEDDING,
    DEFAULT_GRADER,
    NOT_HERE,
    OPENAI_BASE_URL,
    PROMPT_SEPARATOR,
    RENAMED,
    THRESHOLD_IS_VALUE,
    WITH_THRESHOLD,
    assertion_from_text,
    chat_messages,
    environment,
    expand_vars,
    first_line,
    flat_assertions,
    is_python_reference,
    load_yaml,
    resolve_variables,
)

# What promptfoo gives these fields: (the type, what the message asks for).
_SHAPES: dict[str, tuple[type, str]] = {
    "vars": (dict, "a mapping of variable names to values"),
    "assert": (list, "a list of assertions"),
    "options": (dict, "a mapping such as {transform: ..., provider: ...}"),
    "assertionTemplates": (dict, "a mapping of names to assertions"),
}


@dataclass
class Translated:
    """A promptfoo config as the harness's own pieces."""

    prompts: list[Prompt] = field(default_factory=list)
    profiles: dict[str, ProviderProfile] = field(default_factory=dict)
    providers: list[str] = field(default_factory=list)
    cases: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    judge: str | None = None
    embedding: str | None = None  # the profile of `similar`, when harness.yaml has none
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class PromptfooReader:
    """Reads one promptfoo config; every problem is collected, not raised."""

    def __init__(self, path: Path, raw: dict[str, Any], config: Config) -> None:
        self.path = path
        self.base = path.parent
        self.raw = raw
        self.config = config
        self.shown = display_path(path)
        self.out = Translated()
        self.environment = environment()
        self._noted: set[str] = set()
        # assertionTemplates; None when of another shape (said once, not per $ref)
        self.templates: dict[str, Any] | None = {}

    def problem(self, what: str) -> None:
        self.out.problems.append(f"{self.shown}: {what}")

    def shaped(self, raw: dict[str, Any], key: str, where: str) -> Any:
        """raw[key] when it has the shape promptfoo gives that field; else empty,
        with a problem that names the field (the run stops before any call)."""
        kind, wanted = _SHAPES[key]
        value = raw.get(key) or kind()
        if not isinstance(value, kind):
            self.problem(f"{where}'{key}' must be {wanted}, got {value!r}")
            return kind()
        return value

    def note(self, what: str) -> None:
        if what not in self._noted:
            self._noted.add(what)
            self.out.notes.append(f"{self.shown}: {what}")

    def read(self) -> Translated:
        for key in ("scenarios", "nunjucksFilters", "extensions", "redteam"):
            if key in self.raw:
                self.note(f"'{key}' is not carried over")
        self.prompts(self.raw.get("prompts"))
        self.providers(self.raw.get("providers"))
        known = len(self.out.problems)
        templates = self.shaped(self.raw, "assertionTemplates", "")
        self.templates = templates if len(self.out.problems) == known else None
        default = self.raw.get("defaultTest") or {}
        if isinstance(default, str):
            default = self.load_structured(default, "defaultTest") or {}
        if not isinstance(default, dict):
            self.problem("'defaultTest' must be a mapping")
            default = {}
        # Checked once here, not once for each test that inherits it.
        default = {
            **default,
            "vars": self.shaped(default, "vars", "defaultTest: "),
            "assert": self.shaped(default, "assert", "defaultTest: "),
            "options": self.shaped(default, "options", "defaultTest: "),
        }
        for origin, test in self.tests(self.raw.get("tests")):
            self.case(origin, test, default)
        self.graders()
        return self.out

    def graders(self) -> None:
        """promptfoo's own grader and embedding model, for llm-rubric and similar,
        when neither the config nor harness.yaml names one."""
        used = {
            assertion["type"].removeprefix("not-")
            for _, case in self.out.cases
            for assertion in flat_assertions(case["assert"])
        }
        named = self.out.judge or self.config.judge_provider
        if "llm-judge" in used and not named:
            self.out.judge = self.profile(DEFAULT_GRADER)
        if "similar" in used and not self.config.embedding_provider:
            name = DEFAULT_EMBEDDING
            self.out.profiles[name] = ProviderProfile(
                name=name,
                type="openai",
                base_url=OPENAI_BASE_URL,
                model=name.split(":")[-1],
                api_key_env="OPENAI_API_KEY",
                embedding_model=name.split(":")[-1],
            )
            self.out.embedding = name

    # -- files -----------------------------------------------------------------------

    def file(self, reference: str) -> Path:
        return self.base / reference.removeprefix("file://")

    def read_text(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.problem(f"cannot read {display_path(path)}: {exc}")
            return None

    def load_structured(self, reference: str, what: str) -> Any:
        path = self.file(reference)
        text = self.read_text(path)
        if text is None:
            return None
        try:
            if path.suffix == ".jsonl":
                return [
                    jsonvalue.loads(line) for line in text.splitlines() if line.strip()
                ]
            return load_yaml(text)  # JSON is YAML too
        except (ValueError, yaml.YAMLError) as exc:
            self.problem(f"{what}: cannot parse {display_path(path)}: {exc}")
            return None

    # -- prompts ---------------------------------------------------------------------

    def prompts(self, raw: Any) -> None:
        if isinstance(raw, str):
            raw = [raw]
        if isinstance(raw, dict):  # {file://path: label}
            raw = [{"id": key, "label": value} for key, value in raw.items()]
        if not isinstance(raw, list) or not raw:
            self.problem(
                "'prompts' must list prompts: text, file:// paths or {raw, label}"
            )
            return
        for item in raw:
            label = None
            if isinstance(item, dict):
                label = item.get("label")
                item = item.get("raw", item.get("id"))
            label = _label(label)
            if label is not None and not isinstance(label, str):
                self.problem(f"prompt {item!r}: 'label' must be text, got {label!r}")
                continue
            if not isinstance(item, str):
                self.problem(f"prompt {item!r}: expected text or a file:// path")
                continue
            if item.startswith("file://"):
                self.prompt_file(item, label)
            else:
                self.add_prompt(item, label or first_line(item), "inline prompt")

    def prompt_file(self, reference: str, label: str | None) -> None:
        pattern = str(self.file(reference))
        paths = sorted(Path(p) for p in glob.glob(pattern)) or [Path(pattern)]
        for path in paths:
            if path.suffix in (".py", ".js", ".ts", ".mjs", ".cjs"):
                self.problem(
                    f"{reference}: prompt functions do not run here; write the prompt"
                    " as text or as a JSON/YAML list of messages"
                )
                continue
            text = self.read_text(path)
            if text is None:
                continue
            name = label or path.stem
            if path.suffix in (".json", ".yaml", ".yml"):
                self.add_prompt(text, name, display_path(path))
                continue
            parts = [p.strip() for p in PROMPT_SEPARATOR.split(text) if p.strip()]
            for number, part in enumerate(parts, start=1):
                self.add_prompt(
                    part,
                    f"{name}:{number}" if len(parts) > 1 else name,
                    display_path(path),
                )

    def add_prompt(self, text: str, name: str, where: str) -> None:
        messages = chat_messages(text)
        if messages is None:
            messages = [{"role": "user", "content": text}]
        taken = {prompt.name for prompt in self.out.prompts}
        unique, number = name, 2
        while unique in taken:
            unique, number = f"{name} ({number})", number + 1
        templates = []
        for message in messages:
            try:
                template = self.environment.from_string(message["content"])
            except jinja2.TemplateSyntaxError as exc:
                self.problem(
                    f"{where}: template error on line {exc.lineno}: {exc.message}"
                )
                return
            templates.append((message["role"], template))
        self.out.prompts.append(Prompt(unique, self.path, tuple(templates)))

    # -- providers -------------------------------------------------------------------

    def providers(self, raw: Any) -> None:
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not raw:
            self.problem(
                "'providers' must list provider ids such as echo or openai:gpt-4o-mini"
            )
            return
        for item in raw:
            options: dict[str, Any] = {}
            if isinstance(item, dict) and "id" not in item and len(item) == 1:
                ((identifier, options),) = item.items()  # {openai:gpt-4o: {config...}}
                options = options if isinstance(options, dict) else {}
            elif isinstance(item, dict):
                identifier, options = item.get("id"), item
            else:
                identifier = item
            if not isinstance(identifier, str) or not identifier:
                self.problem(f"provider {item!r}: expected an id such as echo")
                continue
            label, settings = _label(options.get("label")), options.get("config")
            if label is not None and not isinstance(label, str):
                self.problem(
                    f"provider {identifier}: 'label' must be text, got {label!r}"
                )
                continue
            if settings is not None and not isinstance(settings, dict):
                self.problem(
                    f"provider {identifier}: 'config' must map request parameters"
                    f" to values, got {settings!r}"
                )
                continue
            name = self.profile(identifier, label, settings)
            if name is not None:
                self.out.providers.append(name)

    def profile(
        self, identifier: str, label: Any = None, settings: Any = None
    ) -> str | None:
        """The profile for a promptfoo provider id: promptfoo's echo; else a
        harness.yaml profile of that name (point promptfoo's ids at your own
        endpoints); else one built from the id. Its name, or None if it cannot run."""
        name = str(label) if label else identifier
        own = self.config.providers.get(name)
        params = dict(settings) if isinstance(settings, dict) else {}
        if identifier == "echo":
            if own is not None:  # harness.yaml's echo stays as it is for its suites
                name = f"{name} (promptfoo)"
            profile = ProviderProfile(name=name, type="echo", call_style="promptfoo")
        elif own is not None:
            if params:
                self.note(
                    f"provider {name}: its config is not carried over;"
                    " harness.yaml's profile of that name is used as it is"
                )
            return name
        elif identifier.startswith("openai:"):
            model = identifier.split(":")[-1]
            for key in ("apiKey", "apiBaseUrl", "apiHost"):
                if params.pop(key, None) is not None:
                    self.note(
                        f"provider {identifier}: '{key}' is not carried over;"
                        " the key and address come from the environment here"
                    )
            profile = ProviderProfile(
                name=name,
                type="openai",
                base_url=OPENAI_BASE_URL,
                model=model,
                api_key_env="OPENAI_API_KEY",
                params=params,
            )
        elif identifier.startswith("python:") or is_python_reference(identifier):
            reference = "file://" + identifier.removeprefix("python:").removeprefix(
                "file://"
            )
            try:
                load_file_function(reference, self.base, "call_api")
            except ConfigError as exc:
                self.problem(f"provider {identifier}: {exc}")
                return None
            profile = ProviderProfile(
                name=name,
                type="python",
                function=f"file://{self.file(reference)}",
                params=params,
                call_style="promptfoo",
            )
        else:
            self.problem(
                f"provider {identifier}: no such profile in harness.yaml, and not one"
                " of echo, openai:<model>, python:<file.py>, file://<file.py>;"
                f" add a profile named '{name}' to harness.yaml"
            )
            return None
        known = self.out.profiles.get(name)
        if known is not None and known != profile:
            self.problem(f"provider '{name}' is listed twice with different settings")
        self.out.profiles[name] = profile
        return name

    # -- tests -----------------------------------------------------------------------

    def tests(self, raw: Any) -> list[tuple[str, Any]]:
        if raw is None:
            self.problem("'tests' must list tests, or file:// paths to test files")
            return []
        if not isinstance(raw, list):
            raw = [raw]
        tests: list[tuple[str, Any]] = []
        for number, item in enumerate(raw, start=1):
            if isinstance(item, str) and item.startswith("file://"):
                pattern = str(self.file(item))
                for path in sorted(Path(p) for p in glob.glob(pattern)) or [
                    Path(pattern)
                ]:
                    shown = path.name
                    rows = self.test_file(path)
                    tests.extend(
                        (f"{shown}-{row}", test) for row, test in enumerate(rows, 1)
                    )
            else:
                tests.append((f"test-{number}", item))
        return tests

    def test_file(self, path: Path) -> list[Any]:
        if path.suffix == ".csv":
            text = self.read_text(path)
            if text is None:
                return []
            try:
                rows = list(csv.DictReader(text.splitlines()))
            except csv.Error as exc:
                self.problem(f"{display_path(path)}: not CSV: {exc}")
                return []
            return [self.csv_test(row, path) for row in rows]
        loaded = self.load_structured(str(path), "tests")
        if isinstance(loaded, dict):
            loaded = [loaded]
        if not isinstance(loaded, list):
            self.problem(f"{display_path(path)}: expected a list of tests")
            return []
        return loaded

    def csv_test(self, row: dict[str | None, Any], path: Path) -> dict[str, Any]:
        test: dict[str, Any] = {"vars": {}, "assert": []}
        metric = None
        for column, cell in row.items():
            if column is None:
                self.problem(f"{display_path(path)}: a row has more cells than columns")
                continue
            key, cell = column.strip(), cell or ""
            if key.startswith("__expected"):
                if cell.strip():
                    test["assert"].append(assertion_from_text(cell.strip()))
            elif key == "__description":
                test["description"] = cell
            elif key == "__metric":
                metric = cell
            elif key == "__threshold":
                try:
                    test["threshold"] = float(cell)
                except ValueError:
                    self.problem(
                        f"{display_path(path)}: __threshold {cell!r} is not a number"
                    )
            elif key.startswith("__"):
                self.note(f"CSV column '{key}' is not carried over")
            else:
                test["vars"][key] = cell
        if metric:
            for assertion in test["assert"]:
                assertion["metric"] = metric
        return test

    def case(self, origin: str, test: Any, default: dict[str, Any]) -> None:
        if not isinstance(test, dict):
            self.problem(f"{origin}: expected a mapping with vars and assert")
            return
        for key in ("provider", "providers", "prompts", "scenarios", "providerOutput"):
            if key in test:
                self.note(f"{origin}: '{key}' is not carried over")
        known = len(self.out.problems)
        where = f"{origin}: "
        test_vars = self.shaped(test, "vars", where)
        test_assert = self.shaped(test, "assert", where)
        test_options = self.shaped(test, "options", where)
        if len(self.out.problems) > known:
            return  # a case without the field would only add problems of its own
        options = {**default["options"], **test_options}
        judge = options.get("provider")
        if isinstance(judge, dict):
            judge = judge.get("id")
        if isinstance(judge, str):
            self.out.judge = self.profile(judge) or self.out.judge
        transform = options.get("transform")
        if transform is not None and not (
            isinstance(transform, str) and is_python_reference(transform)
        ):
            self.problem(
                f"{origin}: options.transform must be Python here"
                " (file://transform.py[:function]); JavaScript does not run"
            )
            transform = None
        for key in ("prefix", "suffix", "rubricPrompt"):
            if key in options:
                self.note(f"{origin}: options.{key} is not carried over")
        items = default["assert"] + test_assert
        assertions = [self.assertion(item, origin) for item in items]
        threshold = test.get("threshold", default.get("threshold"))
        try:
            expanded = expand_vars({**default["vars"], **test_vars})
        except ValueError as exc:
            self.problem(f"{origin}: {exc}")
            return
        for number, variables in enumerate(expanded, start=1):
            case_id = origin if len(expanded) == 1 else f"{origin}.{number}"
            case: dict[str, Any] = {
                "id": case_id,
                "vars": self.variables(variables, case_id),
                "assert": assertions,
            }
            description = test.get("description")
            if description is not None:
                case["description"] = str(description)
            if threshold:  # promptfoo reads a threshold of 0 as none
                case["threshold"] = threshold
            if transform is not None:
                case["transform"] = transform
            self.out.cases.append((origin, case))

    def variables(self, variables: dict[str, Any], case_id: str) -> dict[str, Any]:
        loaded: dict[str, Any] = {}
        for name, value in variables.items():
            if isinstance(value, str) and value.startswith("file://"):
                value = self.var_file(name, value, variables, case_id)
            if isinstance(value, str) and value.endswith("\n"):
                value = value[:-1]  # promptfoo drops one trailing newline of each var
            loaded[name] = value
        return resolve_variables(loaded)

    def var_file(
        self, name: str, reference: str, variables: dict[str, Any], case_id: str
    ) -> Any:
        """A var's value from a file: its text, trimmed; a YAML file as JSON text;
        a .py file's get_var(name, prompt, vars)["output"]."""
        path = self.file(reference)
        if path.suffix == ".py":
            try:
                function = load_file_function(reference, self.base, "get_var")
                returned = function(name, "", dict(variables))
            except ConfigError as exc:
                self.problem(f"case '{case_id}': var '{name}': {exc}")
                return ""
            except USER_CODE_FAILURES as exc:
                self.problem(
                    f"case '{case_id}': var '{name}': {reference} raised"
                    f" {type(exc).__name__}: {exc}"
                )
                return ""
            if not isinstance(returned, dict) or not isinstance(
                returned.get("output"), str
            ):
                self.problem(
                    f"case '{case_id}': var '{name}':"
                    " get_var must return {output: text}"
                )
                return ""
            return returned["output"].strip()
        text = self.read_text(path)
        if text is None:
            return ""
        if path.suffix in (".yaml", ".yml"):
            try:
                return json.dumps(
                    load_yaml(text), ensure_ascii=False, separators=(",", ":")
                )
            except yaml.YAMLError as exc:
                self.problem(f"case '{case_id}': var '{name}': invalid YAML: {exc}")
                return ""
        return text.strip()

    # -- assertions ------------------------------------------------------------------

    def reference(self, item: dict[str, Any], origin: str) -> Any:
        target = item["$ref"]
        templates = self.templates
        if templates is None:
            return None
        prefix = "#/assertionTemplates/"
        if not isinstance(target, str) or not target.startswith(prefix):
            self.problem(f"{origin}: $ref {target!r}: only {prefix}<name> is read here")
            return None
        name = target[len(prefix) :]
        if name not in templates:
            known = ", ".join(map(str, templates)) or "none"
            self.problem(
                f"{origin}: $ref {target!r}: no such template (defined: {known})"
            )
            return None
        return templates[name]

    def assertion(self, item: Any, origin: str) -> Any:
        """One promptfoo assertion as a harness assertion (or a skipped one)."""
        if isinstance(item, dict) and "$ref" in item:
            item = self.reference(item, origin)
            if item is None:
                return {"type": "skip", "value": "its $ref could not be resolved"}
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            return item  # the suite loader says what is wrong with it
        kind: str = item["type"]
        negate = kind.startswith("not-")
        base = kind[4:] if negate else kind
        if base == "assert-set":
            children = item.get("assert")
            if isinstance(children, list):  # else the suite loader says what is wrong
                children = [self.assertion(child, origin) for child in children]
            out: dict[str, Any] = {"type": "assert-set", "assert": children}
            for key in ("weight", "metric"):
                if key in item:
                    out[key] = item[key]
            if item.get("threshold"):  # promptfoo reads a threshold of 0 as none
                out["threshold"] = item["threshold"]
            return out
        if base in NOT_HERE:
            return self.skipped(f"promptfoo's {kind} does not run here", item)
        transform = item.get("transform")
        if isinstance(transform, str) and not is_python_reference(transform):
            return self.skipped(f"the transform of this {kind} is JavaScript", item)
        if base == "is-json" and item.get("value") is not None:
            base = "json-schema"  # promptfoo's is-json takes an optional schema
        base = RENAMED.get(base, base)
        out = {"type": f"not-{base}" if negate else base}
        if base in THRESHOLD_IS_VALUE:
            if "threshold" in item:
                out["value"] = item["threshold"]
        elif "value" in item:
            out["value"] = self.value(item["value"], base, origin)
            if base in ("json-schema", "contains-json") and isinstance(
                out["value"], str
            ):
                out["value"] = self.schema(out["value"], origin)
        for key in ("weight", "metric", "transform"):
            if key in item:
                out[key] = item[key]
        if base in WITH_THRESHOLD and "threshold" in item:
            out["threshold"] = item["threshold"]
        if base == "similar":
            out.setdefault("threshold", 0.75)  # promptfoo's default, here 0.8
        if base == "llm-judge":
            out.setdefault("threshold", 0.5)
            provider = item.get("provider")
            if isinstance(provider, dict):
                provider = provider.get("id")
            if isinstance(provider, str):
                name = self.profile(provider)
                if name is not None:
                    out["provider"] = name
        dropped = sorted(
            set(item)
            - {
                "type",
                "value",
                "weight",
                "metric",
                "transform",
                "threshold",
                "provider",
            }
        )
        if dropped:
            self.note(f"{kind}: field(s) {', '.join(dropped)} not carried over")
        return out

    def value(self, value: Any, kind: str, origin: str) -> Any:
        """An assertion's `file://` value is the file's content (parsed if JSON or
        YAML), except for Python checks, which run the file."""
        if not isinstance(value, str) or not value.startswith("file://"):
            return value
        if kind == "python" or is_python_reference(value):
            return value
        path = self.file(value)
        if path.suffix in (".json", ".yaml", ".yml"):
            return self.load_structured(value, f"{origin}: {kind}")
        text = self.read_text(path)
        return "" if text is None else text.strip()

    def schema(self, text: str, origin: str) -> Any:
        """promptfoo reads a schema given as text as YAML (or JSON)."""
        try:
            return load_yaml(text)
        except yaml.YAMLError as exc:
            self.problem(f"{origin}: the JSON schema is not YAML or JSON: {exc}")
            return {}

    def skipped(self, why: str, item: dict[str, Any]) -> dict[str, Any]:
        self.note(f"{why}: such assertions are skipped")
        out: dict[str, Any] = {"type": "skip", "value": why}
        if "metric" in item:
            out["metric"] = item["metric"]
        return out


def _label(label: Any) -> Any:
    """A label as text: YAML reads `label: 2024` as a number, promptfoo shows it."""
    number = isinstance(label, int | float) and not isinstance(label, bool)
    return str(label) if number else label


def read_promptfoo(
    path: Path, raw: dict[str, Any], config: Config, *, as_promptfoo: bool = False
) -> Translated:
    """`raw` as read_yaml gave it, read again here the way promptfoo reads YAML,
    unless it was read that way already (`as_promptfoo`)."""
    if not as_promptfoo:
        # read_yaml read it a moment ago: if it fails now, keep what that found.
        with contextlib.suppress(OSError, UnicodeDecodeError, yaml.YAMLError):
            raw = load_yaml(path.read_text(encoding="utf-8"))
    return PromptfooReader(path, raw, config).read()
