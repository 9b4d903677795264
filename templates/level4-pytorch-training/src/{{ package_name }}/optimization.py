"""The optimiser, its schedule, and the two halves of a step that the epoch loop runs:
`backward` on every batch, `optimizer_step` once per accumulated group of batches."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from .config import TrainConfig
from .runtime import autocast


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on weight matrices and kernels only: biases and norm
    scales (the 1-d parameters) are not pulled towards zero, as in nanoGPT.

    Every parameter is in one group, whose own weight decay is 0, so the update runs
    once per step; a second group for the 1-d parameters would run it twice. The decay
    is AdamW's decoupled one, p <- p * (1 - lr * weight_decay) just before the update,
    applied to the decayed tensors in one call by a step pre-hook (`decay_weights`).
    On the CPU that is what AdamW computes for a group with weight decay, to the bit.
    """
    parameters = [p for p in model.parameters() if p.requires_grad]
    try:
        # The fused kernel updates every tensor of a group in one call: on CUDA, and
        # on CPU since torch 2.4, where it takes a third of the time of the loop.
        optimizer = torch.optim.AdamW(
            parameters, lr=config.lr, weight_decay=0.0, fused=True
        )
    except RuntimeError:  # a device or a torch release without it
        optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=0.0)
    matrices = [p for p in parameters if p.ndim >= 2]
    if config.weight_decay and matrices:
        optimizer.register_step_pre_hook(decay_weights(matrices, config.weight_decay))
    return optimizer


def decay_weights(
    matrices: list[nn.Parameter], weight_decay: float
) -> Callable[[torch.optim.Optimizer, Any, Any], None]:
    """The step pre-hook that applies AdamW's decoupled weight decay to `matrices`."""

    @torch.no_grad()
    def decay(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        stepped: list[torch.Tensor] = [p for p in matrices if p.grad is not None]
        if not stepped:
            return
        keep = 1 - optimizer.param_groups[0]["lr"] * weight_decay
        found_inf = getattr(optimizer, "found_inf", None)
        if found_inf is None:
            torch._foreach_mul_(stepped, keep)
        else:
            # fp16: a gradient scaler hands the fused kernel `found_inf`, and the
            # kernel leaves every tensor as it is when the gradients overflowed.
            torch._foreach_mul_(stepped, torch.where(found_inf > 0, 1.0, keep))

    return decay


def one_parameter_group(
    optimizer_state: dict[str, Any],
    scheduler_state: dict[str, Any],
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The saved state of an optimiser and schedule as `build_optimizer` makes them.

    Checkpoints of 0.2.0 and 0.3.0 hold two groups: the weight matrices and kernels
    (decayed), then the other parameters, each in the model's order. Their moments are
    given back to the same parameters in one group, in the model's order; a state of
    one group is returned as it is.
    """
    groups = optimizer_state["param_groups"]
    if len(groups) != 2:
        return optimizer_state, scheduler_state
    dims = [p.ndim for p in optimizer.param_groups[0]["params"]]
    order = [i for i, n in enumerate(dims) if n >= 2] + [
        i for i, n in enumerate(dims) if n < 2
    ]
    saved = [index for group in groups for index in group["params"]]
    if len(saved) != len(order):
        return optimizer_state, scheduler_state  # load_state_dict says why it fails
    moments = optimizer_state["state"]
    group = {**groups[0], "weight_decay": 0.0, "params": list(range(len(order)))}
    state = {
        "state": {
            model_index: moments[old]
            for old, model_index in zip(saved, order, strict=True)
            if old in moments
        },
        "param_groups": [group],
    }
    per_group = ("base_lrs", "_last_lr", "lr_lambdas")
    schedule = {
        key: value[:1] if key in per_group else value
        for key, value in scheduler_state.items()
    }
    return state, schedule


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
    optimizer: torch.optim.Optimizer,
    scheduler: LambdaLR,
    scaler: torch.amp.GradScaler,
    grad_clip: float,
) -> None:
    """Clip (when train.grad_clip is set), step, clear the gradients and move the
    schedule on."""
    if grad_clip > 0:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        clip_gradients(optimizer, grad_clip)
    if scaler.is_enabled():
        scaler.step(optimizer)
        scaler.update()
    else:  # fp32 and bf16: nothing to unscale or skip
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    """Scale the gradients of the optimiser's parameters down to a total norm of at
    most `max_norm`: the arithmetic of `torch.nn.utils.clip_grad_norm_`, bit for bit,
    in five calls for all the tensors at once. Its checks and grouping by device take
    longer than the arithmetic itself on a small model."""
    grads = [
        parameter.grad
        for group in optimizer.param_groups
        for parameter in group["params"]
        if parameter.grad is not None
    ]
    if not grads:
        return
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))
