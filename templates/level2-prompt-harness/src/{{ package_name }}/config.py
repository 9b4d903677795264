"""harness.yaml: where prompts, suites, recordings and reports live; the providers."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from .configfile import (
    Settings,
    display_path,
    not_a_file,
    read_yaml_mapping,
    validate,
)
from .errors import ConfigError

DEFAULT_CONFIG = "harness.yaml"
# replay: recordings only; live: call the endpoints; record: call them and record.
Mode = Literal["replay", "live", "record"]
MODES: tuple[str, ...] = get_args(Mode)
PROVIDER_TYPES = ("openai", "echo", "python", "offline")
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


def recordings_file_name(provider: str) -> str:
    """The file in recordings/ that holds a profile's recordings. A promptfoo id such
    as openai:gpt-4o-mini names a profile; ':' and '/' do not belong in a file name
    on every system."""
    return re.sub(r"[^\w.-]", "_", provider) + ".json"


def recordings_collision(names: list[str]) -> tuple[str, str, str] | None:
    """Two of these profile names whose recordings would share one file (`a/b` and
    `a_b`; `A` and `a` on a system that ignores case), and that file; None if none."""
    seen: dict[str, str] = {}
    for name in names:
        file = recordings_file_name(name)
        other = seen.setdefault(file.casefold(), name)
        if other != name:
            return other, name, file
    return None


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
    retry_max_wait_s: float
    judge_provider: str | None
    embedding_provider: str | None
    providers: dict[str, ProviderProfile]


_HTTP_URL = re.compile(r"(https?://|\$\{)")
Folder = Annotated[str, Field(min_length=1)]
Price = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Prices(Settings):
    """US dollars per million tokens, as the provider's price list gives them."""

    input: Price
    output: Price


class _Profile(Settings):
    # Request parameters sent with every call (temperature, response_format, ...).
    params: dict[str, Any] = Field(default_factory=dict)


class OpenAIProfile(_Profile):
    """Any OpenAI-compatible /chat/completions endpoint."""

    type: Literal["openai"]
    base_url: str
    model: str = Field(min_length=1)
    api_key_env: str | None = Field(None, min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    embedding_model: str = ""
    price_per_million_tokens: Prices | None = None

    @field_validator("base_url")
    @classmethod
    def _an_http_url(cls, value: str) -> str:
        if not _HTTP_URL.match(value):
            raise ValueError("must be an http(s) URL such as http://localhost:11434/v1")
        return value


class EchoProfile(_Profile):
    """Returns the rendered prompt: tests the prompts themselves."""

    type: Literal["echo"]


class PythonProfile(_Profile):
    """Your own function, `module:function`, importable from the project folder."""

    type: Literal["python"]
    function: str
    price_per_million_tokens: Prices | None = None

    @field_validator("function")
    @classmethod
    def _module_and_function(cls, value: str) -> str:
        if value.count(":") != 1 or value.startswith(":") or value.endswith(":"):
            raise ValueError("must be module:function, such as my_app:answer")
        return value


class OfflineProfile(_Profile):
    """Embeddings from character trigrams, no model: `similar` offline."""

    type: Literal["offline"]


ProfileSettings = Annotated[
    OpenAIProfile | EchoProfile | PythonProfile | OfflineProfile,
    Field(discriminator="type"),
]


class HarnessSettings(Settings):
    """harness.yaml, every key with its default and its constraint."""

    prompts_dir: Folder = "prompts"
    suites_dir: Folder = "suites"
    recordings_dir: Folder = "recordings"
    cache_dir: Folder = ".eval-cache"
    output_dir: Folder = "reports"
    mode: Mode = "replay"
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(60.0, gt=0, allow_inf_nan=False)
    max_retries: int = Field(4, ge=0)
    retry_backoff_s: float = Field(0.5, ge=0, allow_inf_nan=False)
    retry_max_wait_s: float = Field(60.0, ge=0, allow_inf_nan=False)
    judge_provider: str | None = None
    embedding_provider: str | None = None
    providers: dict[str, ProfileSettings] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _profile_types(cls, values: Any) -> Any:
        # Said here, in the key's own words: pydantic would report a missing or
        # unknown `type` as a message about its union instead.
        providers = values.get("providers") if isinstance(values, dict) else None
        if not isinstance(providers, dict):
            return values
        for name, raw in providers.items():
            if isinstance(raw, dict) and raw.get("type") not in PROVIDER_TYPES:
                choices = ", ".join(PROVIDER_TYPES)
                if "type" not in raw:
                    raise ValueError(f"providers.{name}.type: required ({choices})")
                raise ValueError(
                    f"providers.{name}.type: must be one of {choices},"
                    f" got {raw['type']!r}"
                )
        return values

    @model_validator(mode="after")
    def _recordings_files_differ(self) -> HarnessSettings:
        collision = recordings_collision(list(self.providers))
        if collision is not None:
            first, second, file = collision
            raise ValueError(
                f"providers.{second}: its recordings would share {file} with"
                f" '{first}'; rename one of them"
            )
        return self

    @model_validator(mode="after")
    def _chosen_profiles_exist(self) -> HarnessSettings:
        for key in ("judge_provider", "embedding_provider"):
            chosen = getattr(self, key)
            if chosen is not None and chosen not in self.providers:
                raise ValueError(
                    f"{key}: must name one of the providers"
                    f" ({', '.join(self.providers)}), got {chosen!r}"
                )
        return self


def _profile(name: str, settings: ProfileSettings) -> ProviderProfile:
    prices = getattr(settings, "price_per_million_tokens", None)
    return ProviderProfile(
        name=name,
        type=settings.type,
        base_url=getattr(settings, "base_url", ""),
        model=getattr(settings, "model", ""),
        api_key_env=getattr(settings, "api_key_env", None),
        headers=dict(getattr(settings, "headers", {})),
        query=dict(getattr(settings, "query", {})),
        function=getattr(settings, "function", ""),
        params=dict(settings.params),
        embedding_model=getattr(settings, "embedding_model", ""),
        input_price=prices.input if prices else None,
        output_price=prices.output if prices else None,
    )


def load_config(path: str | Path = DEFAULT_CONFIG) -> Config:
    """harness.yaml, checked: every problem is one ConfigError line naming the key."""
    path = Path(path)
    shown = display_path(path)
    if not path.exists():
        raise ConfigError(
            f"{shown}: no such config file (run from the project folder, or pass"
            " --config)"
        )
    problem = not_a_file(path, "config file")
    if problem:
        raise ConfigError(f"{shown}: {problem}; --config takes harness.yaml's path")
    raw = read_yaml_mapping(path)
    settings = validate(HarnessSettings, raw, where=shown)
    root = path.resolve().parent
    return Config(
        root=root,
        prompts_dir=root / settings.prompts_dir,
        suites_dir=root / settings.suites_dir,
        recordings_dir=root / settings.recordings_dir,
        cache_dir=root / settings.cache_dir,
        output_dir=root / settings.output_dir,
        mode=settings.mode,
        concurrency=settings.concurrency,
        timeout_s=settings.timeout_s,
        max_retries=settings.max_retries,
        retry_backoff_s=settings.retry_backoff_s,
        retry_max_wait_s=settings.retry_max_wait_s,
        judge_provider=settings.judge_provider,
        embedding_provider=settings.embedding_provider,
        providers={
            name: _profile(name, profile)
            for name, profile in settings.providers.items()
        },
    )
