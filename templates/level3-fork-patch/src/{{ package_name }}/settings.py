"""Loading, migrating and documenting settings files against a pydantic schema.

A settings file is a JSON object with a `schema_version`. Loading it:
1. refuses a key given twice in one object (plain `json.load` silently keeps the last);
2. runs the migrations from its version to the current one, in order, each logged once;
3. validates it with the schema (a `configfile.Settings` model), which refuses unknown
   keys and names them.
Every problem becomes one `ConfigError` line in the settings grammar of configfile.py,
`<file>: <key>: <reason>, got <value>`. The file is JSON, not YAML, because the
upstream reads it as JSON: a YAML reader would take what the upstream refuses.
"""

from __future__ import annotations

import ast
import json
import keyword
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)

from .configfile import BoundedAliases, Settings, display_path, validate
from .errors import ConfigError
from .schedule import (
    Schedule,
    ScheduleError,
    format_number,
    format_schedule,
    parse_schedule,
)

ModelT = TypeVar("ModelT", bound=Settings)

log = logging.getLogger(__name__)


def _to_schedule(value: object, numbers_only: bool = False) -> Schedule:
    if isinstance(value, Schedule):
        return value
    # The settings grammar adds ", got <value>" after each of these reasons.
    if isinstance(value, bool):
        raise ValueError("expected a schedule string such as '0:(1.0)'")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        value = format_number(float(value))
    if not isinstance(value, str):
        raise ValueError("expected a schedule string such as '0:(1.0)'")
    try:
        return parse_schedule(value, numbers_only=numbers_only)
    except ScheduleError as error:
        raise ValueError(str(error)) from None


def _to_number_schedule(value: object) -> Schedule:
    return _to_schedule(value, numbers_only=True)


ScheduleField = Annotated[
    Schedule,
    PlainValidator(_to_schedule),
    PlainSerializer(format_schedule, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "format": "keyframe-schedule",
            "examples": ["0:(1.0), 30:(1.02)", "0:(0.5 + 0.1 * sin(t / 8))"],
        }
    ),
]
"""A keyframe schedule: parsed on load ("0.75" reads "0:(0.75)"), written as text."""

NumberScheduleField = Annotated[
    Schedule,
    PlainValidator(_to_number_schedule),
    PlainSerializer(format_schedule, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "format": "keyframe-schedule-numbers",
            "examples": ["0:(1.0), 30:(1.02)", "0.75"],
        }
    ),
]
"""A schedule for an upstream whose parser takes numbers only: `frame:(number)`."""


@dataclass(frozen=True)
class Migration:
    """From `version - 1` to `version`: renames, value remaps, removals, in that order.

    Each step is idempotent: a key already renamed, a value already remapped and a key
    already removed are left alone.
    """

    version: int
    description: str
    renames: Mapping[str, str] = field(default_factory=dict)
    remaps: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)
    removals: Sequence[str] = ()

    def apply(self, data: dict[str, Any], where: str = "settings") -> dict[str, Any]:
        result = dict(data)
        for old, new in self.renames.items():
            if old in result:
                if new in result:
                    raise ConfigError(
                        f"{where}: {old}: renamed {new} in schema version"
                        f" {self.version}, and both are set: keep one, got"
                        f" {result[old]!r} and {result[new]!r}"
                    )
                result[new] = result.pop(old)
        for key, table in self.remaps.items():
            if key not in result:
                continue
            for before, after in table.items():
                # Compare types too: True == 1 in Python, but not in a settings file.
                if type(result[key]) is type(before) and result[key] == before:
                    result[key] = after
                    break
        for key in self.removals:
            result.pop(key, None)
        result["schema_version"] = self.version
        return result


def check_migrations(migrations: Sequence[Migration], current: int) -> None:
    """Migrations must go up one version at a time and end at the current version."""
    versions = [migration.version for migration in migrations]
    if versions != list(range(current - len(migrations) + 1, current + 1)):
        raise ValueError(
            f"migrations {versions} do not lead step by step to version {current}"
        )


def migrate(
    data: dict[str, Any],
    migrations: Sequence[Migration],
    current: int,
    *,
    where: str = "settings",
) -> dict[str, Any]:
    """`data` brought to the current schema version; each migration logged once."""
    check_migrations(migrations, current)
    oldest = migrations[0].version - 1 if migrations else current
    if "schema_version" not in data:
        raise ConfigError(
            f"{where}: schema_version: required: add the version the file was written"
            f' for ("schema_version": {current} for a new file)'
        )
    version = data["schema_version"]
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not oldest <= version <= current
    ):
        raise ConfigError(
            f"{where}: schema_version: this schema reads {oldest} to {current},"
            f" got {version!r}"
        )
    for migration in migrations:
        if migration.version > version:
            data = migration.apply(data, where)
            log.info(
                "%s: migrated to schema version %d: %s",
                where,
                migration.version,
                migration.description,
            )
    return data


