"""Where and how computation runs: device, numeric precision, seeds and determinism."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import re
from typing import Any

import numpy as np
import torch

from .errors import ConfigError

DEVICE_SPEC = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """Turn the `device` setting into a torch.device that exists on this machine.

    `auto` picks CUDA, then Apple MPS, then the CPU. Under torchrun each process takes
    the GPU of its local rank.
    """
    if not DEVICE_SPEC.fullmatch(spec):
        raise ConfigError(f"device={spec}: expected auto, cpu, cuda, cuda:N or mps")
    if spec == "auto":
        if torch.cuda.is_available():
            spec = "cuda"
        elif _mps_available():
            spec = "mps"
        else:
            spec = "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device={spec}: CUDA is not available on this machine "
                "(use cpu or auto)"
            )
        count = torch.cuda.device_count()
        index = int(spec.partition(":")[2] or local_rank)
        if index >= count:
            raise ConfigError(
                f"device={spec}: needs GPU {index}, but this machine has {count}"
            )
        return torch.device("cuda", index)
    if spec == "mps":
        if not _mps_available():
            raise ConfigError(
                "device=mps: Apple MPS is not available on this machine "
                "(use cpu or auto)"
            )
        return torch.device("mps")
    return torch.device("cpu")


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def native_bf16(device: torch.device) -> bool:
    """bfloat16 in hardware: CUDA compute capability 8.0 (Ampere) or newer.

    `torch.cuda.is_bf16_supported()` also says yes where bf16 is only emulated (T4,
    V100), which is slower than fp16 there.
    """
    if device.type != "cuda":
        return False
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a precision setting on this device; None means fp32.

    `auto` is bf16 on GPUs that have it natively, fp16 (with a gradient scaler) on
    older GPUs, and fp32 elsewhere.
    """
    if precision not in PRECISIONS:
        raise ConfigError(
            f"precision={precision}: expected one of {', '.join(PRECISIONS)}"
        )
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if native_bf16(device) else torch.float16
    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(
                "precision=bf16: this GPU does not support bfloat16 (use fp16 or fp32)"
            )
        if device.type == "mps":
            raise ConfigError("precision=bf16: not supported here on mps (use fp32)")
        return torch.bfloat16
    # fp16 needs a gradient scaler, which this project runs on CUDA only.
    if device.type != "cuda":
        raise ConfigError(
            f"precision=fp16: needs a CUDA device, not {device.type} (use bf16 or fp32)"
        )
    return torch.float16


def needs_grad_scaler(amp_dtype: torch.dtype | None) -> bool:
    """fp16 gradients underflow without loss scaling; bf16 and fp32 do not."""
    return amp_dtype == torch.float16


def configure_matmul_precision(device: torch.device) -> None:
    """Let float32 matmuls use TF32 tensor cores on GPUs (as nanoGPT does).

    About 8x faster on Ampere and newer at a precision training does not notice; CPU
    results are unaffected.
    """
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")


def autocast(
    device: torch.device, amp_dtype: torch.dtype | None
) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision for the forward pass, or nothing when training in fp32."""
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


MAX_SEED = 2**32 - 1  # NumPy's limit; torch's is larger


def seed_everything(seed: int) -> None:
    """Seed every generator a training script may draw from: Python, NumPy and torch."""
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed={seed}: expected a whole number from 0 to {MAX_SEED}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def configure_determinism(deterministic: bool) -> None:
    """Strict mode refuses nondeterministic kernels; else cuDNN may pick the fastest."""
    if deterministic:
        # cuBLAS needs a fixed workspace to be reproducible; set before it starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # Only on a change: each call imports torch's compiler stack, seconds on a busy CPU.
    if torch.are_deterministic_algorithms_enabled() != deterministic:
        torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def make_generator(seed: int) -> torch.Generator:
    """A generator of its own for one data loader, so its shuffling and its workers'
    seeds depend on `seed` alone: not on the global RNG, other loaders or worker count.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def seed_worker(worker_id: int) -> None:
    """`worker_init_fn` for DataLoader: seed Python and NumPy in each worker from the
    torch seed that the loader's generator gave it (torch seeds itself already)."""
    worker_seed = torch.initial_seed() % 2**32
    random.seed(worker_seed)
    np.random.seed(worker_seed)


def environment() -> dict[str, Any]:
    """What a result depends on beyond code and config, for a run's records."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "threads": torch.get_num_threads(),
        # The CPU kernels torch chose (DEFAULT, AVX2, AVX512...): they set the last
        # digits of a CPU run's numbers.
        "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }


def get_rng_state() -> dict[str, Any]:
    """Every generator's state, in types that torch.load(weights_only=True) accepts."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": numpy_state["state"]["key"].tolist(),
            "pos": numpy_state["state"]["pos"],
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuples(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy_state["bit_generator"],
            "state": {
                "key": np.array(numpy_state["key"], dtype=np.uint32),
                "pos": numpy_state["pos"],
            },
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    # A run resumed on another machine may see a different number of GPUs.
    if (
        state["cuda"]
        and torch.cuda.is_available()
        and len(state["cuda"]) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value: Any) -> Any:
    # random.setstate wants the nested tuples of getstate; a save may make them lists.
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(item) for item in value)
    return value


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()
