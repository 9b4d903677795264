"""`bench`: BitLinear against nn.Linear and transformers, side by side in one run.

For each shape it times, in turn within every repeat (so a busy machine slows all of
them alike):

- eval forward: nn.Linear, BitLinear in `eval()` (quantised weight cached) and the
  integer path (`PackedBitLinear`, packed weights, exact integer sums);
- forward+backward (a training step without the optimiser): nn.Linear, BitLinear
  and, when transformers is installed, its online `AutoBitLinear` (the same BitNet
  b1.58 arithmetic, quantising in the forward pass, RMSNorm on); with `compile`, also
  BitLinear under `torch.compile`, which fuses the quantisers' passes over the weight
  (eager BitLinear keeps the published code's arithmetic bit for bit; compiled, the
  scale can differ in its last bit);

and reports each median against nn.Linear, the training rows also against
transformers, with packed and bfloat16 weight bytes and the quantisers' SQNR. The
report requires nothing of the ratios; the README states what they were.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from . import functional as BF
from .errors import ConfigError
from .inference import PackedBitLinear
from .layers import BitLinear
from .packing import packed_nbytes
from .runtime import environment

log = logging.getLogger(__name__)

DEFAULT_SHAPES = ((1, 2048, 2048), (32, 2048, 2048))
EVAL = ("linear", "bitlinear", "integer")
TRAIN = ("linear", "bitlinear", "compiled", "transformers")
LABELS = {
    "linear": "nn.Linear",
    "bitlinear": "BitLinear",
    "compiled": "BitLinear, torch.compile",
    "integer": "integer path",
    "transformers": "transformers AutoBitLinear (online)",
}


def sqnr_db(reference: Tensor, approximation: Tensor) -> float:
    """Signal-to-quantisation-noise ratio in dB: 20 log10(|ref| / |ref - approx|)."""
    reference = reference.double()
    noise = (reference - approximation.double()).norm().item()
    if noise == 0:
        return math.inf
    return 20 * math.log10(reference.norm().item() / noise)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_in_turn(
    functions: dict[str, Callable[[], Any]],
    device: torch.device,
    repeats: int,
    warmup: int,
) -> dict[str, list[float]]:
    """Seconds per call of each function: `warmup` calls each, then `repeats` rounds
    that call every function once, in turn."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    _synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            _synchronize(device)
            times[name].append(time.perf_counter() - started)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    return {
        "median_ms": statistics.median(times) * 1e3,
        "min_ms": min(times) * 1e3,
        "max_ms": max(times) * 1e3,
    }


def transformers_layer(
    in_features: int, out_features: int, device: torch.device
) -> tuple[nn.Module | None, str]:
    """transformers' online AutoBitLinear with BitLinear's settings (no bias, RMSNorm
    before quantising, eps 1e-5), or None and why not."""
    if importlib.util.find_spec("transformers") is None:
        return None, "transformers is not installed"
    try:
        from transformers.integrations.bitnet import AutoBitLinear
    except ImportError as error:
        return None, f"transformers has no AutoBitLinear ({error})"
    layer: nn.Module = AutoBitLinear(
        in_features,
        out_features,
        bias=False,
        online_quant=True,
        use_rms_norm=True,
        rms_norm_eps=BF.NORM_EPS,
    )
    return layer.to(device), ""