def _refuse_duplicates(where: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ConfigError(
                    f"{where}: {key}: given twice in one object (JSON would keep"
                    f" only the last): remove one, got {result[key]!r} and {value!r}"
                )
            result[key] = value
        return result

    return hook


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from a file, refusing duplicate keys, NaN and infinity."""
    where = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{where}: is a folder, not a settings file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    try:
        data = json.loads(
            text,
            object_pairs_hook=_refuse_duplicates(where),
            parse_constant=_refuse_constant,
        )
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{where}:{error.lineno}: not valid JSON: {error.msg}"
        ) from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid JSON: nested too deeply") from None
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: expected a JSON object of settings, got {type(data).__name__}"
        )
    return data


def load_settings(
    path: Path,
    model: type[ModelT],
    migrations: Sequence[Migration],
    current: int,
) -> ModelT:
    """The settings file at `path`, migrated and validated by `model`."""
    where = display_path(path)
    data = migrate(read_json_object(path), migrations, current, where=where)
    return validate(model, data, where=where)


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="validation")


def markdown_table(model: type[BaseModel]) -> str:
    """One row per parameter: name, type, default, range, description."""
    schema = json_schema(model)
    definitions = schema.get("$defs", {})
    rows = [
        "| name | type | default | range | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, info in schema.get("properties", {}).items():
        spec = _resolve(info, definitions)
        default = (
            model.model_fields[name].get_default(call_default_factory=True)
            if name in model.model_fields
            else None
        )
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        shown_default = json.dumps(
            format_schedule(default) if isinstance(default, Schedule) else default
        )
        rows.append(
            "| "
            + " | ".join(
                _cell(part)
                for part in (
                    f"`{name}`",
                    _type_name(spec, definitions),
                    f"`{shown_default}`",
                    _range(spec),
                    str(info.get("description", spec.get("description", ""))),
                )
            )
            + " |"
        )
    return "\n".join(rows) + "\n"


def _resolve(info: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    reference = info.get("$ref") or (info.get("allOf") or [{}])[0].get("$ref")
    if isinstance(reference, str):
        return {**definitions.get(reference.split("/")[-1], {}), **info}
    return info


def _type_name(spec: dict[str, Any], definitions: dict[str, Any]) -> str:
    if "enum" in spec:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in spec["enum"])
    if "const" in spec:
        return f"`{json.dumps(spec['const'])}`"
    if spec.get("format") == "keyframe-schedule":
        return "schedule"
    if "anyOf" in spec:
        return " or ".join(
            _type_name(_resolve(s, definitions), definitions) for s in spec["anyOf"]
        )
    kind = spec.get("type", "any")
    if kind == "object" and isinstance(spec.get("additionalProperties"), dict):
        return f"object of {_type_name(spec['additionalProperties'], definitions)}"
    if kind == "array" and isinstance(spec.get("items"), dict):
        return f"array of {_type_name(spec['items'], definitions)}"
    return str(kind)


def _range(spec: dict[str, Any]) -> str:
    parts = []
    for key, symbol in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
        ("multipleOf", "multiple of"),
        ("minLength", "length >="),
        ("maxLength", "length <="),
    ):
        if key in spec:
            parts.append(f"{symbol} {spec[key]}")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# Drafting a schema from an upstream's defaults file.

RESERVED_FIELD_NAMES = set(dir(Settings)) | {"schema_version"}


def read_defaults(path: Path) -> tuple[dict[str, Any], list[str]]:
    """An upstream's defaults and notes on them (see `find_defaults`)."""
    data, notes, _ = find_defaults(path)
    return data, notes


def find_defaults(path: Path) -> tuple[dict[str, Any], list[str], str]:
    """An upstream's defaults, notes on them, and the form they were found in.

    The forms real upstreams keep their defaults in: a JSON or YAML settings file; in
    Python, a dict literal (assigned, or returned by a function), a function of plain
    assignments that returns `locals()` (deforum's args.py), dataclass fields, or
    argparse `add_argument(..., default=...)` calls. Duplicate keys are reported, not
    refused: they are the upstream's, and the draft keeps the value that the
    upstream's own loader keeps (the last).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"{path}: cannot read it ({error.__class__.__name__})"
        ) from None
    notes: list[str] = []

    def keep_last(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                notes.append(
                    f"key {key!r} appears twice; the draft keeps the last value"
                )
            result[key] = value
        return result

    data: object
    if path.suffix in (".yaml", ".yml"):
        data, found = _yaml_mapping(path, text), "a YAML mapping"
    elif path.suffix == ".py":
        data, found = _python_defaults(path, text, notes)
    else:
        try:
            data, found = json.loads(text, object_pairs_hook=keep_last), "a JSON object"
        except json.JSONDecodeError:
            data, found = _python_defaults(path, text, notes)
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise ConfigError(f"{path}: expected an object (a dict) with string keys")
    if not data:
        raise ConfigError(f"{path}: {found} with no keys: nothing to draft")
    return data, notes, found


def _yaml_mapping(path: Path, text: str) -> object:
    """The upstream's YAML settings. Its own file, so a key given twice is the
    upstream's business; aliases that expand past what anything can walk are not."""
    import yaml

    class Loader(BoundedAliases, yaml.SafeLoader):  # type: ignore[misc,unused-ignore]
        pass

    try:
        return yaml.load(text, Loader=Loader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}".splitlines()[0]) from None


def _literal_value(node: ast.expr) -> tuple[bool, object]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return False, None


def _dict_literal(node: ast.Dict, notes: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in zip(node.keys, node.values, strict=True):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            continue
        ok, literal = _literal_value(value)
        if not ok:
            notes.append(f"key {key.value!r}: not a literal, left out")
            continue
        if key.value in result:
            notes.append(
                f"key {key.value!r} appears twice; the draft keeps the last value"
            )
        result[key.value] = literal
    return result


def _assignments(body: list[ast.stmt], notes: list[str], where: str) -> dict[str, Any]:
    """name -> literal value of each plain `name = value` in a block."""
    result: dict[str, Any] = {}
    for statement in body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        for target in targets:
            if not isinstance(target, ast.Name) or value is None:
                continue
            ok, literal = _literal_value(value)
            if ok:
                result[target.id] = literal
            elif not (isinstance(value, ast.Call) and _call_name(value) == "field"):
                notes.append(f"{where}: {target.id} is not a literal, left out")
            else:
                default = _keyword(value, "default")
                if default is not None and _literal_value(default)[0]:
                    result[target.id] = _literal_value(default)[1]
                else:
                    notes.append(f"{where}: {target.id} has no literal default")
    return result


def _call_name(node: ast.Call) -> str:
    function = node.func
    if isinstance(function, ast.Attribute):
        return function.attr
    return function.id if isinstance(function, ast.Name) else ""


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _returns(function: ast.FunctionDef) -> list[ast.expr]:
    return [
        node.value
        for node in ast.walk(function)
        if isinstance(node, ast.Return) and node.value is not None
    ]


def _is_dataclass(node: ast.ClassDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else ""
        if isinstance(target, ast.Name):
            name = target.id
        if name == "dataclass":
            return True
    return False


def _argparse_defaults(tree: ast.Module, notes: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _call_name(node) == "add_argument"):
            continue
        options = [
            arg.value
            for arg in node.args
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        ]
        dest_node = _keyword(node, "dest")
        if isinstance(dest_node, ast.Constant) and isinstance(dest_node.value, str):
            dest = dest_node.value
        else:
            long = [o for o in options if o.startswith("--")]
            dest = (long or options or [""])[0].lstrip("-").replace("-", "_")
        default = _keyword(node, "default")
        if not dest:
            continue
        if default is None:
            store_true = _keyword(node, "action")
            if isinstance(store_true, ast.Constant) and store_true.value in (
                "store_true",
                "store_false",
            ):
                result[dest] = store_true.value == "store_false"
            continue
        ok, literal = _literal_value(default)
        if ok:
            result[dest] = literal
        else:
            notes.append(f"argument {dest}: the default is not a literal, left out")
    return result


def _python_defaults(
    path: Path, text: str, notes: list[str]
) -> tuple[dict[str, Any], str]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        raise ConfigError(
            f"{path}: neither JSON nor Python; settings draft reads a JSON or YAML"
            " file, or Python with a dict literal, a function returning a dict or"
            " locals(), a dataclass, or argparse add_argument defaults"
        ) from None
    for node in tree.body:
        value = getattr(node, "value", None)
        # A dict keyed by frame numbers (deforum's animation_prompts) is no settings.
        if (
            isinstance(node, ast.Expr | ast.Assign | ast.AnnAssign)
            and isinstance(value, ast.Dict)
            and any(
                isinstance(key, ast.Constant) and isinstance(key.value, str)
                for key in value.keys
            )
        ):
            names = [
                t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)
            ]
            what = (
                f"the dict literal assigned to {names[0]}"
                if names
                else "a dict literal"
            )
            return _dict_literal(value, notes), what
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    for function in functions:
        dicts = [r for r in _returns(function) if isinstance(r, ast.Dict)]
        if dicts:
            return _dict_literal(
                dicts[-1], notes
            ), f"the dict {function.name}() returns"
    # deforum's form: functions of assignments that end `return locals()`, merged.
    merged: dict[str, Any] = {}
    found: list[str] = []
    for function in functions:
        if any(
            isinstance(r, ast.Call) and _call_name(r) == "locals"
            for r in _returns(function)
        ):
            merged.update(_assignments(function.body, notes, f"{function.name}()"))
            found.append(f"{function.name}()")
    if merged:
        return merged, f"the assignments of {', '.join(found)} (returning locals())"
    classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    for cls in classes:
        if _is_dataclass(cls):
            merged.update(_assignments(cls.body, notes, cls.name))
            found.append(cls.name)
    if merged:
        return merged, f"the fields of dataclass {', '.join(found)}"
    merged = _argparse_defaults(tree, notes)
    if merged:
        return merged, "argparse add_argument defaults"
    raise ConfigError(
        f"{path}: found no defaults: settings draft reads a dict literal, a function"
        " returning a dict or locals(), a dataclass, or argparse add_argument defaults"
    )


def _python_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        if ":" in value:
            try:
                parse_schedule(value, allow_bare=False)
            except ScheduleError:
                return "str"
            return "ScheduleField"
        return "str"
    if value is None:
        return "str | None"
    if isinstance(value, list):
        kinds = sorted({_python_type(item) for item in value})
        return f"list[{kinds[0]}]" if len(kinds) == 1 else "list[Any]"
    if isinstance(value, dict):
        kinds = sorted({_python_type(item) for item in value.values()})
        return f"dict[str, {kinds[0]}]" if len(kinds) == 1 else "dict[str, Any]"
    return "Any"


def _field_name(key: str, taken: set[str]) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in key) or "field"
    if name[0].isdigit():
        name = "f_" + name
    if keyword.iskeyword(name):
        name += "_"
    elif name in RESERVED_FIELD_NAMES or name.startswith(("_", "model_")):
        name = "upstream_" + name.strip("_")
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _literal(value: object) -> str:
    """Python source for a JSON-like value, its strings quoted as ruff quotes them."""
    if isinstance(value, str):
        if '"' in value and "'" not in value:
            return repr(value)
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    return repr(value)


def _field_line(name: str, kind: str, options: list[str]) -> str:
    line = f"    {name}: {kind} = Field({', '.join(options)})"
    if len(line) <= 88:
        return line
    # One argument a line, as ruff format writes a call that does not fit.
    arguments = [f"        {option}," for option in options]
    return "\n".join([f"    {name}: {kind} = Field(", *arguments, "    )"])


def draft_model(defaults: Mapping[str, Any], class_name: str, source: str) -> str:
    """Python source of a pydantic model with one field per key of `defaults`."""
    if not class_name.isidentifier() or keyword.iskeyword(class_name):
        raise ConfigError(f"{class_name!r} is not a valid class name")
    fields: list[str] = []
    taken: set[str] = set()
    for key, value in defaults.items():
        name = _field_name(key, taken)
        kind = _python_type(value)
        if isinstance(value, dict | list):
            options = [f"default_factory=lambda: {_literal(value)}"]
        elif kind == "ScheduleField":
            options = [f"parse_schedule({_literal(value)})"]
        else:
            options = [_literal(value)]
        if name != key:
            options.append(f"alias={_literal(key)}")
        options.append(f"description={_literal(f'Upstream key {key}.')}")
        fields.append(_field_line(name, kind, options))
    body = "\n".join(fields)
    typing_names = "Any, Literal" if "Any" in body else "Literal"
    lines = [
        f'"""Settings of the upstream, drafted from {source}.',
        "",
        "Review every field: narrow the types (Literal choices, ranges with ge/le),",
        "and say in one line what each does. Schedules are typed ScheduleField and",
        'parsed on load."""',
        "",
        "from __future__ import annotations",
        "",
        f"from typing import {typing_names}",
        "",
        "from pydantic import ConfigDict, Field",
        "",
        "from .configfile import Settings",
        *(
            ["from .schedule import parse_schedule"]
            if "parse_schedule(" in body
            else []
        ),
        "from .settings import Migration, ScheduleField",
        "",
        "SCHEMA_VERSION = 1",
        "",
        "# How older settings files reach the current version, oldest first.",
        "MIGRATIONS: tuple[Migration, ...] = ()",
        "",
        "",
        f"class {class_name}(Settings):",
        "    model_config = ConfigDict(populate_by_name=True, validate_default=True)",
        "",
        _field_line(
            "schema_version", "Literal[1]", ["1", 'description="Format version."']
        ),
        body,
    ]
    return "\n".join(lines) + "\n"
