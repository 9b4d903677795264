"""Settings from a YAML file and `key=value` overrides, checked by a pydantic model.

The one settings loader of the project. Each constraint sits beside its field in the
model, and every problem is reported in one grammar, on one line:

    <where>: <key>: <reason>, got <value>

where <where> is the file or "command line", and <key> is dotted (`train.lr`), as an
override spells it. Models derive from `Settings`: unknown keys are refused (with the
closest known key), and types are strict, so `epochs: "3"` is an error, not a 3.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError

SettingsT = TypeVar("SettingsT", bound="Settings")


class Settings(BaseModel):
    """Base of every settings model: strict types, no unknown keys, and checked
    again when a value is assigned."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


_MERGE = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.constructor.ConstructorError):  # type: ignore[misc,unused-ignore]
    """A key given twice in one mapping: PyYAML would keep the last without a word,
    so a second `seed:` or `assert:` would silently replace the first."""

    def __init__(self, key: Any, line: int, first: int, mark: yaml.Mark) -> None:
        super().__init__(problem=f"key {key!r} given twice", problem_mark=mark)
        self.key, self.line, self.first = key, line, first


class UniqueKeys:
    """A loader mix-in that refuses a mapping with a key given twice; a `<<` merge may
    still bring in a key the mapping sets itself, which then wins, as YAML says."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
                    continue  # a scalar key is hashable; PyYAML judges the others
                key = self.construct_object(key_node)  # type: ignore[attr-defined]
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise DuplicateKeyError(key, line, seen[key], key_node.start_mark)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]


# Far more values than any settings file or suite holds; a million take a fraction of a
# second to check and to walk.
MAX_VALUES = 1_000_000


class TooManyValuesError(yaml.YAMLError):  # type: ignore[misc,unused-ignore]
    """A document whose aliases, spelled out, make more than MAX_VALUES values."""


class BoundedAliases:
    """A loader mix-in that refuses a document whose aliases expand past MAX_VALUES
    values. PyYAML shares an aliased value, so loading stays cheap, but whatever walks
    the result (validation, JSON, a report) walks every copy: nine lines of
    `b: &b [*a, *a, ...]` make 10**9 values ("billion laughs")."""

    def construct_document(self, node: yaml.Node) -> Any:
        if expanded_size(node) > MAX_VALUES:
            raise TooManyValuesError(
                f"its aliases expand it to more than {MAX_VALUES:,} values"
            )
        return super().construct_document(node)  # type: ignore[misc]


def expanded_size(root: yaml.Node) -> int:
    """How many values `root` holds with every alias spelled out, up to just past
    MAX_VALUES. An alias is the anchored node itself, so each distinct collection is
    walked once; one that holds itself (`&a [*a]`) never ends: too many."""
    sizes: dict[int, int] = {}  # of collections whose size is known
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, list[yaml.Node], Iterator[yaml.Node]]] = []

    def enter(node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            parts = [part for pair in node.value for part in pair]
        else:
            parts = node.value
        collections = [part for part in parts if not isinstance(part, yaml.ScalarNode)]
        open_nodes.add(id(node))
        stack.append((node, collections, iter(collections)))

    if isinstance(root, yaml.ScalarNode):
        return 1
    enter(root)
    while stack:
        node, collections, pending = stack[-1]
        for child in pending:
            if id(child) in sizes:
                continue
            if id(child) in open_nodes:
                return MAX_VALUES + 1
            enter(child)
            break
        else:
            stack.pop()
            open_nodes.discard(id(node))
            count = len(node.value) * (2 if isinstance(node, yaml.MappingNode) else 1)
            total = 1 + count - len(collections)
            total += sum(sizes[id(child)] for child in collections)
            sizes[id(node)] = min(total, MAX_VALUES + 1)
    return sizes[id(root)]


class SafeChecks(UniqueKeys, BoundedAliases):
    """The checks every YAML loader of the project makes."""


class _Loader(SafeChecks, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader (its C version when the wheel has it: several times
    faster), also reading `3e-4` as a number, as YAML 1.2 does; 1.1 wants a dot,
    refusing a key given twice and aliases that expand too far."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """YAML text as plain values, numbers read as YAML 1.2 reads them."""
    return yaml.load(text, Loader=_Loader)


def display_path(path: Path) -> str:
    """The path as the user would type it: relative to the working folder if inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def not_a_file(path: Path, kind: str = "file") -> str | None:
    """Why `path` cannot be read as a `kind` ("suite file", say), in words that fit
    after its name; None where it can. A folder or a device is named as what it is,
    not as missing."""
    if path.is_file():
        return None
    if path.is_dir():
        return f"is a folder, not a {kind}"
    if path.exists():
        return f"is not a regular file, so no {kind}"
    return f"no such {kind}"


