"""Assertions on structured replies: JSON, XML, HTML and SQL."""

from __future__ import annotations

import importlib
import json
import re
from html.parser import HTMLParser
from typing import Any
from xml.etree import ElementTree

from .base import (
    Assertion,
    CheckError,
    GradeContext,
    ParseContext,
    Prepared,
    Verdict,
    assertion_type,
    no_value,
    parse_json,
    schema_problem,
    schema_validator,
    short,
)


@assertion_type("is-json", prepare=no_value, fields=(), negatable=True)
def is_json(assertion: Assertion, context: GradeContext) -> Verdict:
    _, problem = parse_json(context.output)
    return problem is None, problem or "valid JSON"


def _schema(raw: dict[str, Any], context: ParseContext) -> Prepared:
    return raw.get("value"), {
        "validator": schema_validator(raw.get("value"), context.suite_dir)
    }


@assertion_type("json-schema", prepare=_schema, negatable=True)
def json_schema(assertion: Assertion, context: GradeContext) -> Verdict:
    parsed, problem = parse_json(context.output)
    if problem:
        return False, problem
    problem = schema_problem(assertion.extra["validator"], parsed)
    return problem is None, problem or "matches the schema"


def _optional_schema(raw: dict[str, Any], context: ParseContext) -> Prepared:
    if raw.get("value") is None:
        return None, {}
    return _schema(raw, context)


def find_json(text: str) -> list[Any]:
    """Every JSON object or array inside prose or code fences, in order."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    position = 0
    while True:
        starts = [
            i for i in (text.find("{", position), text.find("[", position)) if i >= 0
        ]
        if not starts:
            return found
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        except RecursionError:
            # Each later start lies inside the same nest: trying them all would
            # take minutes and end the same way.
            raise CheckError("the reply holds JSON nested too deeply to read") from None
        found.append(value)
        position = end


@assertion_type("contains-json", prepare=_optional_schema, negatable=True)
def contains_json(assertion: Assertion, context: GradeContext) -> Verdict:
    """JSON somewhere in the reply (in prose or a code fence); valid under `value`
    when a schema is given."""
    found = find_json(context.output)
    if not found:
        return False, "no JSON object or array in the output"
    validator = assertion.extra.get("validator")
    if validator is None:
        return True, f"found {len(found)} JSON value(s)"
    problems = [schema_problem(validator, value) for value in found]
    if None in problems:
        return True, "found JSON that matches the schema"
    return False, str(problems[0])


# -- XML -----------------------------------------------------------------------------


def _required_elements(raw: dict[str, Any], context: ParseContext) -> Prepared:
    """Element paths such as `analysis.summary` (the root, then a child), as a list,
    as comma-separated text, or as {requiredElements: [...]}; none is fine too."""
    value = raw.get("value")
    if isinstance(value, dict) and list(value) == ["requiredElements"]:
        value = value["requiredElements"]
    if value is None or value == "":
        return (), {}
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list) or not all(
        isinstance(item, str) and item for item in value
    ):
        raise ValueError(
            "'value' must list required elements such as root.child,"
            f" as a list or comma-separated text, got {value!r}"
        )
    return tuple(value), {}


def _has_path(root: ElementTree.Element, parts: list[str]) -> bool:
    if root.tag != parts[0]:
        return False
    node: ElementTree.Element | None = root
    for part in parts[1:]:
        node = node.find(part) if node is not None else None
    return node is not None


def xml_problem(text: str, required: tuple[str, ...] = ()) -> str | None:
    """None when `text` is one well-formed XML document with every required path."""
    if not text.startswith("<"):
        return "XML must start with '<'"
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        return f"not well-formed XML: {exc}"
    missing = [path for path in required if not _has_path(root, path.split("."))]
    return f"missing element(s): {', '.join(missing)}" if missing else None


@assertion_type("is-xml", prepare=_required_elements, fields=("value",), negatable=True)
def is_xml(assertion: Assertion, context: GradeContext) -> Verdict:
    """The whole reply is well-formed XML, with the elements `value` names."""
    problem = xml_problem(context.output, assertion.value)
    return problem is None, problem or "well-formed XML"


_OPENING_TAG = re.compile(r"<\?xml[^>]*\?>|<([A-Za-z_][\w.-]*)[^>]*>")


def xml_fragments(text: str) -> list[str]:
    """Each stretch from an opening tag to the last closing tag of that name."""
    fragments = []
    for match in _OPENING_TAG.finditer(text):
        name = match.group(1)
        if name is None:  # an XML declaration: the document follows it
            following = _OPENING_TAG.search(text, match.end())
            name = following.group(1) if following else None
        if name is None:
            continue
        if match.group(0).endswith("/>") and match.group(1):
            fragments.append(match.group(0))
            continue
        end = text.rfind(f"</{name}>")
        if end > match.start():
            fragments.append(text[match.start() : end + len(name) + 3])
    return fragments


@assertion_type(
    "contains-xml", prepare=_required_elements, fields=("value",), negatable=True
)
def contains_xml(assertion: Assertion, context: GradeContext) -> Verdict:
    """Somewhere in the reply is well-formed XML with the elements `value` names."""
    fragments = xml_fragments(context.output)
    if not fragments:
        return False, "no XML in the output"
    for fragment in fragments:
        if xml_problem(fragment, assertion.value) is None:
            return True, f"found XML {short(fragment[:40])}"
    return False, "no well-formed XML with the required elements"


# -- HTML ----------------------------------------------------------------------------

_HTML_ELEMENT_NAMES = """\
    a abbr address area article aside audio b base bdi bdo blockquote body br button
    canvas caption cite code col colgroup data datalist dd del details dfn dialog
    div dl dt em embed fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 head
    header hgroup hr html i iframe img input ins kbd label legend li link main map
    mark menu meta meter nav noscript object ol optgroup option output p picture pre
    progress q rp rt ruby s samp script search section select slot small source span
    strong style sub summary sup table tbody td template textarea tfoot th thead
    time title tr track u ul var video wbr"""
_VOID_ELEMENT_NAMES = "area base br col embed hr img input link meta source track wbr"
HTML_ELEMENTS = frozenset(_HTML_ELEMENT_NAMES.split())
VOID_ELEMENTS = frozenset(_VOID_ELEMENT_NAMES.split())


class _HtmlScan(HTMLParser):
    """Which elements the text opens, and whether text stands outside all of them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[str] = []
        self.depth = 0
        self.stray_text = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(tag)
        if tag not in VOID_ELEMENTS:
            self.depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self.depth = max(0, self.depth - 1)

    def handle_data(self, data: str) -> None:
        if self.depth == 0 and data.strip():
            self.stray_text = True


