"""The settings of a run: defaults here, a YAML file, then `key=value` overrides.

Every setting is a field of the models below, with its type, default and constraint
side by side. `configfile.load(Config, path, overrides)` reads a file (see configs/)
and overrides such as `train.lr=3e-4`; an unknown key or a value that breaks a
constraint is refused in one line that names the key and the reason.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from .configfile import Settings, validate
from .errors import ConfigError
from .runtime import MAX_SEED

log = logging.getLogger(__name__)

Count = Annotated[int, Field(ge=1)]
# A number of examples at once. torch takes sizes as 64-bit integers and overflows in
# a traceback past them; no batch this project could hold comes near 2**31.
BatchSize = Annotated[int, Field(ge=1, le=2**31 - 1)]
# torch.set_num_threads crashes the process (no error) for tens of thousands.
MAX_THREADS = 1024
# Each loader worker is a process: torch starts a hundred thousand of them without a
# word but a warning, and the run hangs. No machine has cores for more than this.
MAX_WORKERS = 1024
# 12 KB each in memory (image and mask): a million are 12 GB, and take over a minute
# to draw.
MAX_SHAPES = 1_000_000
# 0 means something of its own for these (off, all, torch's default): see the field.
CountOrZero = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def _matching(pattern: str, reason: str) -> AfterValidator:
    """A text constraint whose error says what is allowed, not the regex."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(reason)
        return value

    return AfterValidator(check)


Device = Annotated[
    str,
    _matching(r"auto|cpu|mps|cuda(:\d+)?", "must be auto, cpu, cuda, cuda:N or mps"),
]
RunName = Annotated[
    str,
    _matching(r"[A-Za-z0-9][A-Za-z0-9._-]*", "must be letters, digits, '.', _ or -"),
]
Folder = Annotated[str, _matching(r".*\S.*", "must name a folder")]


class DataConfig(Settings):
    # A key of data.DATASETS: digits (classification, the default) or shapes
    # (segmentation of synthetic shapes); the dataset decides the task.
    dataset: str = "digits"
    val_fraction: Fraction = 0.1
    test_fraction: Fraction = 0.2
    batch_size: BatchSize = 64
    eval_batch_size: BatchSize = 512
    # examples the shapes dataset generates
    shapes_count: Annotated[int, Field(ge=20, le=MAX_SHAPES)] = 1500
    # The digits live in memory: worker processes would only add start-up time. Raise
    # this for a dataset that reads or decodes files.
    num_workers: Annotated[int, Field(ge=0, le=MAX_WORKERS)] = 0


class ModelConfig(Settings):
    # A key of models.MODELS: cnn, mlp or vit for classification, unet for
    # segmentation; auto takes the dataset's own (cnn for digits, unet for shapes).
    name: str = "auto"
    # cnn, unet stages
    channels: list[Count] = Field(default_factory=lambda: [32, 64], min_length=1)
    hidden: list[Count] = Field(default_factory=lambda: [256, 128])  # mlp layers
    patch_size: Count = 2  # vit: square patches; must divide the image size
    dim: Count = 64  # vit: width of the Transformer
    depth: Count = 2  # vit: Transformer encoder blocks
    heads: Count = 4  # vit: attention heads; must divide dim
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1


class TrainConfig(Settings):
    @model_validator(mode="before")
    @classmethod
    def _retired(cls, values: Any) -> Any:
        # Config files written before the --no-progress option still load.
        if isinstance(values, dict) and "progress" in values:
            log.warning(
                "train.progress: no longer a setting, ignored; the progress bar is"
                " the --no-progress option of train"
            )
            values = {key: value for key, value in values.items() if key != "progress"}
        return values

    epochs: Count = 12
    lr: Positive = 3e-3
    min_lr: NonNegative = 3e-5  # the cosine decays to this, not to zero
    weight_decay: NonNegative = 1e-2  # on weights only: never on biases and norms
    warmup_epochs: NonNegative = 1.0  # linear warm-up, then cosine decay to min_lr
    grad_clip: NonNegative = 1.0  # maximum gradient norm; 0 turns clipping off
    grad_accum_steps: Count = 1  # batches per optimiser step (a larger batch in effect)
    # auto: bf16 on GPUs that have it natively, fp16 with a scaler on older GPUs,
    # fp32 elsewhere
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = False  # torch.compile the model
    sync_batchnorm: bool = False  # under torchrun on GPUs: batch norm over all GPUs
    # chooses the best checkpoint and drives early stopping
    monitor: Literal["val_loss", "val_accuracy", "val_mean_iou"] = "val_loss"
    # epochs without improvement; 0 never stops early
    early_stopping_patience: CountOrZero = 5
    # batches per epoch; 0 means all (tests use a few)
    limit_train_batches: CountOrZero = 0
    limit_eval_batches: CountOrZero = 0
    checkpoint_every_steps: CountOrZero = 0  # also save last.pt every N steps; 0: off
    tensorboard: bool = False  # also log to TensorBoard (pip install tensorboard)
    # each installed separately
    logger: Literal["none", "mlflow", "wandb"] = "none"