def read_text(path: str | Path) -> str:
    """A settings file's text; every way reading it can fail is one ConfigError line."""
    path = Path(path)
    shown = display_path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{shown}: is a folder, not a settings file") from None
    except OSError as error:
        raise ConfigError(f"{shown}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{shown}: not UTF-8 text (byte {error.start})") from None


def read_yaml(path: str | Path) -> Any:
    """A YAML file's values; every way that can fail is one ConfigError line."""
    path = Path(path)
    shown = display_path(path)
    text = read_text(path)
    try:
        return parse_yaml(text)
    except DuplicateKeyError as error:
        raise ConfigError(
            f"{shown}:{error.line}: key {error.key!r} given twice in one mapping"
            f" (first on line {error.first}); keep one"
        ) from None
    except TooManyValuesError as error:
        raise ConfigError(f"{shown}: {error}; write out what is meant") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark is not None else shown
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file that holds a mapping of settings; an empty file is no settings."""
    values = read_yaml(path)
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"{display_path(Path(path))}: expected a mapping of settings at the top,"
            f" got {_kind(values)}"
        )
    return values


def parse_overrides(model: type[Settings], items: Iterable[str]) -> dict[str, Any]:
    """`key=value` strings as nested values. A value is read as YAML (`3e-4`, `true`,
    `[16, 32]`) unless the key's field is text, which takes it as typed."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or "" in key.split("."):
            example = f"{next(iter(all_keys(model)), 'key')}=value"
            raise ConfigError(
                f"command line: {item!r}: expected key=value, such as {example}"
            )
        parts = key.split(".")
        annotation = field_annotation(model, parts)
        if _is_model(annotation):
            first = next(iter(annotation.model_fields))
            raise ConfigError(
                f"command line: {key}: is a section; set one of its keys, such as"
                f" {key}.{first}=value"
            )
        if annotation is str:
            value: Any = text
        else:
            try:
                value = parse_yaml(text) if text.strip() else None
            except yaml.YAMLError:
                raise ConfigError(
                    f"command line: {key}: cannot read {text!r} as a value"
                ) from None
        _set_nested(result, parts, value)
    return result


def merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers win, key by key, into nested sections; `a.b: 1` is `a: {b: 1}`."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            *parents, last = str(key).split(".")
            target = merged
            for part in parents:
                if not isinstance(target.get(part), dict):
                    target[part] = {}
                target = target[part]
            if isinstance(value, Mapping):
                earlier = target.get(last)
                target[last] = merge(
                    earlier if isinstance(earlier, dict) else {}, value
                )
            else:
                target[last] = value
    return merged


def validate(
    model: type[SettingsT],
    values: Mapping[str, Any],
    *,
    where: str,
    overridden: Iterable[str] = (),
) -> SettingsT:
    """The model from plain values, or a ConfigError in the house grammar. Keys in
    `overridden` (dotted) came from the command line and are reported as such."""
    from_command_line = set(overridden)
    try:
        return model.model_validate(dict(values))
    except ValidationError as error:
        problems = error.errors(include_url=False)
        message = _describe(model, problems[0], values)
        # A cross-field check reports "key: reason" itself, so the key leads the line.
        key = message.partition(":")[0]
        origin = where
        # The key itself, a section holding it, or a section only an override names.
        if any(
            key == k or key.startswith(f"{k}.") or k.startswith(f"{key}.")
            for k in from_command_line
        ):
            origin = "command line"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"{origin}: {message}{more}") from None


def load(
    model: type[SettingsT],
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
) -> SettingsT:
    """The defaults, then the YAML file at `path` (if any), then the overrides."""
    overrides = list(overrides)
    file_values = read_yaml_mapping(path) if path is not None else {}
    from_command_line = parse_overrides(model, overrides)
    where = display_path(Path(path)) if path is not None else "defaults"
    return validate(
        model,
        merge(file_values, from_command_line),
        where=where,
        overridden=flat_keys(from_command_line),
    )


