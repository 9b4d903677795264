"""Prompt files: chat messages as Jinja2 templates, plus the model parameters they need.

A prompt is a YAML file in prompts/:

    params: {temperature: 0, max_tokens: 300}
    tools:                             # optional: OpenAI-style tool declarations
      - type: function
        function: {name: lookup_order, parameters: {type: object, ...}}
    messages:
      - role: system
        content: You sort support emails.
      - role: user
        content: "Subject: {{ subject }}"

A .txt, .md or .j2 file is a single user message with no parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .configfile import display_path, read_yaml
from .errors import ConfigError

ROLES = ("system", "user", "assistant")
PLAIN_SUFFIXES = (".txt", ".md", ".j2")


class MissingVariableError(ConfigError):
    """A template uses a variable the case does not define."""

    """Rendering used a variable the case does not define."""


@dataclass(frozen=True)
class Prompt:
    name: str
    path: Path
    templates: tuple[tuple[str, jinja2.Template], ...]
    params: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] = field(default_factory=list)

    def render(self, variables: dict[str, Any]) -> list[dict[str, str]]:
        try:
            return [
                {"role": role, "content": template.render(variables)}
                for role, template in self.templates
            ]
        except jinja2.UndefinedError as exc:
            raise MissingVariableError(exc.message or str(exc)) from None


def _environment(prompts_dir: Path) -> jinja2.Environment:
    # StrictUndefined: a missing variable must stop the suite, not render as ''.
    # No autoescape: prompts are plain text sent to a model, never HTML. Sandboxed: a
    # prompt file from someone else cannot reach Python's internals
    # (`{{ ''.__class__.__mro__ }}`) through the values it is given.
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(prompts_dir),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


class PromptLibrary:
    """Loads each prompt file once, by name (file name without suffix) or by path."""

    def __init__(self, prompts_dir: Path) -> None:
        self.prompts_dir = prompts_dir
        self._environment = _environment(prompts_dir)
        self._loaded: dict[Path, Prompt] = {}

    def find(self, reference: str) -> Path:
        direct = self.prompts_dir / reference
        if direct.is_file():
            return direct
        for suffix in (".yaml", ".yml", *PLAIN_SUFFIXES):
            candidate = self.prompts_dir / f"{reference}{suffix}"
            if candidate.is_file():
                return candidate
        raise ConfigError(
            f"no prompt file '{reference}' in {display_path(self.prompts_dir)}"
        )

    def get(self, reference: str) -> Prompt:
        path = self.find(reference).resolve()
        if path not in self._loaded:
            self._loaded[path] = self._load(path, Path(reference).stem)
        return self._loaded[path]

    def _compile(self, source: str, path: Path, what: str) -> jinja2.Template:
        shown = display_path(path)
        try:
            return self._environment.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(
                f"{shown}: {what}: template error on line {exc.lineno}: {exc.message}"
            ) from None

    def _load(self, path: Path, name: str) -> Prompt:
        shown = display_path(path)
        if path.suffix in PLAIN_SUFFIXES:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{shown}: cannot read ({exc})") from None
            return Prompt(name, path, (("user", self._compile(text, path, "message")),))
        raw = read_yaml(path)
        if not isinstance(raw, dict):
            raise ConfigError(f"{shown}: expected a mapping with 'messages'")
        unknown = sorted(set(raw) - {"description", "params", "messages", "tools"})
        if unknown:
            raise ConfigError(
                f"{shown}: unknown field(s) {', '.join(unknown)};"
                " known: description, messages, params, tools"
            )
        tools = raw.get("tools") or []
        if not isinstance(tools, list) or not all(
            isinstance(tool, dict) and _tool_name(tool) for tool in tools
        ):
            raise ConfigError(
                f"{shown}: 'tools' must list tools such as"
                " {type: function, function: {name: ..., parameters: {...}}}"
            )
        import jsonschema  # here: only prompts with tools need it

        for tool in tools:
            parameters = tool.get("function", {}).get("parameters", {"type": "object"})
            try:
                jsonschema.validators.validator_for(parameters).check_schema(parameters)
            except jsonschema.SchemaError as exc:
                raise ConfigError(
                    f"{shown}: tool '{_tool_name(tool)}': invalid JSON Schema:"
                    f" {exc.message}"
                ) from None
        params = raw.get("params") or {}
        if not isinstance(params, dict):
            raise ConfigError(
                f"{shown}: 'params' must be a mapping such as {{temperature: 0}}"
            )
        messages = raw.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ConfigError(
                f"{shown}: 'messages' must be a non-empty list of {{role, content}}"
            )
        templates = []
        for number, message in enumerate(messages, start=1):
            what = f"message {number}"
            if not isinstance(message, dict) or set(message) != {"role", "content"}:
                raise ConfigError(
                    f"{shown}: {what}: expected exactly 'role' and 'content'"
                )
            if message["role"] not in ROLES:
                raise ConfigError(
                    f"{shown}: {what}: role must be one of {', '.join(ROLES)},"
                    f" got {message['role']!r}"
                )
            if not isinstance(message["content"], str):
                raise ConfigError(f"{shown}: {what}: 'content' must be text")
            templates.append(
                (message["role"], self._compile(message["content"], path, what))
            )
        return Prompt(name, path, tuple(templates), params, tools)


def _tool_name(tool: dict[str, Any]) -> str | None:
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict):
        return None
    name = function.get("name")
    return name if isinstance(name, str) and name else None
