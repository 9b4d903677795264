"""`bench`: latency of BitLinear against nn.Linear, the integer path, bytes and SQNR.

Fake-quantised training adds work (a norm, two quantisers, their straight-through
functions) to a matmul that is still done in floating point, so BitLinear is slower
than nn.Linear here; real speed-ups need packed low-bit kernels. The report records the
ratios and requires nothing of them.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from . import functional as BF
from .inference import PackedBitLinear
from .layers import BitLinear
from .packing import packed_nbytes
from .runtime import environment

DEFAULT_SHAPES = ((1, 2048, 2048), (32, 2048, 2048))


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


def time_call(
    function: Callable[[], Any], device: torch.device, repeats: int, warmup: int
) -> list[float]:
    """Seconds per call, `repeats` times after `warmup` calls."""
    for _ in range(warmup):
        function()
    _synchronize(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        _synchronize(device)
        times.append(time.perf_counter() - started)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    return {
        "median_ms": statistics.median(times) * 1e3,
        "min_ms": min(times) * 1e3,
        "max_ms": max(times) * 1e3,
    }


def bench_shape(
    tokens: int,
    in_features: int,
    out_features: int,
    device: torch.device,
    repeats: int,
    warmup: int,
) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(0)
    linear = nn.Linear(in_features, out_features, bias=False).to(device)
    bit = BitLinear(in_features, out_features).to(device)
    with torch.no_grad():
        bit.weight.copy_(linear.weight)
    packed = PackedBitLinear.from_bitlinear(bit)
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

    timings = {
        "linear_forward": time_call(forward(linear), device, repeats, warmup),
        "bitlinear_forward": time_call(forward(bit), device, repeats, warmup),
        "inference_forward": time_call(forward(packed), device, repeats, warmup),
        "linear_forward_backward": time_call(
            forward_backward(linear), device, repeats, warmup
        ),
        "bitlinear_forward_backward": time_call(
            forward_backward(bit), device, repeats, warmup
        ),
    }
    summary = {name: _summary(times) for name, times in timings.items()}

    def ratio(name: str, baseline: str) -> float:
        return summary[name]["median_ms"] / summary[baseline]["median_ms"]

    bf16_bytes = in_features * out_features * 2
    packed_bytes = packed_nbytes(out_features, in_features)
    return {
        "shape": {
            "tokens": tokens,
            "in_features": in_features,
            "out_features": out_features,
        },
        "latency": summary,
        "ratios": {
            "bitlinear_vs_linear_forward": ratio("bitlinear_forward", "linear_forward"),
            "bitlinear_vs_linear_forward_backward": ratio(
                "bitlinear_forward_backward", "linear_forward_backward"
            ),
            "inference_vs_linear_forward": ratio("inference_forward", "linear_forward"),
            "inference_vs_bitlinear_forward": ratio(
                "inference_forward", "bitlinear_forward"
            ),
        },
        "bytes": {
            "bf16_weight": bf16_bytes,
            "packed_weight": packed_bytes,
            "packed_with_scale": packed_bytes + 4,
            "bf16_over_packed": bf16_bytes / packed_bytes,
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
    shapes: list[tuple[int, int, int]], device: torch.device, repeats: int, warmup: int
) -> dict[str, Any]:
    return {
        "device": str(device),
        "environment": environment(),
        "repeats": repeats,
        "warmup": warmup,
        "shapes": [bench_shape(*shape, device, repeats, warmup) for shape in shapes],
        "sqnr": quantisation_error(),
    }
