"""harness.yaml: where prompts, suites, recordings and reports live; the providers."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

DEFAULT_CONFIG = "harness.yaml"
MODES = ("replay", "live", "record")
PROVIDER_TYPES = ("openai", "echo", "python", "offline")
PROFILE_FIELDS = {
    "openai": {
        "type",
        "base_url",
        "model",
        "api_key_env",
        "headers",
        "query",
        "params",
        "price_per_million_tokens",
        "embedding_model",
    },
    "echo": {"type", "params"},
    "python": {"type", "function", "params", "price_per_million_tokens"},
    "offline": {"type", "params"},
}
# ${NAME} or ${NAME:-default}: read from the environment when a call is made.
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str) -> str:
    """Replace each ${NAME} (or ${NAME:-default}) by the environment's value."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        raise ConfigError(f"the environment variable {name} is not set")

    return _ENV_REFERENCE.sub(value, text)


def env_names(text: str) -> list[str]:
    return [match.group(1) for match in _ENV_REFERENCE.finditer(text)]


@dataclass(frozen=True)
class ProviderProfile:
    """A named way to reach a model: an OpenAI-compatible endpoint, the echo, your
    own Python function, or the offline stand-in for embeddings."""

    name: str
    type: str
    base_url: str = ""
    model: str = ""
    api_key_env: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)  # e.g. Azure's api-version
    function: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    embedding_model: str = ""
    # US dollars per million tokens; None when unknown (cost assertions are skipped).
    input_price: float | None = None
    output_price: float | None = None
    # "promptfoo" for the profiles a promptfoo config builds: its python providers
    # are called as call_api(prompt, options, context) and answer {output, error,
    # tokenUsage}; its echo returns a chat prompt as JSON. "harness" otherwise.
    call_style: str = "harness"

    @property
    def calls_network(self) -> bool:
        return self.type == "openai"

    def resolved_base_url(self) -> str:
        return expand_env(self.base_url).rstrip("/")

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def request_headers(self) -> dict[str, str]:
        """The headers of one call: the key as a bearer token, then the profile's."""
        headers = {}
        api_key = self.api_key()
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        headers.update(
            {name: expand_env(value) for name, value in self.headers.items()}
        )
        return headers

    def secrets(self) -> list[str]:
        """Every value from the environment this profile sends: redacted everywhere."""
        names = [self.api_key_env] if self.api_key_env else []
        for value in self.headers.values():
            names.extend(env_names(value))
        return [os.environ[name] for name in names if os.environ.get(name)]

    def cost_usd(
        self, prompt_tokens: int | None, completion_tokens: int | None
    ) -> float | None:
        if self.type in ("echo", "offline"):
            return 0.0
        if self.input_price is None or self.output_price is None:
            return None
        if prompt_tokens is None or completion_tokens is None:
            return None
        return (
            prompt_tokens * self.input_price + completion_tokens * self.output_price
        ) / 1e6


@dataclass(frozen=True)
class Config:
    root: Path
    prompts_dir: Path
    suites_dir: Path
    recordings_dir: Path
    cache_dir: Path
    output_dir: Path
    mode: str
    concurrency: int
    timeout_s: float
    max_retries: int
    retry_backoff_s: float
    judge_provider: str | None
    embedding_provider: str | None
    providers: dict[str, ProviderProfile]


def display_path(path: Path) -> str:
    """The path as the user would type it: relative to the working folder if inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, turning every way that can fail into one ConfigError line."""
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{shown}: not UTF-8 text") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark else shown
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None


def _number(
    raw: dict[str, Any], key: str, where: str, default: float, *, minimum: float
) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(
            f"{where}: '{key}' must be a number >= {minimum}, got {value!r}"
        )
    return float(value)


def _integer(
    raw: dict[str, Any], key: str, where: str, default: int, *, minimum: int
) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"{where}: '{key}' must be an integer >= {minimum}, got {value!r}"
        )
    return value


def _text_mapping(value: Any, what: str, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f"{where}: '{what}' must map names to text values")
    return dict(value)


