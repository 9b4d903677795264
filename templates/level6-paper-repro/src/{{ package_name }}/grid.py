"""The experiment grid: methods x configs x seeds, read from a YAML file.

```yaml
name: main                   # runs go to runs/<name>/<method>/<config>/seed=<k>/
seeds: [0, 1, 2, 3, 4]
base: {}                     # settings for every run
methods:                     # what the paper compares; the first is the baseline
  baseline: {}
  label-smoothing: {train.label_smoothing: 0.1}
configs:                     # settings each method is run under
  default: {}
executor: {name: pool, jobs: 2}
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, field_validator

from .config import MAX_SEED, MAX_SIZE, Config, config_hash, resolve
from .configfile import (
    Settings,
    display_path,
    flatten,
    merge,
    read_yaml_mapping,
    validate,
)
from .errors import ConfigError

DEFAULT_GRID = Path("configs") / "grid.yaml"
RUNS_ROOT = Path("runs")
ExecutorName = Literal["pool", "slurm", "submitit-local"]
EXECUTORS: tuple[str, ...] = get_args(ExecutorName)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NAME_RULE = "letters, digits, '.', '_' and '-' (the first a letter or digit)"


def _one_config() -> dict[str, dict[str, Any]]:
    """A grid without configs runs each method under the defaults alone."""
    return {"default": {}}


# Processes of the pool executor: far above any machine's cores. Python's process
# pool failed on 10**23 with an OverflowError traceback.
MAX_JOBS = 1024


class ExecutorSettings(Settings):
    name: ExecutorName = "pool"
    jobs: int = Field(default=1, ge=1, le=MAX_JOBS)  # processes of the pool executor
    # submitit: runs at once
    parallelism: int | None = Field(default=None, ge=1, le=MAX_SIZE)
    slurm: dict[str, Any] = Field(default_factory=dict)  # submitit's parameters

    @field_validator("slurm", mode="before")
    @classmethod
    def _empty_slurm(cls, value: Any) -> Any:
        return {} if value is None else value


class GridFile(Settings):
    """What configs/grid.yaml may hold; each method's and config's settings are keys
    of config.Config, checked when the runs are resolved."""

    name: str
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] = Field(min_length=1)
    base: dict[str, Any] = Field(default_factory=dict)
    methods: dict[str, dict[str, Any]] = Field(min_length=1)
    configs: dict[str, dict[str, Any]] = Field(
        default_factory=_one_config, min_length=1
    )
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"must be a folder name of {_NAME_RULE}")
        return value

    @field_validator("seeds")
    @classmethod
    def _different(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("must all differ")
        return value

    # `base:` or `baseline:` with nothing after it is YAML's null: no settings.
    @field_validator("base", "executor", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("methods", "configs", mode="before")
    @classmethod
    def _named_settings(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        for name in value:
            if not isinstance(name, str) or not _NAME.match(name):
                raise ValueError(f"{name!r} must be a folder name of {_NAME_RULE}")
        return {name: {} if given is None else given for name, given in value.items()}


@dataclass(frozen=True)
class Run:
    """One run of the grid, with its resolved configuration and folder."""

    grid: str
    method: str
    config_name: str
    seed: int
    config: Config
    run_dir: Path

    @property
    def label(self) -> str:
        return f"{self.method}/{self.config_name}/seed={self.seed}"

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)


@dataclass
class Grid:
    name: str
    seeds: list[int]
    methods: dict[str, dict[str, Any]]
    configs: dict[str, dict[str, Any]]
    base: dict[str, Any] = field(default_factory=dict)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    source: Path = DEFAULT_GRID

    def runs(
        self,
        root: Path = RUNS_ROOT,
        *,
        methods: list[str] | None = None,
        configs: list[str] | None = None,
        seeds: list[int] | None = None,
    ) -> list[Run]:
        """Every run, or those of the given methods, configs and seeds."""
        chosen_methods = _subset(methods, list(self.methods), "method", self.source)
        chosen_configs = _subset(configs, list(self.configs), "config", self.source)
        chosen_seeds = _subset(seeds, self.seeds, "seed", self.source)
        runs = []
        for method in chosen_methods:
            for name in chosen_configs:
                for seed in chosen_seeds:
                    config = self.run_config(method, name, seed)
                    folder = root / self.name / method / name / f"seed={seed}"
                    runs.append(Run(self.name, method, name, seed, config, folder))
        return runs

    def run_config(self, method: str, config: str, seed: int) -> Config:
        """The settings of one run: the defaults, then the grid's base, method and
        config, then the seed. A problem names the section of the grid file that
        brought it: the first whose settings, added to those before, are refused."""
        layers = {
            "base": self.base,
            f"methods.{method}": self.methods[method],
            f"configs.{config}": self.configs[config],
        }
        where = display_path(self.source)
        for section, layer in layers.items():
            # The seeds list sets every run's seed; one set here was silently lost.
            if "seed" in merge(layer):
                raise ConfigError(
                    f"{where}: {section}: seed: set by the grid's seeds list, "
                    "not per section"
                )
        try:
            return resolve(*layers.values(), {"seed": seed}, where=where)
        except ConfigError:
            sections = list(layers)
            for count, section in enumerate(sections, start=1):
                resolve(
                    *[layers[name] for name in sections[:count]],
                    where=f"{where}: {section}",
                )
            raise

    def shared_settings(self) -> dict[str, str]:
        """Every setting with one value in all runs but the seed (the paper's constants,
        such as train.ece_bins), as text."""
        values: dict[str, set[str]] = {}
        for run in self.runs():
            for key, value in flatten(run.config.to_dict()).items():
                values.setdefault(key, set()).add(str(value))
        return {
            key: next(iter(found))
            for key, found in sorted(values.items())
            if len(found) == 1 and key != "seed"
        }


def load_grid(path: Path = DEFAULT_GRID) -> Grid:
    """The grid file, checked: its own keys, then every run's settings."""
    settings = validate(GridFile, read_yaml_mapping(path), where=display_path(path))
    grid = Grid(
        name=settings.name,
        seeds=settings.seeds,
        methods=settings.methods,
        configs=settings.configs,
        base=settings.base,
        executor=settings.executor,
        source=path,
    )
    grid.runs()  # every run's config resolves, or the file is refused now
    return grid


