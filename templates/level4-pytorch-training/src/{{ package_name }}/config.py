"""The typed configuration: dataclass defaults, a YAML file, then `key=value` overrides.

Every setting lives in one of the dataclasses below, with its type and default. A YAML
file (see configs/) and command-line overrides such as `train.lr=3e-4` may change any;
an unknown key or a value of the wrong type is refused with the key and the reason.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .runtime import MAX_SEED, PRECISIONS

MONITORS = ("val_loss", "val_accuracy", "val_mean_iou")
LOGGERS = ("none", "mlflow", "wandb")
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class DataConfig:
    # A key of data.DATASETS: digits (classification, the default) or shapes
    # (segmentation of synthetic shapes); the dataset decides the task.
    dataset: str = "digits"
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    batch_size: int = 64
    eval_batch_size: int = 512
    shapes_count: int = 1500  # examples the shapes dataset generates
    # The digits live in memory: worker processes would only add start-up time. Raise
    # this for a dataset that reads or decodes files.
    num_workers: int = 0


@dataclass
class ModelConfig:
    # A key of models.MODELS: cnn, mlp or vit for classification, unet for
    # segmentation; auto takes the dataset's own (cnn for digits, unet for shapes).
    name: str = "auto"
    channels: list[int] = field(default_factory=lambda: [32, 64])  # cnn, unet stages
    hidden: list[int] = field(default_factory=lambda: [256, 128])  # mlp layers
    patch_size: int = 2  # vit: square patches; must divide the image size
    dim: int = 64  # vit: width of the Transformer
    depth: int = 2  # vit: Transformer encoder blocks
    heads: int = 4  # vit: attention heads; must divide dim
    dropout: float = 0.1


@dataclass
class TrainConfig:
    epochs: int = 12
    lr: float = 3e-3
    min_lr: float = 3e-5  # the cosine decays to this, not to zero
    weight_decay: float = 1e-2  # on weights only: never on biases and norms
    warmup_epochs: float = 1.0  # linear warm-up, then cosine decay to min_lr
    grad_clip: float = 1.0  # maximum gradient norm; 0 turns clipping off
    grad_accum_steps: int = 1  # batches per optimiser step (a larger batch in effect)
    # auto: bf16 on GPUs that have it natively, fp16 with a scaler on older GPUs,
    # fp32 elsewhere
    precision: str = "auto"
    compile: bool = False  # torch.compile the model
    sync_batchnorm: bool = False  # under torchrun on GPUs: batch norm over all GPUs
    monitor: str = "val_loss"  # chooses the best checkpoint and drives early stopping
    early_stopping_patience: int = 5  # epochs without improvement; 0 never stops early
    limit_train_batches: int = 0  # batches per epoch; 0 means all (tests use a few)
    limit_eval_batches: int = 0
    checkpoint_every_steps: int = 0  # also save last.pt every N steps; 0: per epoch
    progress: bool = True  # live progress line on a terminal
    tensorboard: bool = False  # also log to TensorBoard (pip install tensorboard)
    logger: str = "none"  # none, mlflow or wandb (each installed separately)


@dataclass
class Config:
    seed: int = 0
    device: str = "auto"  # auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps
    deterministic: bool = False  # strict deterministic algorithms (slower on GPU)
    # CPU threads for torch. The bundled models are small: a second thread gains a
    # little on idle cores and costs a lot on busy ones. 0: torch's default (per core).
    threads: int = 1
    run_root: str = "runs"
    run_name: str = "run"
    # Fine-tune: start from this checkpoint's weights, with a new optimiser and
    # schedule of its own.
    init_from: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_flat_dict(self) -> dict[str, Any]:
        """Every setting under its dotted key, as KEY=VALUE overrides name it."""
        return _flatten(self.to_dict())


def load_config(
    path: str | Path | None = None, overrides: typing.Iterable[str] = ()
) -> Config:
    """A Config from the defaults, an optional YAML file and key=value overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        values = read_yaml_file(Path(path))
    config = config_from_dict(values)
    for override in overrides:
        apply_override(config, override)
    validate(config)
    return config


