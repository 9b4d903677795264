"""Datasets and DataLoaders.

To train on your own data, write a function that takes the DataConfig and the seed and
returns a `Splits` of three torch Datasets yielding `(input tensor, integer label)`;
add it to DATASETS below and select it with `data.dataset=<name>`. Everything else
(loaders, sampling, distributed training) works unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    Subset,
    TensorDataset,
)

from .config import DataConfig
from .errors import ConfigError


@dataclass
class Splits:
    train: Dataset
    val: Dataset
    test: Dataset
    input_shape: tuple[int, ...]  # of one example, e.g. (1, 8, 8)
    class_names: list[str]


def digits_splits(config: DataConfig, seed: int) -> Splits:
    """scikit-learn's bundled 8x8 handwritten digits: 1,797 images, 10 classes, offline.

    The split is stratified by class and drawn from the seed, so it is the same on every
    machine and in every process of a distributed run.
    """
    digits = load_digits()
    # Shape (N, 1, 8, 8), pixels scaled from 0..16 to [0, 1].
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    labels = digits.target.astype(np.int64)
    indices = np.arange(len(labels))
    rest, test_idx = train_test_split(
        indices, test_size=config.test_fraction, random_state=seed, stratify=labels
    )
    val_size = config.val_fraction / (1 - config.test_fraction)
    train_idx, val_idx = train_test_split(
        rest, test_size=val_size, random_state=seed, stratify=labels[rest]
    )

    def subset(idx: np.ndarray) -> TensorDataset:
        return TensorDataset(
            torch.from_numpy(images[idx]), torch.from_numpy(labels[idx])
        )

    return Splits(
        train=subset(train_idx),
        val=subset(val_idx),
        test=subset(test_idx),
        input_shape=tuple(images.shape[1:]),
        class_names=[str(name) for name in digits.target_names],
    )


DATASETS: dict[str, Callable[[DataConfig, int], Splits]] = {
    "digits": digits_splits,
}


def build_splits(config: DataConfig, seed: int) -> Splits:
    try:
        make_splits = DATASETS[config.dataset]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise ConfigError(
            f"data.dataset={config.dataset!r}: unknown dataset (known: {known})"
        ) from None
    return make_splits(config, seed)


def seed_worker(worker_id: int) -> None:
    """Give each loader worker its own NumPy and Python seed, derived from torch's.

    torch seeds its own generator in every worker (from the loader's generator), but not
    NumPy's or Python's, which random augmentations often use.
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def train_loader(
    dataset: Dataset,
    config: DataConfig,
    seed: int,
    *,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> DataLoader:
    """A shuffling loader whose order depends only on the seed and the epoch.

    DistributedSampler also serves a single process (one replica): one code path,
    and each process of a torchrun job reads its own share of every epoch.
    """
    sampler = DistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed
    )
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        pin_memory=pin_memory,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=config.num_workers > 0,
    )


def set_epoch(loader: DataLoader, epoch: int, seed: int) -> None:
    """Fix an epoch's shuffle order and worker seeds, so resumed runs see the same."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    if loader.generator is not None:
        loader.generator.manual_seed(seed + epoch)


def eval_loader(
    dataset: Dataset,
    config: DataConfig,
    *,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> DataLoader:
    """An ordered loader over this process's share; shares hold each example once."""
    if world_size > 1:
        dataset = Subset(dataset, range(rank, len(dataset), world_size))
    return DataLoader(
        dataset,
        batch_size=config.eval_batch_size,
        shuffle=False,
        num_workers=config.num_workers,
        pin_memory=pin_memory,
        worker_init_fn=seed_worker,
        persistent_workers=config.num_workers > 0,
    )