# The most seeds one range may name: `--seeds 0-10000000000` ran out of memory.
MAX_SEED_RANGE = 100_000


def parse_list(text: str) -> list[str]:
    """`a,b` -> ["a", "b"] (an argparse type). Nothing named is refused: an empty
    choice ran nothing and exited 0."""
    items = [item.strip() for item in text.split(",")]
    chosen = [item for item in items if item]
    if not chosen:
        raise ConfigError(f"{text!r}: expected one or more names, such as a,b")
    return chosen


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` or `0-4` -> a list of different seeds (an argparse type)."""
    seeds: list[int] = []
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ConfigError(f"seeds {text!r}: expected numbers such as 0,1,2 or 0-4")
    for item in items:
        low, dash, high = item.partition("-")
        try:
            first, last = (int(low), int(high)) if dash else (int(item), int(item))
        except ValueError:
            raise ConfigError(
                f"seeds {text!r}: expected numbers such as 0,1,2 or 0-4"
            ) from None
        # A range backwards named no seed at all, and the command did nothing.
        if not 0 <= last - first < MAX_SEED_RANGE:
            raise ConfigError(
                f"seeds {item!r}: expected a range from low to high of at most "
                f"{MAX_SEED_RANGE} seeds, such as 0-4"
            )
        seeds.extend(range(first, last + 1))
    # As in the grid file's seeds list: each seed once (`0,0` or `0-4,2`).
    seen: set[int] = set()
    for seed in seeds:
        if seed in seen:
            raise ConfigError(f"seeds {text!r}: must all differ, got {seed} twice")
        seen.add(seed)
    return seeds


def _subset(
    chosen: list[Any] | None, available: list[Any], what: str, source: Path
) -> list[Any]:
    if chosen is None:
        return available
    for item in chosen:
        if item not in available:
            listed = ", ".join(map(str, available))
            raise ConfigError(f"{what} {item}: not in {source} (it has {listed})")
    return [item for item in available if item in chosen]