def read_yaml_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{line}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of settings, not a list or value"
        )
    return values


def config_from_dict(values: dict[str, Any]) -> Config:
    """A Config from nested plain values (YAML, a checkpoint), every key checked."""
    config: Config = _build(Config, values, prefix="")
    return config


def apply_override(config: Config, override: str) -> None:
    """Apply one `section.key=value` override in place."""
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            f"override {override!r} is not of the form key=value (e.g. train.lr=3e-4)"
        )
    *parents, name = key.split(".")
    target: Any = config
    for part in parents:
        if part not in _field_types(type(target)) or not dataclasses.is_dataclass(
            getattr(target, part)
        ):
            raise _unknown_key(key, Config)
        target = getattr(target, part)
    if name not in _field_types(type(target)):
        raise _unknown_key(key, Config)
    expected = _field_types(type(target))[name]
    if _is_section(expected):
        raise ConfigError(
            f"{key} is a section: override its keys, e.g. {key}.<key>=value"
        )
    # Strings are taken as typed; the rest is read as YAML: numbers, true, [16, 32].
    value: Any = text
    if expected is not str:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"{key}: cannot read {text!r} as a value") from None
    setattr(target, name, _coerce(value, expected, key))


def validate(config: Config) -> None:
    """Refuse settings that have the right type but cannot work together."""
    data, model, train = config.data, config.model, config.train
    checks = [
        (
            0 <= config.seed <= MAX_SEED,
            "seed",
            f"expected a whole number from 0 to {MAX_SEED}",
        ),
        (
            _DEVICE_PATTERN.match(config.device),
            "device",
            "must be auto, cpu, cuda, cuda:N or mps",
        ),
        (
            _RUN_NAME_PATTERN.match(config.run_name),
            "run_name",
            "must be letters, digits, '.', '_' or '-'",
        ),
        (config.run_root.strip() != "", "run_root", "must name a folder"),
        (0 < data.val_fraction < 1, "data.val_fraction", _FRACTION),
        (0 < data.test_fraction < 1, "data.test_fraction", _FRACTION),
        (
            data.val_fraction + data.test_fraction < 1,
            "data.test_fraction",
            "val_fraction + test_fraction must leave data to train on (sum below 1)",
        ),
        (data.batch_size >= 1, "data.batch_size", "must be at least 1"),
        (data.eval_batch_size >= 1, "data.eval_batch_size", "must be at least 1"),
        (config.threads >= 0, "threads", "must be 0 (torch's default) or more"),
        (data.num_workers >= 0, "data.num_workers", "must be 0 or more"),
        (data.shapes_count >= 20, "data.shapes_count", "must be at least 20"),
        (
            len(model.channels) >= 1,
            "model.channels",
            "must list at least one channel count",
        ),
        (
            all(c >= 1 for c in model.channels),
            "model.channels",
            "channel counts must be at least 1",
        ),
        (all(h >= 1 for h in model.hidden), "model.hidden", "sizes must be 1 or more"),
        (model.patch_size >= 1, "model.patch_size", "must be at least 1"),
        (model.depth >= 1, "model.depth", "must be at least 1"),
        (model.heads >= 1, "model.heads", "must be at least 1"),
        (
            model.dim >= 1 and model.dim % max(model.heads, 1) == 0,
            "model.dim",
            "must be a multiple of model.heads",
        ),
        (0 <= model.dropout < 1, "model.dropout", "must be in [0, 1)"),
        (train.epochs >= 1, "train.epochs", "must be at least 1"),
        (_finite(train.lr) and train.lr > 0, "train.lr", _POSITIVE),
        (
            _finite(train.min_lr) and 0 <= train.min_lr <= train.lr,
            "train.min_lr",
            "must be a finite number from 0 to train.lr",
        ),
        (
            _finite(train.weight_decay) and train.weight_decay >= 0,
            "train.weight_decay",
            _NON_NEGATIVE,
        ),
        (
            _finite(train.warmup_epochs) and 0 <= train.warmup_epochs <= train.epochs,
            "train.warmup_epochs",
            "must be a finite number from 0 to train.epochs",
        ),
        (
            _finite(train.grad_clip) and train.grad_clip >= 0,
            "train.grad_clip",
            "must be 0 (off) or a finite number above 0",
        ),
        (train.grad_accum_steps >= 1, "train.grad_accum_steps", "must be at least 1"),
        (
            train.checkpoint_every_steps >= 0,
            "train.checkpoint_every_steps",
            "must be 0 (every epoch) or more",
        ),
        (
            train.logger in LOGGERS,
            "train.logger",
            f"must be one of {', '.join(LOGGERS)}",
        ),
        (
            train.precision in PRECISIONS,
            "train.precision",
            f"must be one of {', '.join(PRECISIONS)}",
        ),
        (
            train.monitor in MONITORS,
            "train.monitor",
            f"must be one of {', '.join(MONITORS)}",
        ),
        (
            train.early_stopping_patience >= 0,
            "train.early_stopping_patience",
            "must be 0 (off) or more",
        ),
        (
            train.limit_train_batches >= 0,
            "train.limit_train_batches",
            "must be 0 (all) or more",
        ),
        (
            train.limit_eval_batches >= 0,
            "train.limit_eval_batches",
            "must be 0 (all) or more",
        ),
    ]
    for ok, key, reason in checks:
        if not ok:
            raise ConfigError(f"{key}={_show(_lookup(config, key))}: {reason}")