def bench_shape(
    tokens: int,
    in_features: int,
    out_features: int,
    device: torch.device,
    repeats: int,
    warmup: int,
    with_transformers: bool = True,
    with_compile: bool = False,
) -> dict[str, Any]:
    log.info("timing %dx%dx%d on %s", tokens, in_features, out_features, device)
    generator = torch.Generator().manual_seed(0)
    linear = nn.Linear(in_features, out_features, bias=False).to(device)
    bit = BitLinear(in_features, out_features).to(device)
    with torch.no_grad():
        bit.weight.copy_(linear.weight)
    packed = PackedBitLinear.from_bitlinear(bit)
    hf, hf_missing = (
        transformers_layer(in_features, out_features, device)
        if with_transformers
        else (None, "not asked for (--skip-transformers)")
    )
    if hf is not None:
        with torch.no_grad():
            hf.get_parameter("weight").copy_(linear.weight)
    x = torch.randn(tokens, in_features, generator=generator).to(device)
    x_grad = x.clone().requires_grad_()

    def forward(module: nn.Module) -> Callable[[], Any]:
        def run() -> Any:
            with torch.no_grad():
                return module(x)

        return run

    def forward_backward(module: nn.Module) -> Callable[[], Any]:
        def run() -> None:
            module.zero_grad(set_to_none=True)
            module(x_grad).sum().backward()

        return run

    eval_modules: dict[str, nn.Module] = {
        "linear": linear,
        "bitlinear": bit,
        "integer": packed,
    }
    for module in eval_modules.values():
        module.eval()
    eval_times = time_in_turn(
        {name: forward(module) for name, module in eval_modules.items()},
        device,
        repeats,
        warmup,
    )
    train_modules: dict[str, nn.Module] = {"linear": linear, "bitlinear": bit}
    if hf is not None:
        try:  # after the eval timings, which its compiler's workers would disturb
            hf(x_grad).sum().backward()
        # transformers compiles its quantisers on the first call; a machine without a
        # C++ compiler (or another torch) can fail there, which is theirs, not ours.
        except Exception as error:
            hf, hf_missing = None, f"transformers' layer failed to run: {error}"
        else:
            train_modules["transformers"] = hf
    compiled_status = "not asked for (--compile)"
    if with_compile:
        compiled = BitLinear(in_features, out_features).to(device)
        compiled.load_state_dict(bit.state_dict())
        compiled.compile()  # in place, so that the eager twin stays eager
        try:
            compiled(x_grad).sum().backward()
        # Inductor needs a C++ compiler on the CPU; without one this row is left out.
        except Exception as error:
            compiled_status = f"torch.compile failed: {error}"
        else:
            train_modules["compiled"] = compiled
            compiled_status = "compared"
    for module in train_modules.values():
        module.train()
    train_times = time_in_turn(
        {name: forward_backward(module) for name, module in train_modules.items()},
        device,
        repeats,
        warmup,
    )
    eval_ms = {name: _summary(times) for name, times in eval_times.items()}
    train_ms = {name: _summary(times) for name, times in train_times.items()}

    def ratios(summary: dict[str, dict[str, float]], baseline: str) -> dict[str, float]:
        base = summary[baseline]["median_ms"]
        return {name: entry["median_ms"] / base for name, entry in summary.items()}

    bf16_bytes = in_features * out_features * 2
    packed_bytes = packed_nbytes(out_features, in_features)
    kernel = packed.kernel_for(torch.zeros(tokens, in_features, device=device))
    return {
        "shape": {
            "tokens": tokens,
            "in_features": in_features,
            "out_features": out_features,
        },
        "eval_forward": eval_ms,
        "forward_backward": train_ms,
        "ratios": {
            "eval_forward_vs_linear": ratios(eval_ms, "linear"),
            "forward_backward_vs_linear": ratios(train_ms, "linear"),
            "forward_backward_vs_transformers": (
                ratios(train_ms, "transformers") if hf is not None else {}
            ),
        },
        "integer_kernel": kernel,
        "transformers": "compared" if hf is not None else hf_missing,
        "compiled": compiled_status,
        "bytes": {
            "bf16_weight": bf16_bytes,
            "packed_weight": packed_bytes,
            "packed_with_scale": packed_bytes + 4,
            "bf16_over_packed": bf16_bytes / packed_bytes,
            "cached_codes": out_features * in_features * (1 if kernel == "int8" else 4),
        },
    }


def quantisation_error(seed: int = 0) -> dict[str, Any]:
    """SQNR of the quantisers on N(0, 1) data: weights 1024x1024, activations per d."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(1024, 1024, generator=generator)
    codes, scale = BF.absmean_ternary(weight)
    binary_codes, binary_scale = BF.sign_binary(weight)
    activations = {}
    for dim in (256, 1024, 4096):
        x = torch.randn(64, dim, generator=generator)
        x_codes, x_scale = BF.absmax_int8(x)
        activations[f"int8_per_token_d{dim}_db"] = sqnr_db(x, x_codes / x_scale)
    return {
        "ternary_weight_db": sqnr_db(weight, codes / scale),
        "ternary_zero_fraction": (codes == 0).double().mean().item(),
        "binary_weight_db": sqnr_db(weight, binary_codes / binary_scale),
        **activations,
    }


def run_benchmark(
    shapes: list[tuple[int, int, int]],
    device: torch.device,
    repeats: int,
    warmup: int,
    with_transformers: bool = True,
    with_compile: bool = False,
) -> dict[str, Any]:
    return {
        "device": str(device),
        "environment": environment(),
        "repeats": repeats,
        "warmup": warmup,
        "shapes": [
            _bench_in_memory(
                shape, device, repeats, warmup, with_transformers, with_compile
            )
            for shape in shapes
        ],
        "sqnr": quantisation_error(),
    }


def _bench_in_memory(
    shape: tuple[int, int, int],
    device: torch.device,
    repeats: int,
    warmup: int,
    with_transformers: bool,
    with_compile: bool,
) -> dict[str, Any]:
    """One shape's timings; a shape too big for the device is one line naming it."""
    try:
        return bench_shape(
            *shape, device, repeats, warmup, with_transformers, with_compile
        )
    except (MemoryError, RuntimeError) as error:
        # torch says so in a RuntimeError on the CPU, an OutOfMemoryError on GPUs.
        text = str(error)
        if not (
            isinstance(error, MemoryError | torch.OutOfMemoryError)
            or "can't allocate memory" in text
        ):
            raise
        name = "x".join(str(size) for size in shape)
        asked = re.search(r"tried to allocate (\d+) bytes", text)
        detail = (
            f"torch asked for {int(asked[1]) / 2**30:,.1f} GiB at once"
            if asked
            else (text.strip().splitlines() or [type(error).__name__])[-1]
        )
        # The shape asked for is what is wrong: nothing was timed.
        raise ConfigError(f"--shape {name}: does not fit in memory: {detail}") from None