def _is_html_element(tag: str) -> bool:
    return tag in HTML_ELEMENTS or "-" in tag  # custom elements have a hyphen


def html_problem(text: str) -> str | None:
    """None when the reply is an HTML document or fragment: HTML elements, and no
    bare text outside them (unless it has a <body>)."""
    body = text.strip()
    if not body:
        return "the output is empty"
    if body.lower().startswith("<?xml"):
        return "the output is XML, not HTML"
    scan = _HtmlScan()
    scan.feed(body)
    scan.close()
    if scan.stray_text and "<body" not in body.lower():
        return "text outside any HTML element"
    if not any(_is_html_element(tag) for tag in scan.elements):
        return "no HTML elements"
    return None


@assertion_type("is-html", prepare=no_value, fields=(), negatable=True)
def is_html(assertion: Assertion, context: GradeContext) -> Verdict:
    """The whole reply is HTML: known HTML elements, no text outside them."""
    problem = html_problem(context.output)
    return problem is None, problem or "HTML"


_HTML_TAG = re.compile(r"</?([A-Za-z][\w-]*)(\s[^<>]*)?/?>")


@assertion_type("contains-html", prepare=no_value, fields=(), negatable=True)
def contains_html(assertion: Assertion, context: GradeContext) -> Verdict:
    """Somewhere in the reply is an HTML element (<p>, </div>, <br/> ...) or a
    doctype."""
    if re.search(r"<!doctype\s+html", context.output, re.IGNORECASE):
        return True, "found an HTML doctype"
    for match in _HTML_TAG.finditer(context.output):
        if _is_html_element(match.group(1).lower()):
            return True, f"found {short(match.group(0))}"
    return False, "no HTML element in the output"


# -- SQL (with the optional sqlglot parser) ------------------------------------------

