"""BitNet's quantisers, normalisation and straight-through estimator, as functions.

Every quantiser returns integer codes `q` (in the input's floating-point dtype, so they
flow through autograd and matmuls) and a scale `s` (float32 or float64); the value the
layer computes with is `q / s`. Half-precision inputs are quantised in float32: in
bfloat16, 127 / max|x| alone is off by up to 0.4%, enough to map a row's maximum to
126. Sources (docs/paper_map.md lists each function against its equation):

- BitNet b1.58 (arXiv 2402.17764), eq. 1-3: ternary weights by absmean, per tensor.
- BitNet (arXiv 2310.11453), section 2 (BitLinear): absmax activations and, in the
  original BitNet, binary weights: the sign of the centred weights times mean |W|.
- "The Era of 1-bit LLMs: Training Tips, Code and FAQ" (microsoft/unilm): the exact
  constants, 127 and clamp [-128, 127], the 1e-5 clamps, and the RMSNorm before
  quantising the input.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .errors import ConfigError

QUANT_EPS = 1e-5  # the training-tips code clamps mean|W| and max|x| at 1e-5
NORM_EPS = 1e-5  # RMSNorm's epsilon in the training-tips code and the released 2B model
INT8_MAX = 127
INT8_MIN = -128

log = logging.getLogger(__name__)


def absmean_ternary(weight: Tensor, eps: float = QUANT_EPS) -> tuple[Tensor, Tensor]:
    """Ternary codes and scale of a weight tensor (b1.58, eq. 1-3).

    scale = 1 / max(mean|W|, eps);  codes = clamp(round(W * scale), -1, 1).
    The weight the layer uses is codes / scale. `scale` is a 0-d tensor. Neither
    carries autograd history: the straight-through estimator supplies the gradient.
    """
    return _ternary(weight, eps, dequantize=False)


# Elements per block of the element-wise passes over a weight on a CPU: 2 MiB of
# float32, so a block's input and output stay in cache from one pass to the next.
_BLOCK = 1 << 19


def _ternary(weight: Tensor, eps: float, *, dequantize: bool) -> tuple[Tensor, Tensor]:
    """absmean_ternary's codes, or with `dequantize` the codes / scale the layer
    computes with, in as few passes over the weight as eager PyTorch allows.

    One weight-sized buffer holds |W| and then the result, filled in place: at
    2048 x 2048 a fresh 16 MiB tensor costs more on a CPU than the arithmetic in it.
    On a CPU, in eager mode, round-clip is a comparison: round(w * scale) is 0
    exactly where |w| is at most the dead zone's edge (0.5 rounds to even, to 0) and
    w's sign elsewhere, so hardshrink at that edge and then sign give the same codes
    bit for bit; and codes / scale equals codes * (1 / scale) bit for bit, the codes
    being -1, 0 or 1. Elsewhere the edge would cost a device sync, and a compiled
    graph fuses the passes of the plain form anyway.
    """
    w = _at_least_float32(weight.detach())
    out = w.abs()  # in w's layout, which sets the order the mean adds in
    scale = 1.0 / out.mean().clamp(min=eps)
    edge = None
    if w.device.type == "cpu" and not torch.compiler.is_compiling():
        edge = _dead_zone_edge(scale)
    if edge is None:
        torch.mul(w, scale, out=out).round_().clamp_(-1, 1)
        if dequantize:
            out.div_(scale)
    else:
        inverse = 1.0 / scale
        blocks: Iterable[tuple[Tensor, Tensor]] = [(w, out)]
        if w.is_contiguous() and out.is_contiguous():
            sources = torch.split(w.view(-1), _BLOCK)
            blocks = zip(sources, torch.split(out.view(-1), _BLOCK), strict=True)
        for source, target in blocks:
            torch.hardshrink(source, edge, out=target).sign_()
            if dequantize:
                target.mul_(inverse)
    return out.to(weight.dtype), scale


def _dead_zone_edge(scale: Tensor) -> float | None:
    """The largest t of scale's dtype with fl(t * scale) <= 0.5, or None where the
    scale is not a finite positive number (NaN or infinite weights).

    Rounded multiplication by a positive number is monotonic, so |w| > t exactly
    where fl(|w| * scale) > 0.5. 0.5 / scale lands within an ulp or two of t; the
    loop steps to it.
    """
    kind = np.float64 if scale.dtype == torch.float64 else np.float32
    factor = kind(scale.item())
    half = kind(0.5)
    if not 0 < factor < np.inf:
        return None
    with np.errstate(over="ignore"):  # a tiny scale overflows the edge: None below
        edge = half / factor
    for _ in range(8):
        if not np.isfinite(edge):
            return None
        if edge * factor > half:
            edge = np.nextafter(edge, kind(0))
        elif np.nextafter(edge, kind(np.inf)) * factor <= half:
            edge = np.nextafter(edge, kind(np.inf))
        else:
            return float(edge)
    return None


def absmax_int8(x: Tensor, eps: float = QUANT_EPS) -> tuple[Tensor, Tensor]:
    """8-bit codes and per-token scales of activations (BitNet absmax; FAQ code).

    scale = 127 / max(max|x|, eps) over the last dimension (one scale per token);
    codes = clamp(round(x * scale), -128, 127). The value used is codes / scale, and
    each token's largest |x| maps to exactly 127.
    """
    compute = _at_least_float32(x)
    scale = INT8_MAX / compute.abs().amax(dim=-1, keepdim=True).clamp(min=eps)
    codes = torch.mul(compute, scale).round_().clamp_(INT8_MIN, INT8_MAX)
    return codes.to(x.dtype), scale


def sign_binary(weight: Tensor, eps: float = QUANT_EPS) -> tuple[Tensor, Tensor]:
    """Binary codes and scale of the original BitNet (arXiv 2310.11453, section 2).

    codes = Sign(W - mean(W)), with Sign(0) = -1 as in the paper;
    scale = 1 / max(mean|W|, eps), so codes / scale = Sign(W - alpha) * beta.
    """
    w = _at_least_float32(weight)
    codes = torch.where(w - w.mean() > 0, 1.0, -1.0).to(weight.dtype)
    scale = 1.0 / w.abs().mean().clamp(min=eps)
    return codes, scale


def rms_norm(x: Tensor, weight: Tensor | None = None, eps: float = NORM_EPS) -> Tensor:
    """RMSNorm (Zhang and Sennrich, 2019): x / sqrt(mean(x^2) + eps), times a gain.

    Computed in at least float32, returned in the input's dtype.
    """
    compute = _at_least_float32(x)
    normed = compute / torch.sqrt(compute.pow(2).mean(dim=-1, keepdim=True) + eps)
    normed = normed.to(x.dtype)
    return normed if weight is None else normed * weight


def _at_least_float32(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class StraightThrough(torch.autograd.Function):
    """Forward returns `quantized`; backward hands the gradient to `x` unchanged.

    The straight-through estimator (Bengio et al., 2013) as BitNet trains with it. The
    gradient is exactly the identity, also where the clamp saturated: a subgradient of
    zero there would silently stop those weights training (pytorch/ao#4806). The
    output shares `quantized`'s memory (autograd makes it a view), so the estimator
    costs no copy of a weight-sized tensor, unlike `x + (q - x).detach()`, which makes
    two.
    """

    @staticmethod
    def forward(x: Tensor, quantized: Tensor) -> Tensor:
        return quantized

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        pass

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


def ste(x: Tensor, quantized: Tensor) -> Tensor:
    """`quantized` in the forward pass; the identity's gradient to `x` backward."""
    apply = StraightThrough.apply
    result: Tensor = apply(x, quantized.detach())  # type: ignore[no-untyped-call]
    return result


def fake_quant_weight(
    weight: Tensor,
    mode: str = "ternary",
    eps: float = QUANT_EPS,
    *,
    compiled: bool | None = None,
) -> Tensor:
    """The weight BitLinear computes with, codes / scale, with a straight-through grad.

    `mode` is "ternary" (b1.58) or "binary" (the original BitNet). `compiled` chooses
    the ternary quantiser's kernel: None quantises a weight of COMPILE_MIN_ELEMENTS or
    more with a kernel `torch.compile` fuses, and smaller ones eagerly; True compiles
    at any size; False is always eager. Either way a failed compilation falls back to
    the eager kernel. Eager is the published arithmetic bit for bit. Compiled, the mean
    of |W| adds in another order: the scale can differ in its last bit, and with it
    the codes of weights that sit within an ulp of the dead zone's edge.
    """
    with torch.no_grad():
        fused = None
        if mode == "ternary" and _use_compiled(weight, compiled):
            fused = _compiled_ternary(weight.detach(), eps)
        if fused is not None:
            quantized = fused
        elif mode == "ternary":
            quantized, _ = _ternary(weight, eps, dequantize=True)
        else:
            codes, scale = weight_codes(weight, mode, eps)
            quantized = _divide(codes, scale)
    return _straight_through_if_needed(weight, quantized)


# From this many elements on (one cache block) the eager passes over a weight each go
# to memory, and a fused kernel, reading the weight twice instead of four times, is
# about twice as fast; below it the eager kernel is as fast and nothing is compiled.
COMPILE_MIN_ELEMENTS = _BLOCK

_compiled_kernel: Callable[[Tensor, float], Tensor] | None = None
_compile_failed_on: set[str] = set()  # device types where compiling failed once


def _use_compiled(weight: Tensor, compiled: bool | None) -> bool:
    if compiled is False or weight.device.type in _compile_failed_on:
        return False
    # Inside a graph being compiled, traced or exported the graph fuses the plain
    # form itself, and a compiled call would nest.
    tracing = torch.jit.is_tracing()  # type: ignore[attr-defined,no-untyped-call]
    if torch.compiler.is_compiling() or tracing:
        return False
    return compiled is True or weight.numel() >= COMPILE_MIN_ELEMENTS


def _plain_ternary(weight: Tensor, eps: float) -> Tensor:
    """b1.58's weight quantiser as written in the paper, codes / scale: the form a
    compiler fuses into one reduction and one element-wise pass."""
    w = _at_least_float32(weight)
    scale = 1.0 / w.abs().mean().clamp(min=eps)
    return ((w * scale).round().clamp(-1, 1) / scale).to(weight.dtype)


def _compiled_ternary(weight: Tensor, eps: float) -> Tensor | None:
    """`_plain_ternary` compiled, or None where it cannot be compiled here (no C++
    compiler, no Triton, an unsupported device): the caller then quantises eagerly."""
    global _compiled_kernel
    if _compiled_kernel is None:
        _compiled_kernel = torch.compile(_plain_ternary)
    try:
        return _compiled_kernel(weight, eps)
    except Exception as error:  # whatever the compiler raises, eager still works
        _compile_failed_on.add(weight.device.type)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        log.warning(
            "torch.compile cannot build the weight quantiser on %s (%s: %s); "
            "quantising eagerly",
            weight.device.type,
            type(error).__name__,
            reason[:200],
        )
        return None


def fake_quant_activation(x: Tensor, eps: float = QUANT_EPS) -> Tensor:
    """The activation BitLinear computes with: int8 codes / scale per token, STE."""
    with torch.no_grad():
        codes, scale = absmax_int8(x, eps)
        quantized = _divide(codes, scale)
    return _straight_through_if_needed(x, quantized)


def _straight_through_if_needed(x: Tensor, quantized: Tensor) -> Tensor:
    # With no gradient to pass the estimator changes nothing, and skipping it saves a
    # Python call per quantiser: at one token, eval time is mostly such overheads.
    if torch.is_grad_enabled() and x.requires_grad:
        return ste(x, quantized)
    return quantized


def _divide(codes: Tensor, scale: Tensor) -> Tensor:
    """codes / scale in codes' dtype; in place where the dtypes agree (float32 and
    float64), since `codes` is always a fresh tensor of the quantiser's."""
    if codes.dtype == scale.dtype:
        return codes.div_(scale)
    return (codes / scale).to(codes.dtype)


WEIGHT_MODES = ("ternary", "binary")


def weight_codes(
    weight: Tensor, mode: str, eps: float = QUANT_EPS
) -> tuple[Tensor, Tensor]:
    """Codes and scale of `weight` in a weight mode ("ternary" or "binary")."""
    if mode == "ternary":
        return absmean_ternary(weight, eps)
    if mode == "binary":
        return sign_binary(weight, eps)
    raise ConfigError(
        f"weight_mode={mode!r}: expected one of {', '.join(WEIGHT_MODES)}"
    )


def bitlinear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    weight_mode: str = "ternary",
    norm: bool = True,
    quantize: bool = True,
    norm_eps: float = NORM_EPS,
    quant_eps: float = QUANT_EPS,
    compiled: bool | None = None,
) -> Tensor:
    """BitLinear's forward pass: y = Q_w(W) . Q_x(RMSNorm(x)) (+ bias).

    With `quantize=False` it is RMSNorm followed by a plain linear map, which is smooth
    and what gradcheck can verify; with `norm=False` the caller normalises (sub-norm
    placement, as in the released BitNet b1.58 2B4T model). `compiled` chooses the
    weight quantiser's kernel, as in `fake_quant_weight`.
    """
    if norm:
        x = rms_norm(x, eps=norm_eps)
    if quantize:
        x = fake_quant_activation(x, quant_eps)
        weight = fake_quant_weight(weight, weight_mode, quant_eps, compiled=compiled)
    return torch.nn.functional.linear(x, weight, bias)