_POSITIVE = "must be a finite number above 0"
_NON_NEGATIVE = "must be a finite number, 0 or more"
_FRACTION = "must be between 0 and 1"


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _finite(value: float) -> bool:
    return math.isfinite(value)


def _build(cls: type, values: Any, prefix: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(
            f"{prefix.rstrip('.') or 'config'}: expected a mapping of settings"
        )
    types = _field_types(cls)
    kwargs = {}
    for key, value in values.items():
        full_key = f"{prefix}{key}"
        if key not in types:
            raise _unknown_key(full_key, Config)
        expected = types[key]
        if _is_section(expected):
            kwargs[key] = _build(expected, value, prefix=f"{full_key}.")
        else:
            kwargs[key] = _coerce(value, expected, full_key)
    return cls(**kwargs)


def _coerce(value: Any, expected: Any, key: str) -> Any:
    if typing.get_origin(expected) is list:
        (item_type,) = typing.get_args(expected)
        if not isinstance(value, list):
            raise ConfigError(
                f"{key}: expected a list such as [16, 32], got {_show(value)}"
            )
        return [_coerce(item, item_type, f"{key}[{i}]") for i, item in enumerate(value)]
    if expected is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {_show(value)}")
    if expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {_show(value)}")
    if expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        # PyYAML follows YAML 1.1, which reads 3e-4 (no dot) as a string: accept it.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {_show(value)}")
    if expected is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {_show(value)}")
    raise TypeError(
        f"config field {key} has a type the loader does not handle: {expected!r}"
    )


def _is_section(expected: Any) -> bool:
    return isinstance(expected, type) and dataclasses.is_dataclass(expected)


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _all_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    for name, tp in _field_types(cls).items():
        if _is_section(tp):
            keys.extend(_all_keys(tp, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _unknown_key(key: str, root: type) -> ConfigError:
    known = _all_keys(root)
    # Compare the last part within its own section first: the shared "train." prefix
    # would otherwise make any train.* key look close to any other.
    section, _, leaf = key.rpartition(".")
    siblings = [k for k in known if k.rpartition(".")[0] == section]
    close = difflib.get_close_matches(
        leaf, [k.rpartition(".")[2] for k in siblings], n=1
    )
    if close:
        close = [f"{section}.{close[0]}" if section else close[0]]
    elif not siblings:  # a misspelt section: compare whole keys
        sections = sorted({k.split(".")[0] for k in known if "." in k})
        close = difflib.get_close_matches(key, known + sections, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(f"{key}: unknown key{hint}")


def _lookup(config: Config, key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _show(value: Any) -> str:
    return repr(value)
