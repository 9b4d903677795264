"""The typed configuration of one run, and the settings that change it.

Every setting lives in one of the dataclasses below, with its type and default. A grid
file (configs/grid.yaml) gives overrides for all runs, for each method and for each
config; `key=value` on the command line comes last. An unknown key or a value of the
wrong type is refused with the key and the reason.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import ConfigError

# runtime.MAX_SEED (NumPy's limit), repeated so that reading a config needs no torch.
MAX_SEED = 2**32 - 1


@dataclass
class DataConfig:
    name: str = "digits"  # a key of data.DATASETS
    test_fraction: float = 0.3
    split_seed: int = 0  # the train/test split is the same for every run seed


@dataclass
class ModelConfig:
    hidden: int = 32
    dropout: float = 0.0


@dataclass
class TrainConfig:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-2
    weight_decay: float = 0.0
    label_smoothing: float = 0.0  # 0 is plain cross-entropy
    ece_bins: int = 15  # equal-width bins of the calibration error, as Guo et al.


@dataclass
class Config:
    seed: int = 0
    device: str = "cpu"  # cpu, auto, cuda, cuda:N or mps; byte-identical results on cpu
    deterministic: bool = True  # strict deterministic algorithms
    threads: int = 1  # torch threads per run: results depend on it, so it is fixed
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_hash(config: Config) -> str:
    """sha256 of the resolved configuration, the key that --resume compares."""
    text = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1}} and {"train.lr": 1} both become {"train.lr": 1}."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """`key=value` strings, each value read as YAML (`3e-4`, `true`, `[1, 2]`)."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{item!r}: expected key=value, such as train.lr=0.01")
        try:
            result[key.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"{item!r}: the value is not valid YAML") from None
    return result


def resolve(*layers: Mapping[str, Any], seed: int | None = None) -> Config:
    """The defaults, then each layer of (possibly nested) overrides, then the seed."""
    config = Config()
    for layer in layers:
        for key, value in flatten(layer).items():
            _set(config, key, value)
    if seed is not None:
        _set(config, "seed", seed)
    validate(config)
    return config


def validate(config: Config) -> None:
    checks = [
        (0 <= config.seed <= MAX_SEED, "seed", f"a whole number from 0 to {MAX_SEED}"),
        (config.threads >= 1, "threads", "1 or more"),
        (0 < config.data.test_fraction < 1, "data.test_fraction", "between 0 and 1"),
        (config.data.split_seed >= 0, "data.split_seed", "0 or more"),
        (config.model.hidden >= 1, "model.hidden", "1 or more"),
        (
            0 <= config.model.dropout < 1,
            "model.dropout",
            "from 0 up to (not including) 1",
        ),
        (config.train.epochs >= 1, "train.epochs", "1 or more"),
        (config.train.batch_size >= 1, "train.batch_size", "1 or more"),
        (config.train.lr > 0, "train.lr", "above 0"),
        (config.train.weight_decay >= 0, "train.weight_decay", "0 or more"),
        (
            0 <= config.train.label_smoothing < 1,
            "train.label_smoothing",
            "from 0 up to 1",
        ),
        (config.train.ece_bins >= 1, "train.ece_bins", "1 or more"),
    ]
    for ok, key, expected in checks:
        if not ok:
            value = _get(config, key)
            raise ConfigError(f"{key}={value}: expected {expected}")


def keys() -> list[str]:
    """Every settable key, dotted: seed, ..., train.lr, ..."""
    return sorted(flatten(Config().to_dict()))


def _get(config: Config, key: str) -> Any:
    target: Any = config
    for part in key.split("."):
        target = getattr(target, part)
    return target


def _set(config: Config, key: str, value: Any) -> None:
    *parents, name = key.split(".")
    target: Any = config
    for part in parents:
        target = getattr(target, part, None)
        if not dataclasses.is_dataclass(target):
            _unknown(key)
    fields = {f.name for f in dataclasses.fields(target)}
    if name not in fields:
        _unknown(key)
    expected = typing.get_type_hints(type(target))[name]
    if dataclasses.is_dataclass(expected):
        raise ConfigError(
            f"{key}: is a section; set one of its keys, such as {key}.<name>"
        )
    setattr(target, name, _coerce(key, value, expected))


def _coerce(key: str, value: Any, expected: Any) -> Any:
    if expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif expected is str and isinstance(value, str):
        return value
    name = getattr(expected, "__name__", str(expected))
    raise ConfigError(f"{key}={value!r}: expected {_ARTICLES.get(name, name)}")


_ARTICLES = {"bool": "true or false", "int": "a whole number", "float": "a number"}
_ARTICLES["str"] = "a string"


def _unknown(key: str) -> typing.NoReturn:
    close = difflib.get_close_matches(key, keys(), n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ConfigError(f"{key}: unknown key{hint}")
