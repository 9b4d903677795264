"""The optimiser, its schedule, and the two halves of a step that the epoch loop runs:
`backward` on every batch, `optimizer_step` once per accumulated group of batches."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from .config import TrainConfig
from .runtime import autocast


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on weight matrices and kernels only: biases and norm
    scales (the 1-d parameters) are not pulled towards zero, as in nanoGPT."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = [
        {"params": [p for p in parameters if p.ndim >= 2]},
        {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
    ]
    try:
        # The fused kernel updates every tensor of a group in one call: on CUDA, and
        # on CPU since torch 2.4, where it takes a third of the time of the loop.
        return torch.optim.AdamW(
            groups, lr=config.lr, weight_decay=config.weight_decay, fused=True
        )
    except RuntimeError:  # a device or a torch release without it
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int,
    min_ratio: float = 0.0,
) -> LambdaLR:
    """Linear warm-up for `warmup_steps`, then cosine decay until `total_steps`, from
    the full learning rate down to `min_ratio` of it (train.min_lr / train.lr)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def backward(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    scaler: torch.amp.GradScaler,
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward of one batch; returns its mean loss and correct answers
    (correct pixels, for segmentation). Both stay on the device: reading them
    (`.item()`) would wait for the GPU every step."""
    with autocast(device, amp_dtype):
        logits = model(inputs)
        loss = F.cross_entropy(logits, targets)
    # For fp16 the scaler multiplies the loss so small gradients survive; else a no-op.
    scaled: torch.Tensor = scaler.scale(loss * scale if scale != 1.0 else loss)
    scaled.backward()  # type: ignore[no-untyped-call]
    return loss.detach(), (logits.argmax(dim=1) == targets).sum()


def optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LambdaLR,
    scaler: torch.amp.GradScaler,
    grad_clip: float,
) -> None:
    """Clip (when train.grad_clip is set), step, clear the gradients and move the
    schedule on."""
    if grad_clip > 0:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler.is_enabled():
        scaler.step(optimizer)
        scaler.update()
    else:  # fp32 and bf16: nothing to unscale or skip
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()
