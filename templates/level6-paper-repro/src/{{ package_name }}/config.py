"""The typed configuration of one run.

Every setting is a field of the models below, with its type, default and limits beside
it. A grid file (configs/grid.yaml) gives settings for all runs, for each method and for
each config; grid.py layers them with configfile.merge and this model checks the result,
so an unknown key or a value out of range is refused with the key and the reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from .configfile import Settings, merge, validate

# runtime.MAX_SEED (NumPy's limit), repeated so that reading a config needs no torch.
MAX_SEED = 2**32 - 1
# Far above any machine's cores; torch crashed (a segfault, no message) on 10**8.
MAX_THREADS = 1024
# The largest size (samples in a batch, units of a layer, epochs) a setting may give:
# the largest 32-bit index torch takes everywhere, far past anything a run can hold.
# Python's islice refused a batch of 10**23 with a ValueError in every run.
MAX_SIZE = 2**31 - 1
# Confidence bins of the ECE: one Python step each, in every epoch's evaluation.
MAX_BINS = 10_000
_DEVICE = re.compile(r"^(cpu|auto|mps|cuda(:[0-9]+)?)$")


class RunSettings(Settings):
    """A section of a run's settings: YAML's .inf and .nan are refused as numbers
    (`lr: .inf` passed `gt=0` and the run failed later with a NaN loss)."""

    model_config = ConfigDict(allow_inf_nan=False)


class DataConfig(RunSettings):
    name: str = "digits"  # a key of data.DATASETS
    test_fraction: float = Field(default=0.3, gt=0, lt=1)
    # The train/test split is the same for every run seed.
    split_seed: int = Field(default=0, ge=0, le=MAX_SEED)


class ModelConfig(RunSettings):
    hidden: int = Field(default=32, ge=1, le=MAX_SIZE)
    dropout: float = Field(default=0.0, ge=0, lt=1)


class TrainConfig(RunSettings):
    epochs: int = Field(default=8, ge=1, le=MAX_SIZE)
    batch_size: int = Field(default=64, ge=1, le=MAX_SIZE)
    lr: float = Field(default=1e-2, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    # 0 is plain cross-entropy.
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    # Equal-width bins of the expected calibration error, as Guo et al.
    ece_bins: int = Field(default=15, ge=1, le=MAX_BINS)


class Config(RunSettings):
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    device: str = "cpu"  # cpu, auto, cuda, cuda:N or mps; byte-identical results on cpu
    deterministic: bool = True  # strict deterministic algorithms
    # Torch threads per run: results depend on it, so it is a setting.
    threads: int = Field(default=1, ge=1, le=MAX_THREADS)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError("must be cpu, auto, cuda, cuda:N or mps")
        return value

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def resolve(*layers: Mapping[str, Any], where: str = "settings") -> Config:
    """The defaults, then each layer of (nested or dotted) settings, later ones winning;
    a problem is reported as `<where>: <key>: <reason>, got <value>`."""
    return validate(Config, merge(*layers), where=where)


def config_hash(config: Config) -> str:
    """sha256 of the resolved configuration, the key that --resume compares. Runs are
    reused by it, so its text must not change for the same settings: the same keys, and
    floats written as floats (strict mode turns an int given for a float into one)."""
    text = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
