"""Multi-process training under PyTorch's own launcher, torchrun.

`torchrun --nproc_per_node=N -m <package> train` starts N copies of this program and
sets RANK, LOCAL_RANK and WORLD_SIZE in each. Without those variables this is one
process and every function here is a no-op.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Process:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes logs, checkpoints and metrics."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def process_from_environment() -> Process:
    return Process(
        rank=int(os.environ.get("RANK", "0")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
    )


def init(process: Process, device: torch.device) -> None:
    """Join the process group: NCCL between GPUs, Gloo on CPUs."""
    if not process.distributed or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")


def shutdown() -> None:
    """Leave the process group, after everything that uses it is gone.

    DistributedDataParallel's reducer keeps the group and its Gloo work objects alive,
    and it lives in reference cycles that only the collector frees. Destroyed later,
    after the group, it takes down a Gloo thread that is still joinable, and the
    process aborts ("terminate called without an active exception"). So: collect
    first, then destroy.
    """
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all processes, in place; returns it for convenience."""
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_tensors(tensors: list[torch.Tensor]) -> None:
    """Overwrite each tensor, in place, with rank 0's copy."""
    if dist.is_initialized():
        for tensor in tensors:
            dist.broadcast(tensor, src=0)


def broadcast_object(value: Any) -> Any:
    """Rank 0's value, on every process (for example the run folder it created)."""
    if not dist.is_initialized():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def gather_objects(value: Any) -> list[Any]:
    """Every process's value, in rank order (for example each one's random state)."""
    if not dist.is_initialized():
        return [value]
    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values