def all_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every settable key of the model, dotted: seed, ..., train.lr, ..."""
    keys: list[str] = []
    for name, info in model.model_fields.items():
        if _is_model(info.annotation):
            keys.extend(all_keys(info.annotation, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def flat_keys(values: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys of nested values: {"train": {"lr": 1}} gives ["train.lr"]."""
    return list(flatten(values, prefix))


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1}} becomes {"train.lr": 1}."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def field_annotation(model: type[BaseModel], parts: list[str]) -> Any:
    """The declared type of the dotted key, or None if the model has no such key."""
    annotation: Any = model
    for part in parts:
        if not _is_model(annotation) or part not in annotation.model_fields:
            return None
        annotation = annotation.model_fields[part].annotation
    return annotation


_REASONS = {
    "greater_than": "must be above {gt}",
    "greater_than_equal": "must be {ge} or more",
    "less_than": "must be below {lt}",
    "less_than_equal": "must be {le} or less",
    "multiple_of": "must be a multiple of {multiple_of}",
    "finite_number": "must be a finite number",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list, such as [16, 32]",
    "dict_type": "expected a mapping of names to values",
    "model_type": "expected a mapping of settings",
    "model_attributes_type": "expected a mapping of settings",
    "literal_error": "must be {expected}",
    "enum": "must be {expected}",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "string_too_short": "must have at least {min_length} character(s)",
    "string_too_long": "must have at most {max_length} character(s)",
    "string_pattern_mismatch": "must match the pattern {pattern}",
    "missing": "required",
}


def _describe(model: type[BaseModel], problem: Any, values: Any = None) -> str:
    key = ".".join(_written_key(problem["loc"], values))
    kind = problem["type"]
    context = {  # "above 0", not "above 0.0"
        name: int(value) if isinstance(value, float) and value.is_integer() else value
        for name, value in (problem.get("ctx") or {}).items()
    }
    if kind == "extra_forbidden":
        return f"{key}: unknown key{_suggestion(model, key)}"
    if kind in ("value_error", "assertion_error"):
        reason = str(context.get("error", problem["msg"]))
    elif kind in _REASONS:
        reason = _REASONS[kind].format(**context)
    else:
        reason = problem["msg"][:1].lower() + problem["msg"][1:]
    value = problem.get("input")
    shown = ""
    if kind != "missing" and not isinstance(value, Mapping):
        text = repr(value)
        shown = f", got {text if len(text) <= 60 else text[:57] + '...'}"
    return f"{key}: {reason}{shown}" if key else f"{reason}{shown}"


def _written_key(loc: tuple[Any, ...], values: Any) -> list[str]:
    """The key as the file spells it. pydantic puts a tagged union member's tag in
    the location (providers.local.openai.model) though no file has that key: a part
    that is not in the values there, before the last, is such a tag."""
    parts: list[str] = []
    current = values
    for index, part in enumerate(loc):
        if isinstance(current, Mapping):
            if part not in current and index < len(loc) - 1:
                continue
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int):
            current = current[part] if 0 <= part < len(current) else None
        else:
            current = None
        parts.append(str(part))
    return parts


def _suggestion(model: type[BaseModel], key: str) -> str:
    # Compare within the key's own section: a shared prefix such as "train." would
    # otherwise make any key of a section look close to any other.
    section, _, leaf = key.rpartition(".")
    owner = field_annotation(model, section.split(".")) if section else model
    if not _is_model(owner):
        return ""
    close = difflib.get_close_matches(leaf, list(owner.model_fields), n=1)
    if close:
        return f" (did you mean {section + '.' if section else ''}{close[0]}?)"
    # The right name in another section: `epochs=3` for `train.epochs=3`.
    elsewhere = [k for k in all_keys(model) if k.rpartition(".")[2] == leaf]
    if elsewhere:
        return f" (did you mean {' or '.join(elsewhere[:3])}?)"
    return ""


def _is_model(annotation: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _kind(value: Any) -> str:
    return "a list" if isinstance(value, list) else f"the value {value!r}"


def _set_nested(target: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    target[parts[-1]] = value