SQL_DIALECTS = {
    "mysql": "mysql",
    "mariadb": "mysql",
    "postgresql": "postgres",
    "postgres": "postgres",
    "sqlite": "sqlite",
    "bigquery": "bigquery",
    "snowflake": "snowflake",
    "redshift": "redshift",
    "transactsql": "tsql",
    "tsql": "tsql",
    "hive": "hive",
    "trino": "trino",
    "db2": "mysql",
}
# "SELECT name email FROM": a missing comma that a lenient parser reads as an alias.
_MISSING_COMMA = re.compile(
    r"select\s+[A-Za-z_]\w*\s+[A-Za-z_]\w*\s+from", re.IGNORECASE
)


def _sqlglot() -> Any:
    try:
        return importlib.import_module("sqlglot")
    except ImportError:
        raise ValueError(
            "is-sql and contains-sql need the SQL parser sqlglot: install the"
            " project with its 'sql' extra (pip install -e '.[sql]')"
        ) from None


def _sql(raw: dict[str, Any], context: ParseContext) -> Prepared:
    value = raw.get("value") or {}
    if not isinstance(value, dict) or not set(value) <= {
        "databaseType",
        "allowedTables",
    }:
        raise ValueError(
            "'value' must be a mapping with databaseType and/or allowedTables,"
            f" got {value!r}"
        )
    database = str(value.get("databaseType", "MySQL"))
    dialect = SQL_DIALECTS.get(database.lower())
    if dialect is None:
        raise ValueError(
            f"databaseType {database!r} is not one of {', '.join(sorted(SQL_DIALECTS))}"
        )
    tables = value.get("allowedTables")
    if tables is not None and not (
        isinstance(tables, list) and all(isinstance(t, str) for t in tables)
    ):
        raise ValueError("'allowedTables' must be a list of table names")
    # promptfoo writes allowed tables as "statement::database::table".
    allowed = {t.rsplit("::", 1)[-1].lower() for t in tables} if tables else None
    return database, {"dialect": dialect, "allowed": allowed, "sqlglot": _sqlglot()}


def sql_problem(text: str, extra: dict[str, Any]) -> str | None:
    sqlglot = extra["sqlglot"]
    expressions = sqlglot.expressions
    statements = tuple(
        getattr(expressions, name)
        for name in (
            "Query",
            "Insert",
            "Update",
            "Delete",
            "Merge",
            "Create",
            "Drop",
            "Alter",
            "TruncateTable",
            "Use",
            "Set",
        )
        if hasattr(expressions, name)
    )
    if _MISSING_COMMA.search(text):
        return "two names between SELECT and FROM without a comma"
    try:
        parsed = sqlglot.parse(text, read=extra["dialect"])
    except sqlglot.errors.SqlglotError as exc:
        return f"not valid SQL: {str(exc).splitlines()[0]}"
    parsed = [statement for statement in parsed if statement is not None]
    if not parsed:
        return "no SQL statement"
    for statement in parsed:
        if not isinstance(statement, statements):
            return f"not an SQL statement: {short(statement.sql()[:40])}"
    if extra["allowed"] is not None:
        used = {
            table.name.lower()
            for statement in parsed
            for table in statement.find_all(expressions.Table)
        }
        refused = sorted(used - extra["allowed"])
        if refused:
            return f"uses table(s) not allowed: {', '.join(refused)}"
    return None


@assertion_type("is-sql", prepare=_sql, negatable=True)
def is_sql(assertion: Assertion, context: GradeContext) -> Verdict:
    """The whole reply is SQL that parses in `value.databaseType` (default MySQL),
    using only `value.allowedTables` if given."""
    problem = sql_problem(context.output.strip(), assertion.extra)
    return problem is None, problem or f"valid {assertion.value} SQL"


_SQL_FENCE = re.compile(r"```(?:sql)?([^`]+)```", re.IGNORECASE)


@assertion_type("contains-sql", prepare=_sql, negatable=True)
def contains_sql(assertion: Assertion, context: GradeContext) -> Verdict:
    """The SQL in the reply's first code fence (or the whole reply if it has none)
    parses, as in is-sql."""
    fence = _SQL_FENCE.search(context.output)
    text = fence.group(1) if fence else context.output
    problem = sql_problem(text.strip(), assertion.extra)
    return problem is None, problem or f"valid {assertion.value} SQL"
