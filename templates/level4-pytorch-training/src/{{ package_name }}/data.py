"""Datasets and DataLoaders.

Two offline datasets, each a function `(DataConfig, seed) -> Splits`:

- `digits`: scikit-learn's bundled 8x8 handwritten digits, a classification task.
- `shapes`: discs, squares and triangles on noisy backgrounds, generated here from the
  seed, with a class for every pixel: a segmentation task.

To train on your own data, write such a function returning three torch Datasets that
yield `(input tensor, target)` (an integer label, or a mask of integer labels), add
it to DATASETS and select it with `data.dataset=<name>`. Loaders, resume and torchrun
work unchanged.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    Sampler,
    SequentialSampler,
    Subset,
    TensorDataset,
)

from .config import DataConfig, memory_for
from .errors import ConfigError
from .runtime import make_generator, seed_worker

CLASSIFICATION = "classification"
SEGMENTATION = "segmentation"

Batch = tuple[torch.Tensor, ...]  # (inputs, targets)


@dataclass
class Splits:
    train: Dataset[Batch]
    val: Dataset[Batch]
    test: Dataset[Batch]
    input_shape: tuple[int, ...]  # of one example, e.g. (1, 8, 8)
    class_names: list[str]
    task: str = CLASSIFICATION  # or SEGMENTATION: one class per pixel
    model: str = "cnn"  # the model `model.name=auto` picks for this dataset

    def info(self) -> dict[str, Any]:
        """What predict and export need to know without rebuilding the data."""
        return {
            "input_shape": list(self.input_shape),
            "class_names": self.class_names,
            "task": self.task,
        }


def digits_splits(config: DataConfig, seed: int) -> Splits:
    """scikit-learn's bundled 8x8 handwritten digits: 1,797 images, 10 classes, offline.

    The split is stratified by class and drawn from the seed, so it is the same on every
    machine and in every process of a distributed run.
    """
    pixels, labels = _digits_arrays()
    # Shape (N, 1, 8, 8), pixels scaled from 0..16 to [0, 1].
    images = (pixels / 16.0).astype(np.float32)[:, None]
    indices = _split(len(labels), config, seed, stratify=labels)
    return _in_memory(
        images, labels, indices, class_names=[str(digit) for digit in range(10)]
    )


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 images (0..16) and labels scikit-learn ships, read from its data file
    as its loader does: importing scikit-learn itself takes seconds. Through the
    loader where a release has moved the file."""
    spec = importlib.util.find_spec("sklearn")
    for folder in (spec and spec.submodule_search_locations) or []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            data = np.loadtxt(path, delimiter=",", dtype=np.float64)
            return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images, digits.target.astype(np.int64)


SHAPE_CLASSES = ["background", "disc", "square", "triangle"]
SHAPE_SIZE = 32


def shapes_splits(config: DataConfig, seed: int) -> Splits:
    """Synthetic segmentation: 32x32 grey images of one to three shapes, and masks.

    Every image, its shapes, their sizes, brightness and the background noise come from
    the seed alone, so the dataset is the same on every machine; nothing is downloaded.
    """
    with memory_for(f"{config.shapes_count:,} shapes", "lower data.shapes_count"):
        images, masks = make_shapes(config.shapes_count, seed)
        indices = _split(len(images), config, seed, stratify=None)
        return _in_memory(
            images,
            masks,
            indices,
            class_names=SHAPE_CLASSES,
            task=SEGMENTATION,
            model="unet",
        )


