"""The experiment grid: methods x configs x seeds, read from a YAML file.

```yaml
name: main                   # runs go to runs/<name>/<method>/<config>/seed=<k>/
seeds: [0, 1, 2, 3, 4]
base: {}                     # overrides for every run
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import Config, config_hash, flatten, resolve
from .errors import ConfigError

DEFAULT_GRID = Path("configs") / "grid.yaml"
RUNS_ROOT = Path("runs")
EXECUTORS = ("pool", "slurm", "submitit-local")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TOP_KEYS = {"name", "seeds", "base", "methods", "configs", "executor"}


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
    executor: dict[str, Any] = field(default_factory=dict)
    source: Path = DEFAULT_GRID

    def runs(
        self,
        root: Path = RUNS_ROOT,
        *,
        methods: list[str] | None = None,
        configs: list[str] | None = None,
        seeds: list[int] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> list[Run]:
        """Every run, or those of the given methods, configs and seeds."""
        chosen_methods = _subset(methods, list(self.methods), "method", self.source)
        chosen_configs = _subset(configs, list(self.configs), "config", self.source)
        chosen_seeds = _subset(seeds, self.seeds, "seed", self.source)
        runs = []
        for method in chosen_methods:
            for name in chosen_configs:
                layers = [
                    self.base,
                    self.methods[method],
                    self.configs[name],
                    overrides or {},
                ]
                for seed in chosen_seeds:
                    try:
                        config = resolve(*layers, seed=seed)
                    except ConfigError as error:
                        raise ConfigError(
                            f"{self.source}: {method}/{name}: {error}"
                        ) from None
                    folder = root / self.name / method / name / f"seed={seed}"
                    runs.append(Run(self.name, method, name, seed, config, folder))
        return runs

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
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such grid file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        reason = str(error).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML ({reason})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with name, seeds and methods")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]} "
            f"(expected {', '.join(sorted(_TOP_KEYS))})"
        )
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"{path}: name={name!r}: expected letters, digits, '.', '_' or '-'"
        )
    seeds = raw.get("seeds")
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds
        )
        or len(set(seeds)) != len(seeds)
    ):
        raise ConfigError(
            f"{path}: seeds={seeds!r}: expected a list of different whole numbers >= 0"
        )
    grid = Grid(
        name=name,
        seeds=list(seeds),
        methods=_named_overrides(raw.get("methods"), "methods", path),
        configs=_named_overrides(raw.get("configs", {"default": {}}), "configs", path),
        base=_mapping(raw.get("base", {}), "base", path),
        executor=_mapping(raw.get("executor", {}), "executor", path),
        source=path,
    )
    executor = grid.executor.get("name", "pool")
    if executor not in EXECUTORS:
        raise ConfigError(
            f"{path}: executor.name={executor!r}: "
            f"expected one of {', '.join(EXECUTORS)}"
        )
    parallelism = grid.executor.get("parallelism")
    if parallelism is not None and (
        not isinstance(parallelism, int)
        or isinstance(parallelism, bool)
        or parallelism < 1
    ):
        raise ConfigError(
            f"{path}: executor.parallelism={parallelism!r}: "
            "expected a whole number >= 1"
        )
    grid.runs()  # every run's config resolves, or the file is refused now
    return grid


def parse_list(text: str) -> list[str]:
    """`a,b` -> ["a", "b"] (an argparse type)."""
    items = [item.strip() for item in text.split(",")]
    return [item for item in items if item]


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` or `0-4` -> a list of seeds (an argparse type)."""
    seeds: list[int] = []
    for item in parse_list(text):
        low, dash, high = item.partition("-")
        try:
            seeds.extend(range(int(low), int(high) + 1) if dash else [int(item)])
        except ValueError:
            raise ConfigError(
                f"seeds {text!r}: expected numbers such as 0,1,2 or 0-4"
            ) from None
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


def _mapping(value: Any, key: str, path: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key}: expected a mapping of settings")
    return value


def _named_overrides(value: Any, key: str, path: Path) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{path}: {key}: expected a mapping of names to settings")
    result = {}
    for name, overrides in value.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"{path}: {key}.{name}: names use letters, digits, '.', '_', '-'"
            )
        result[name] = _mapping(overrides, f"{key}.{name}", path)
    return result
