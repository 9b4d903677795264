"""The training smoke comparison: a tiny BitNet transformer against its float twin.

Both learn the same synthetic copy task with the same seed, data, steps and optimiser;
the twin is the same network with `quantize=False` (every BitLinear a plain linear map
after its RMSNorm). A BitNet that "trains" to gibberish, or whose weights get no
gradient, ends far below the twin's accuracy.

The task: a sequence of `length` random tokens, a separator, then the same tokens
again; the model is scored on predicting the copy (teacher-forced, per token).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from .errors import ConfigError
from .model import BitNetTransformer, ModelConfig
from .progress import ProgressBar
from .runtime import seed_everything

SEPARATOR = 0


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 200
    batch_size: int = 64
    length: int = 8  # tokens to copy; sequences are 2 * length + 1 long
    lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    eval_batches: int = 8

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "length", "eval_batches"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(
                    f"{name}={value}: expected a whole number of 1 or more"
                )
        if not self.lr > 0:
            raise ConfigError(f"lr={self.lr}: expected a number above 0")


@dataclass(frozen=True)
class TrainResult:
    name: str
    first_loss: float
    final_loss: float
    accuracy: float
    seconds: float
    steps: int


def copy_batch(
    batch_size: int, length: int, vocab_size: int, generator: torch.Generator
) -> Tensor:
    """[batch, 2 * length + 1] token ids: tokens, separator, the same tokens."""
    tokens = torch.randint(1, vocab_size, (batch_size, length), generator=generator)
    separator = torch.full((batch_size, 1), SEPARATOR)
    return torch.cat([tokens, separator, tokens], dim=1)


def copy_loss_and_accuracy(
    model: nn.Module, batch: Tensor, length: int
) -> tuple[Tensor, Tensor]:
    """Cross-entropy and accuracy on the copied half only (the first half is random)."""
    logits = model(batch[:, :-1])[:, length:]
    targets = batch[:, length + 1 :]
    loss = nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    )
    accuracy = (logits.argmax(dim=-1) == targets).float().mean()
    return loss, accuracy


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run on one CPU thread: a model this small only loses time to thread hand-offs,
    and on a busy machine (CI, shared cores) several threads can be 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_copy_task(
    model_config: ModelConfig,
    config: TrainConfig,
    name: str,
    *,
    progress: bool | None = None,
) -> TrainResult:
    """Train one model on the copy task and score it on held-out batches.

    `progress` is the bar's `enabled`: None draws it on a terminal, False never."""
    if 2 * config.length > model_config.max_length:
        raise ConfigError(
            f"length={config.length}: sequences of {2 * config.length} tokens exceed "
            f"max_length={model_config.max_length}"
        )
    seed_everything(config.seed)
    model = BitNetTransformer(model_config)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.steps, pct_start=0.1
    )
    data = torch.Generator().manual_seed(config.seed)
    started = time.perf_counter()
    first_loss = final_loss = float("nan")
    model.train()
    with ProgressBar(config.steps, name, enabled=progress) as bar:
        for step in range(config.steps):
            batch = copy_batch(
                config.batch_size, config.length, model_config.vocab_size, data
            )
            loss, _ = copy_loss_and_accuracy(model, batch, config.length)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            schedule.step()
            final_loss = loss.item()
            if step == 0:
                first_loss = final_loss
            bar.update(loss=final_loss)
    model.eval()
    held_out = torch.Generator().manual_seed(config.seed + 1)
    correct = 0.0
    with torch.no_grad():
        for _ in range(config.eval_batches):
            batch = copy_batch(
                config.batch_size, config.length, model_config.vocab_size, held_out
            )
            correct += copy_loss_and_accuracy(model, batch, config.length)[1].item()
    return TrainResult(
        name=name,
        first_loss=first_loss,
        final_loss=final_loss,
        accuracy=correct / config.eval_batches,
        seconds=time.perf_counter() - started,
        steps=config.steps,
    )


def compare(
    model_config: ModelConfig, config: TrainConfig, *, progress: bool | None = None
) -> tuple[TrainResult, TrainResult]:
    """BitNet (quantised) and its full-precision twin, trained alike."""
    with one_thread():
        bitnet = train_copy_task(
            replace(model_config, quantize=True), config, "bitnet", progress=progress
        )
        full = train_copy_task(
            replace(model_config, quantize=False), config, "float", progress=progress
        )
    return bitnet, full