def make_shapes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` images (N, 1, 32, 32) in [0, 1], and masks (N, 32, 32) of classes."""
    rng = np.random.default_rng(seed)
    size = SHAPE_SIZE
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    images = np.empty((count, 1, size, size), dtype=np.float32)
    masks = np.zeros((count, size, size), dtype=np.int64)
    for index in range(count):
        # A smooth background with a random slope, plus pixel noise.
        slope = rng.uniform(-0.01, 0.01, size=2)
        image = rng.uniform(0.0, 0.3) + slope[0] * x + slope[1] * y
        mask = masks[index]
        for _ in range(rng.integers(1, 4)):
            kind = int(rng.integers(1, len(SHAPE_CLASSES)))
            radius = rng.uniform(4.0, 8.0)
            cy, cx = rng.uniform(radius, size - radius, size=2)
            dy, dx = y - cy, x - cx
            if kind == 1:  # disc
                inside = dy**2 + dx**2 <= radius**2
            elif kind == 2:  # square
                inside = (np.abs(dy) <= radius * 0.8) & (np.abs(dx) <= radius * 0.8)
            else:  # triangle pointing up: the width grows from the apex down
                inside = (dy >= -radius) & (dy <= radius * 0.7)
                inside &= np.abs(dx) <= (dy + radius) * 0.6
            image = np.where(inside, rng.uniform(0.55, 1.0), image)
            mask[inside] = kind
        image = image + rng.normal(0.0, 0.08, size=(size, size))
        images[index, 0] = np.clip(image, 0.0, 1.0)
    return images, masks


DATASETS: dict[str, Callable[[DataConfig, int], Splits]] = {
    "digits": digits_splits,
    "shapes": shapes_splits,
}


def build_splits(config: DataConfig, seed: int) -> Splits:
    try:
        make_splits = DATASETS[config.dataset]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise ConfigError(
            f"data.dataset: unknown dataset (known: {known}), got {config.dataset!r}"
        ) from None
    return make_splits(config, seed)


def train_loader(
    dataset: Dataset[Batch],
    config: DataConfig,
    seed: int,
    *,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> DataLoader[Batch]:
    """A shuffling loader whose order depends only on the seed and the epoch.

    DistributedSampler also serves a single process (one replica): one code path, and
    each process of a torchrun job reads its own share of every epoch. The loader has a
    generator of its own (see set_epoch), so it never draws from the global random
    state that dropout uses: the number of workers cannot change a result.
    """
    sampler: DistributedSampler[int] = DistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed
    )
    return _loader(dataset, sampler, config.batch_size, config, pin_memory, seed)


def set_epoch(loader: DataLoader[Batch], epoch: int, seed: int) -> None:
    """Fix an epoch's shuffle order and worker seeds, so resumed runs see the same."""
    sampler = getattr(loader.sampler, "sampler", loader.sampler)  # in a BatchSampler
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
    if loader.generator is not None:
        loader.generator.manual_seed(seed + epoch)


def eval_loader(
    dataset: Dataset[Batch],
    config: DataConfig,
    *,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> DataLoader[Batch]:
    """An ordered loader over this process's share; shares hold each example once."""
    if world_size > 1:
        dataset = Subset(dataset, range(rank, len(dataset), world_size))  # type: ignore[arg-type]
    sampler: Sampler[int] = SequentialSampler(dataset)  # type: ignore[arg-type]
    return _loader(dataset, sampler, config.eval_batch_size, config, pin_memory, 0)


def skip_batches(loader: DataLoader[Batch], count: int) -> Iterator[Batch]:
    """The loader's batches after the first `count` (to resume within an epoch)."""
    batches = iter(loader)
    for _ in range(count):
        next(batches, None)
    return batches


def _loader(
    dataset: Dataset[Batch],
    sampler: Sampler[int],
    batch_size: int,
    config: DataConfig,
    pin_memory: bool,
    seed: int,
) -> DataLoader[Batch]:
    options: dict[str, Any] = {
        "num_workers": config.num_workers,
        "pin_memory": pin_memory,
        "worker_init_fn": seed_worker,
        "generator": make_generator(seed),
    }
    if isinstance(dataset, TensorDataset):
        # Tensors in memory: index a whole batch at once instead of gathering and
        # stacking one example at a time (the same batches, markedly faster).
        batches: Sampler[Any] = (
            IndexBatches(sampler, batch_size)
            if config.num_workers == 0
            # Worker processes get lists: a tensor would be sent through shared memory.
            else BatchSampler(sampler, batch_size, drop_last=False)
        )
        return DataLoader(dataset, sampler=batches, batch_size=None, **options)
    return DataLoader(dataset, sampler=sampler, batch_size=batch_size, **options)


class IndexBatches(Sampler[torch.Tensor]):
    """The batches of `BatchSampler(sampler, batch_size)`, each a tensor of indices.

    A tensor indexes the dataset's tensors in one call; a list is read one element at
    a time, which takes longer than the rest of the loader's work for a batch.
    """

    def __init__(self, sampler: Sampler[int], batch_size: int) -> None:
        self.sampler = sampler  # where set_epoch finds it, as in a BatchSampler
        self.batch_size = batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.tensor(list(self.sampler), dtype=torch.int64)
        return iter(torch.split(order, self.batch_size))


def _split(
    count: int, config: DataConfig, seed: int, stratify: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test indices drawn from the seed; with `stratify` (the
    labels), every class is split in the same proportions."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(count, dtype=np.int64) if stratify is None else stratify
    classes, sizes = np.unique(labels, return_counts=True)
    test = _quotas(sizes, config.test_fraction)
    val = _quotas(sizes, config.val_fraction)
    parts: tuple[list[np.ndarray], ...] = ([], [], [])
    for label, n_test, n_val in zip(classes, test, val, strict=True):
        members = rng.permutation(np.flatnonzero(labels == label))
        parts[2].append(members[:n_test])
        parts[1].append(members[n_test : n_test + n_val])
        parts[0].append(members[n_test + n_val :])
    train_idx, val_idx, test_idx = (np.sort(np.concatenate(part)) for part in parts)
    return train_idx, val_idx, test_idx


def _quotas(sizes: np.ndarray, fraction: float) -> np.ndarray:
    """Whole numbers near sizes * fraction that add up to ceil(sum * fraction)."""
    exact = sizes * fraction
    quotas = np.floor(exact).astype(np.int64)
    short = math.ceil(sizes.sum() * fraction - 1e-9) - int(quotas.sum())
    quotas[np.argsort(quotas - exact, kind="stable")[:short]] += 1
    return quotas


def _in_memory(
    inputs: np.ndarray,
    targets: np.ndarray,
    indices: tuple[np.ndarray, np.ndarray, np.ndarray],
    **about: Any,
) -> Splits:
    """Splits of arrays held in memory, by the train, validation and test indices."""
    train, val, test = (
        TensorDataset(torch.from_numpy(inputs[idx]), torch.from_numpy(targets[idx]))
        for idx in indices
    )
    return Splits(train, val, test, input_shape=tuple(inputs.shape[1:]), **about)