def _profile(name: str, raw: Any, where: str) -> ProviderProfile:
    where = f"{where}: provider '{name}'"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with at least 'type'")
    kind = raw.get("type")
    if kind not in PROVIDER_TYPES:
        raise ConfigError(
            f"{where}: 'type' must be one of {', '.join(PROVIDER_TYPES)}, got {kind!r}"
        )
    known = PROFILE_FIELDS[kind]
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(unknown)} for type {kind};"
            f" known: {', '.join(sorted(known))}"
        )
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: 'params' must be a mapping of request parameters")
    prices = raw.get("price_per_million_tokens")
    input_price = output_price = None
    if prices is not None:
        if not isinstance(prices, dict) or set(prices) != {"input", "output"}:
            raise ConfigError(
                f"{where}: 'price_per_million_tokens' must be {{input: N, output: N}}"
            )
        input_price = _number(prices, "input", where, 0, minimum=0)
        output_price = _number(prices, "output", where, 0, minimum=0)
    if kind in ("echo", "offline"):
        return ProviderProfile(name=name, type=kind, params=params)
    if kind == "python":
        function = raw.get("function")
        if not isinstance(function, str) or function.count(":") != 1:
            raise ConfigError(
                f"{where}: 'function' must be 'module:function', e.g. my_app:answer"
            )
        return ProviderProfile(
            name=name,
            type=kind,
            function=function,
            params=params,
            input_price=input_price,
            output_price=output_price,
        )
    base_url, model = raw.get("base_url"), raw.get("model")
    if not isinstance(base_url, str) or not re.match(r"(https?://|\$\{)", base_url):
        raise ConfigError(
            f"{where}: 'base_url' must be an http(s) URL"
            " such as http://localhost:11434/v1"
        )
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{where}: 'model' must name the model, e.g. gpt-4o-mini")
    key_env = raw.get("api_key_env")
    if key_env is not None and (not isinstance(key_env, str) or not key_env):
        raise ConfigError(f"{where}: 'api_key_env' must name an environment variable")
    embedding_model = raw.get("embedding_model", "")
    if not isinstance(embedding_model, str):
        raise ConfigError(f"{where}: 'embedding_model' must name a model")
    return ProviderProfile(
        name=name,
        type=kind,
        base_url=base_url,
        model=model,
        api_key_env=key_env,
        headers=_text_mapping(raw.get("headers"), "headers", where),
        query=_text_mapping(raw.get("query"), "query", where),
        params=params,
        embedding_model=embedding_model,
        input_price=input_price,
        output_price=output_price,
    )


def load_config(path: str | Path = DEFAULT_CONFIG) -> Config:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such config file"
            " (run from the project folder, or pass --config)"
        )
    raw = read_yaml(path)
    where = str(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    root = path.resolve().parent

    def folder(key: str, default: str) -> Path:
        value = raw.get(key, default)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: '{key}' must be a folder path, got {value!r}")
        return root / value

    mode = raw.get("mode", "replay")
    if mode not in MODES:
        raise ConfigError(
            f"{where}: 'mode' must be one of {', '.join(MODES)}, got {mode!r}"
        )
    providers_raw = raw.get("providers")
    if not isinstance(providers_raw, dict) or not providers_raw:
        raise ConfigError(
            f"{where}: 'providers' must map profile names to provider settings"
        )
    providers = {
        str(name): _profile(str(name), value, where)
        for name, value in providers_raw.items()
    }
    chosen = {}
    for key in ("judge_provider", "embedding_provider"):
        value = raw.get(key)
        if value is not None and value not in providers:
            raise ConfigError(f"{where}: {key} {value!r} is not one of the providers")
        chosen[key] = value
    return Config(
        root=root,
        prompts_dir=folder("prompts_dir", "prompts"),
        suites_dir=folder("suites_dir", "suites"),
        recordings_dir=folder("recordings_dir", "recordings"),
        cache_dir=folder("cache_dir", ".eval-cache"),
        output_dir=folder("output_dir", "reports"),
        mode=mode,
        concurrency=_integer(raw, "concurrency", where, 8, minimum=1),
        timeout_s=_number(raw, "timeout_s", where, 60, minimum=0.001),
        max_retries=_integer(raw, "max_retries", where, 4, minimum=0),
        retry_backoff_s=_number(raw, "retry_backoff_s", where, 0.5, minimum=0),
        judge_provider=chosen["judge_provider"],
        embedding_provider=chosen["embedding_provider"],
        providers=providers,
    )