class Config(Settings):
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    # auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps
    device: Device = "auto"
    deterministic: bool = False  # strict deterministic algorithms (slower on GPU)
    # CPU threads for torch. The bundled models are small: a second thread gains a
    # little on idle cores and costs a lot on busy ones. 0: torch's default (per core).
    threads: Annotated[int, Field(ge=0, le=MAX_THREADS)] = 1
    run_root: Folder = "runs"
    # it becomes part of the run folder's name
    run_name: RunName = "run"
    # Fine-tune: start from this checkpoint's weights, with a new optimiser and
    # schedule of its own.
    init_from: str = ""
    data: DataConfig = Field(default_factory=lambda: DataConfig())
    model: ModelConfig = Field(default_factory=lambda: ModelConfig())
    train: TrainConfig = Field(default_factory=lambda: TrainConfig())

    @model_validator(mode="after")
    def _settings_fit_together(self) -> Config:
        data, model, train = self.data, self.model, self.train
        # Each check names the key to change, as an override would spell it.
        if data.val_fraction + data.test_fraction >= 1:
            raise ValueError(
                "data.test_fraction: val_fraction + test_fraction must leave data to"
                f" train on (sum below 1), got {data.val_fraction} + "
                f"{data.test_fraction}"
            )
        if model.dim % model.heads:
            raise ValueError(
                f"model.dim: must be a multiple of model.heads ({model.heads}),"
                f" got {model.dim}"
            )
        if train.min_lr > train.lr:
            raise ValueError(
                f"train.min_lr: must be train.lr ({train.lr}) or less,"
                f" got {train.min_lr}"
            )
        if train.warmup_epochs > train.epochs:
            raise ValueError(
                f"train.warmup_epochs: must be train.epochs ({train.epochs}) or less,"
                f" got {train.warmup_epochs}"
            )
        return self


# How torch (on the CPU, CUDA and MPS) words an allocation that failed; numpy raises
# MemoryError.
_NO_MEMORY = re.compile(r"can't allocate memory|out of memory", re.IGNORECASE)
_ALLOCATION = re.compile(r"allocate (\d+ bytes|[\d.]+ ?[KMGTPE]i?B)", re.IGNORECASE)


@contextlib.contextmanager
def memory_for(what: str, advice: str) -> Iterator[None]:
    """An allocation that fails in the block (or the function it decorates) becomes
    one line: `what` did not fit, then `advice`, the settings to lower. A setting too
    large for this machine is bad input, not a bug: no traceback."""
    try:
        yield
    except (MemoryError, RuntimeError) as error:
        if not isinstance(error, MemoryError) and not _NO_MEMORY.search(str(error)):
            raise
        size = _ALLOCATION.search(str(error))
        amount = size.group(1) if size else ""
        if amount.endswith("bytes"):
            amount = f"{int(amount.split()[0]) / 1e9:,.1f} GB"
        failed = f" (allocating {amount} failed)" if amount else ""
        raise ConfigError(f"{what} did not fit in memory{failed}: {advice}") from None


# Keys a checkpoint of an earlier release may hold that no longer exist, dropped here
# without the warning a settings file gets: the progress bar moved from
# `train.progress` to the `--no-progress` option.
_RETIRED_KEYS = (("train", "progress"),)


def config_from_checkpoint(values: Mapping[str, Any], where: str) -> Config:
    """The Config a checkpoint stored, checked as a settings file is."""
    values = {
        key: dict(value) if isinstance(value, Mapping) else value
        for key, value in values.items()
    }
    for section, key in _RETIRED_KEYS:
        if isinstance(values.get(section), dict):
            values[section].pop(key, None)
    return validate(Config, values, where=where)
