"""The integer inference path: int8 activations times packed ternary weights.

y = (x_codes @ w_codes^T) / (s_x * s_w): the product of the two integer tensors is
accumulated in int32, exactly, and only then divided by both scales (the training-tips
code's inference form, and Hugging Face's `y / (input_scale * weight_scale)`). Weights
are stored packed, 2 bits each (packing.py). This is the reference for the arithmetic,
not a fast kernel: PyTorch has no 2-bit matmul, so the weights are unpacked per call.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import functional as BF
from .errors import ConfigError
from .layers import BitLinear
from .packing import pack_ternary, unpack_ternary

# float32 holds every integer up to 2**24 exactly: the float fallback below is exact
# while 128 * in_features stays under that, i.e. up to 131072 input features.
EXACT_FLOAT_FEATURES = 2**24 // 128


def integer_matmul(x_codes: Tensor, w_codes: Tensor) -> Tensor:
    """int8 [..., k] times int8 [n, k]^T -> int32 [..., n], exactly.

    On the CPU, and on CUDA where the shape suits its int8 kernel (more than 16 rows,
    k and n multiples of 8), `torch._int_mm` accumulates in int32. Elsewhere the codes
    are multiplied in float32, which is exact for k up to 131072, and rounded back.
    """
    if x_codes.dtype != torch.int8 or w_codes.dtype != torch.int8:
        raise ConfigError(
            f"integer_matmul takes int8 codes, not {x_codes.dtype}, {w_codes.dtype}"
        )
    features = x_codes.shape[-1]
    flat = x_codes.reshape(-1, features)
    rows, outputs = flat.shape[0], w_codes.shape[0]
    if x_codes.device.type == "cpu" or (
        x_codes.device.type == "cuda"
        and rows > 16
        and features % 8 == 0
        and outputs % 8 == 0
    ):
        product = torch._int_mm(flat, w_codes.t())
    else:
        if features > EXACT_FLOAT_FEATURES:
            raise ConfigError(
                f"{features} input features: the exact float32 path takes at most "
                f"{EXACT_FLOAT_FEATURES} on {x_codes.device.type}"
            )
        product = (flat.float() @ w_codes.float().t()).round().to(torch.int32)
    return product.reshape(*x_codes.shape[:-1], outputs)


class PackedBitLinear(nn.Module):
    """A trained ternary BitLinear for inference: packed 2-bit weights, integer matmul.

    Buffers: `packed_weight` (uint8 [ceil(out/4), in]), `weight_scale` (0-d float32,
    the s_w of the codes) and `bias` if the layer had one. Build it with
    `PackedBitLinear.from_bitlinear(layer)`.
    """

    packed_weight: Tensor
    weight_scale: Tensor
    bias: Tensor | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        norm: str = "rms",
        norm_eps: float = BF.NORM_EPS,
        quant_eps: float = BF.QUANT_EPS,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.norm = norm
        self.norm_eps = norm_eps
        self.quant_eps = quant_eps
        rows = -(-out_features // 4)
        self.register_buffer(
            "packed_weight", torch.zeros(rows, in_features, dtype=torch.uint8)
        )
        self.register_buffer("weight_scale", torch.ones((), dtype=torch.float32))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)

    @classmethod
    def from_bitlinear(cls, layer: BitLinear) -> PackedBitLinear:
        if layer.weight_mode != "ternary":
            raise ConfigError(
                f"weight_mode={layer.weight_mode}: only ternary layers pack into 2 bits"
            )
        packed = cls(
            layer.in_features,
            layer.out_features,
            norm=layer.norm,
            norm_eps=layer.norm_eps,
            quant_eps=layer.quant_eps,
            bias=layer.bias is not None,
        ).to(layer.weight.device)
        with torch.no_grad():
            codes, scale = BF.absmean_ternary(layer.weight.float(), layer.quant_eps)
            packed.packed_weight.copy_(pack_ternary(codes))
            packed.weight_scale.copy_(scale)
            if layer.bias is not None and packed.bias is not None:
                packed.bias.copy_(layer.bias)
        return packed

    def forward(self, x: Tensor) -> Tensor:
        if self.norm == "rms":
            x = BF.rms_norm(x, eps=self.norm_eps)
        x_codes, x_scale = BF.absmax_int8(x.float(), self.quant_eps)
        w_codes = unpack_ternary(self.packed_weight, self.out_features)
        accumulated = integer_matmul(x_codes.to(torch.int8), w_codes)
        y = accumulated.float() / (x_scale * self.weight_scale.float())
        if self.bias is not None:
            y = y + self.bias.float()
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            "weights=ternary packed 2-bit, activations=int8 per token, "
            f"norm={self.norm}"
        )


def convert_to_inference(module: nn.Module) -> nn.Module:
    """Replace every ternary BitLinear under `module` by a PackedBitLinear, in place."""
    for name, child in module.named_children():
        if (
            isinstance(child, BitLinear)
            and child.quantize
            and child.weight_mode == "ternary"
        ):
            setattr(module, name, PackedBitLinear.from_bitlinear(child))
        else:
            convert_to_inference(child)
    return module
