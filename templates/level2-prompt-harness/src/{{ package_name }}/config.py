"""harness.yaml: where prompts, suites, recordings and reports live; the providers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = "harness.yaml"
MODES = ("replay", "live", "record")
PROVIDER_TYPES = ("openai", "echo")


class ConfigError(Exception):
    """A mistake in harness.yaml, a prompt or a suite; the message says where, what."""


@dataclass(frozen=True)
class ProviderProfile:
    """A named way to reach a model: an OpenAI-compatible endpoint, or the echo."""

    name: str
    type: str
    base_url: str = ""
    model: str = ""
    api_key_env: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # US dollars per million tokens; None when unknown (cost assertions then refuse).
    input_price: float | None = None
    output_price: float | None = None

    @property
    def calls_network(self) -> bool:
        return self.type == "openai"

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def cost_usd(
        self, prompt_tokens: int | None, completion_tokens: int | None
    ) -> float | None:
        if self.type == "echo":
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
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark else shown
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None


def _number(
    raw: dict, key: str, where: str, default: float, *, minimum: float
) -> float:
    value = raw.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < minimum
    ):
        raise ConfigError(
            f"{where}: '{key}' must be a number >= {minimum}, got {value!r}"
        )
    return float(value)


def _integer(raw: dict, key: str, where: str, default: int, *, minimum: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"{where}: '{key}' must be an integer >= {minimum}, got {value!r}"
        )
    return value


def _profile(name: str, raw: Any, where: str) -> ProviderProfile:
    where = f"{where}: provider '{name}'"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with at least 'type'")
    known = {
        "type",
        "base_url",
        "model",
        "api_key_env",
        "params",
        "price_per_million_tokens",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(unknown)};"
            f" known: {', '.join(sorted(known))}"
        )
    kind = raw.get("type")
    if kind not in PROVIDER_TYPES:
        raise ConfigError(
            f"{where}: 'type' must be one of {', '.join(PROVIDER_TYPES)}, got {kind!r}"
        )
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: 'params' must be a mapping of request parameters")
    if kind == "echo":
        return ProviderProfile(name=name, type=kind, params=params)
    base_url, model = raw.get("base_url"), raw.get("model")
    if not isinstance(base_url, str) or not base_url.startswith(
        ("http://", "https://")
    ):
        raise ConfigError(
            f"{where}: 'base_url' must be an http(s) URL"
            " such as http://localhost:11434/v1"
        )
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{where}: 'model' must name the model, e.g. gpt-4o-mini")
    key_env = raw.get("api_key_env")
    if key_env is not None and (not isinstance(key_env, str) or not key_env):
        raise ConfigError(f"{where}: 'api_key_env' must name an environment variable")
    prices = raw.get("price_per_million_tokens")
    input_price = output_price = None
    if prices is not None:
        if not isinstance(prices, dict) or set(prices) != {"input", "output"}:
            raise ConfigError(
                f"{where}: 'price_per_million_tokens' must be {{input: N, output: N}}"
            )
        input_price = _number(prices, "input", where, 0, minimum=0)
        output_price = _number(prices, "output", where, 0, minimum=0)
    return ProviderProfile(
        name=name,
        type=kind,
        base_url=base_url.rstrip("/"),
        model=model,
        api_key_env=key_env,
        params=params,
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
    judge = raw.get("judge_provider")
    if judge is not None and judge not in providers:
        raise ConfigError(
            f"{where}: judge_provider {judge!r} is not one of the providers"
        )
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
        judge_provider=judge,
        providers=providers,
    )
