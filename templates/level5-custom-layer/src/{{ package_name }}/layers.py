"""BitNet's layers: BitLinear, RMSNorm, and the feed-forward and attention blocks.

Normalisation placement. The training-tips code normalises inside BitLinear (RMSNorm,
no gain, then quantise): that is the default here, `norm="rms"`. The released
BitNet b1.58 2B4T model instead puts explicit RMSNorm modules with gains in the blocks
(pre-norms, and sub-norms before the attention output and the feed-forward down
projection) and BitLinear does no normalisation: `sub_norm=True` on a block builds that
placement, with `norm="none"` in its BitLinears. Both quantise a normalised input.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import torch
from torch import Tensor, nn

from . import functional as BF
from .errors import ConfigError
from .functional import NORM_EPS, QUANT_EPS, WEIGHT_MODES

NORMS = ("rms", "none")
ACTIVATIONS = ("relu2", "swiglu")


class RMSNorm(nn.Module):
    """RMSNorm with a learned gain: x / sqrt(mean(x^2) + eps) * g."""

    def __init__(
        self,
        dim: int,
        eps: float = NORM_EPS,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        return BF.rms_norm(x, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps:g}"


class BitLinear(nn.Linear):
    """A linear layer with ternary (or binary) weights and 8-bit per-token activations.

    Forward: y = Q_w(W) . Q_x(RMSNorm(x)) (+ bias), with the straight-through
    estimator for both quantisers; the latent weight `self.weight` stays in full
    precision and is what the optimiser updates. `quantize=False` turns both quantisers
    off (RMSNorm + linear), for gradcheck and for a full-precision twin of a model.
    Initialisation and state-dict keys are nn.Linear's, so a BitLinear loads an
    nn.Linear's weights.

    In `eval()` mode, when no gradient reaches the weight (under `torch.no_grad` or
    `torch.inference_mode`, or with the weight frozen), the quantised weight is
    computed once and reused while the weight is the same tensor, at the same version
    (every tracked in-place update advances it: an optimiser step, `copy_`,
    `load_state_dict`), storage, device and dtype, and with the same sum in every row,
    bit for bit. The row sums are what see an edit through `.data` (an EMA, copying
    weights in, clipping), which the version counter misses; an edit through `.data`
    that leaves every row's sum as it was (two elements of a row swapped, a change
    below the sum's rounding) is not seen: call `eval()` again, which drops the cache,
    as `train()` and `load_state_dict` do. It holds one weight-sized tensor beside
    the weight.
    """

    _cached_weight: (
        tuple[weakref.ref[Tensor], tuple[object, ...], Tensor, Tensor] | None
    )

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = False,
        *,
        weight_mode: str = "ternary",
        norm: str = "rms",
        quantize: bool = True,
        norm_eps: float = NORM_EPS,
        quant_eps: float = QUANT_EPS,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if weight_mode not in WEIGHT_MODES:
            raise ConfigError(
                f"weight_mode={weight_mode!r}: "
                f"expected one of {', '.join(WEIGHT_MODES)}"
            )
        if norm not in NORMS:
            raise ConfigError(f"norm={norm!r}: expected one of {', '.join(NORMS)}")
        if in_features < 1:
            # The activations' scale is the largest magnitude of a row, which an
            # empty row has none of.
            raise ConfigError(f"in_features={in_features}: expected 1 or more")
        for name, value in (("norm_eps", norm_eps), ("quant_eps", quant_eps)):
            if not 0 < value < 1:
                raise ConfigError(f"{name}={value}: expected a number between 0 and 1")
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.weight_mode = weight_mode
        self.norm = norm
        self.quantize = quantize
        self.norm_eps = norm_eps
        self.quant_eps = quant_eps
        self._cached_weight = None

    def forward(self, x: Tensor) -> Tensor:
        if self.quantize and self._weight_is_constant():
            if self.norm == "rms":
                x = BF.rms_norm(x, eps=self.norm_eps)
            x = BF.fake_quant_activation(x, self.quant_eps)
            return nn.functional.linear(x, self._quantized_weight(), self.bias)
        return BF.bitlinear(
            x,
            self.weight,
            self.bias,
            weight_mode=self.weight_mode,
            norm=self.norm == "rms",
            quantize=self.quantize,
            norm_eps=self.norm_eps,
            quant_eps=self.quant_eps,
        )

    def _weight_is_constant(self) -> bool:
        """Evaluation with no gradient for the weight, outside a compiled graph (a
        graph captures the quantiser itself, and its guards cannot key a cache)."""
        return not (
            self.training
            or torch.compiler.is_compiling()
            or (torch.is_grad_enabled() and self.weight.requires_grad)
        )

    def _quantized_weight(self) -> Tensor:
        weight = self.weight
        # Edits through `.data` leave the version counter as it was; the row sums see
        # them for one read of the weight, where quantising reads it twice and writes.
        row_sums = weight.detach().sum(dim=-1)
        key = (
            weight._version,
            weight.data_ptr(),
            weight.device,
            weight.dtype,
            self.weight_mode,
            self.quant_eps,
            # A tensor made under inference_mode cannot be used in autograd outside it.
            torch.is_inference_mode_enabled(),
        )
        cached = self._cached_weight
        # The weak reference tells a replaced weight from the one cached, even where
        # the new tensor reuses the old one's memory and starts at the same version.
        if (
            cached is not None
            and cached[0]() is weight
            and cached[1] == key
            and torch.equal(cached[2], row_sums)
        ):
            return cached[3]
        self._cached_weight = None  # free the old one before making the new
        with torch.no_grad():
            quantized = BF.fake_quant_weight(weight, self.weight_mode, self.quant_eps)
        self._cached_weight = (weakref.ref(weight), key, row_sums, quantized)
        return quantized

    def train(self, mode: bool = True) -> BitLinear:
        self._cached_weight = None
        return super().train(mode)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._cached_weight = None
        super()._load_from_state_dict(*args, **kwargs)

    def extra_repr(self) -> str:
        bits = "1.58" if self.weight_mode == "ternary" else "1"
        return (
            f"{super().extra_repr()}, weight_mode={self.weight_mode} ({bits}-bit), "
            f"activations=int8 per token, norm={self.norm}, quantize={self.quantize}, "
            f"norm_eps={self.norm_eps:g}, quant_eps={self.quant_eps:g}"
        )


def _linear(
    in_features: int,
    out_features: int,
    sub_norm: bool,
    quantize: bool,
    weight_mode: str,
) -> BitLinear:
    return BitLinear(
        in_features,
        out_features,
        norm="none" if sub_norm else "rms",
        quantize=quantize,
        weight_mode=weight_mode,
    )


class BitFeedForward(nn.Module):
    """Gated feed-forward: down(act(gate(x)) * up(x)), each projection a BitLinear.

    `activation="relu2"` is the squared-ReLU GLU of BitNet b1.58 2B4T; "swiglu" is
    LLaMA's SiLU GLU, which the b1.58 paper used. With `sub_norm=True` an RMSNorm sits
    before the down projection (2B4T's ffn_sub_norm) and the block expects a
    normalised input (the transformer's pre-norm).
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        *,
        activation: str = "relu2",
        sub_norm: bool = False,
        quantize: bool = True,
        weight_mode: str = "ternary",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation={activation!r}: expected one of {', '.join(ACTIVATIONS)}"
            )
        self.activation = activation
        self.gate = _linear(dim, hidden, sub_norm, quantize, weight_mode)
        self.up = _linear(dim, hidden, sub_norm, quantize, weight_mode)
        self.sub_norm = RMSNorm(hidden) if sub_norm else None
        self.down = _linear(hidden, dim, sub_norm, quantize, weight_mode)

    def forward(self, x: Tensor) -> Tensor:
        gate = self.gate(x)
        if self.activation == "relu2":
            hidden = torch.relu(gate).square() * self.up(x)
        else:
            hidden = nn.functional.silu(gate) * self.up(x)
        if self.sub_norm is not None:
            hidden = self.sub_norm(hidden)
        return self.down(hidden)  # type: ignore[no-any-return]

    def extra_repr(self) -> str:
        return f"activation={self.activation}"


class BitAttention(nn.Module):
    """Multi-head causal self-attention whose four projections are BitLinear layers.

    Scores and softmax stay in full precision, as in BitNet. With `sub_norm=True` an
    RMSNorm sits before the output projection (2B4T's attn_sub_norm).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        sub_norm: bool = False,
        quantize: bool = True,
        weight_mode: str = "ternary",
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"dim={dim} must be a multiple of heads={heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.query = _linear(dim, dim, sub_norm, quantize, weight_mode)
        self.key = _linear(dim, dim, sub_norm, quantize, weight_mode)
        self.value = _linear(dim, dim, sub_norm, quantize, weight_mode)
        self.sub_norm = RMSNorm(dim) if sub_norm else None
        self.out = _linear(dim, dim, sub_norm, quantize, weight_mode)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, dim = x.shape
        shape = (batch, length, self.heads, self.head_dim)
        query = self.query(x).view(shape).transpose(1, 2)
        key = self.key(x).view(shape).transpose(1, 2)
        value = self.value(x).view(shape).transpose(1, 2)
        scores = query @ key.transpose(-2, -1) / math.sqrt(self.head_dim)
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        weights = scores.masked_fill(causal, float("-inf")).softmax(dim=-1)
        attended = (weights @ value).transpose(1, 2).reshape(batch, length, dim)
        if self.sub_norm is not None:
            attended = self.sub_norm(attended)
        return self.out(attended)  # type: ignore[no-any-return]

    def extra_repr(self) -> str:
        return f"heads={self.heads}, head_dim={self.head_dim}, causal=True"
