"""The integer inference path: int8 activations times packed ternary weights.

y = (x_codes @ w_codes^T) / (s_x * s_w): the product of the two integer tensors is
summed exactly, and only then divided by both scales (the training-tips code's
inference form, and Hugging Face's `y / (input_scale * weight_scale)`). Weights are
stored packed, 2 bits each (packing.py), under transformers' keys and shapes, so a
`PackedBitLinear`'s state dict loads into transformers' `BitLinear` and back.

Two kernels give the same exact integer sums:

- "int8": `torch._int_mm`, int8 x int8 accumulated in int32;
- "float32": the codes held as float32 and multiplied by PyTorch's float matmul. Every
  product is a whole number of at most 128 in size and every partial sum stays under
  2**24, so float32 holds each one exactly, in any summation order and also when
  PyTorch multiplies in bfloat16 or TF32 (both hold -128..127 exactly) with float32
  accumulation.

Which is faster depends on the device and the shape (on many CPUs float32 wins, on
CUDA int8 does for large batches), so `kernel="auto"` times both on the first call of
each shape and keeps the faster. The unpacked codes are cached beside the packed
bytes, so unpacking happens once, not on every call.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import torch
from torch import Tensor, nn

from . import functional as BF
from .errors import ConfigError
from .layers import BitLinear, RMSNorm
from .packing import pack_ternary, packed_rows, unpack_ternary

# float32 holds every integer up to 2**24 exactly: the float kernel is exact while
# 128 * in_features stays under that, i.e. up to 131072 input features.
EXACT_FLOAT_FEATURES = 2**24 // 128
KERNELS = ("auto", "int8", "float32")
_TIMING_CALLS = 3

# (device, rows rounded up to a power of two, in_features, out_features) -> kernel.
_chosen_kernels: dict[tuple[str, int, int, int], str] = {}


def kernels_for(
    device: torch.device, rows: int, features: int, outputs: int
) -> list[str]:
    """The kernels that can multiply codes of this shape on `device`, exactly."""
    usable = []
    if device.type == "cpu" or (
        device.type == "cuda" and rows > 16 and features % 8 == 0 and outputs % 8 == 0
    ):
        usable.append("int8")
    if features <= EXACT_FLOAT_FEATURES:
        usable.append("float32")
    if not usable:
        raise ConfigError(
            f"{features} input features: no exact kernel on {device.type} "
            f"(the float32 one takes at most {EXACT_FLOAT_FEATURES})"
        )
    return usable


def code_matmul(x_codes: Tensor, w_codes: Tensor) -> Tensor:
    """Codes [rows, k] times codes [n, k]^T: int8 operands with `_int_mm` (int32
    result), float32 operands with a float matmul (float32 result, whole numbers)."""
    if x_codes.dtype == torch.int8:
        return torch._int_mm(x_codes, w_codes.t())
    return x_codes @ w_codes.t()


def integer_matmul(x_codes: Tensor, w_codes: Tensor, kernel: str = "int8") -> Tensor:
    """int8 [..., k] times int8 [n, k]^T -> int32 [..., n], exactly, by `kernel`."""
    if x_codes.dtype != torch.int8 or w_codes.dtype != torch.int8:
        raise ConfigError(
            f"integer_matmul takes int8 codes, not {x_codes.dtype}, {w_codes.dtype}"
        )
    features = x_codes.shape[-1]
    flat = x_codes.reshape(-1, features)
    outputs = w_codes.shape[0]
    if kernel not in kernels_for(x_codes.device, flat.shape[0], features, outputs):
        raise ConfigError(
            f"kernel={kernel!r} cannot multiply {tuple(flat.shape)} by "
            f"{tuple(w_codes.shape)} exactly on {x_codes.device.type}"
        )
    if kernel == "int8":
        product = code_matmul(flat, w_codes)
    else:
        product = code_matmul(flat.float(), w_codes.float()).to(torch.int32)
    return product.reshape(*x_codes.shape[:-1], outputs)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PackedBitLinear(nn.Module):
    """A trained ternary BitLinear for inference: packed 2-bit weights, exact sums.

    State dict, as transformers' `BitLinear` (integrations/bitnet.py) has it: `weight`
    (uint8 [ceil(out/4), in], four rows to a byte), `weight_scale` (float32 [1], the
    s_w that the sums are divided by), `bias` if the layer has one, and with
    `norm="rms"` the gain of its RMSNorm as `rms_norm.weight` (all ones from a
    `BitLinear`, whose norm has no gain; transformers' `use_rms_norm=True`). A
    checkpoint moves between the two when `out_features` is a multiple of 4, as it is
    in every released model. Build one with `PackedBitLinear.from_bitlinear(layer)`.

    `kernel` is "auto" (timed on the first call of each shape), "int8" or "float32";
    all give the same sums. `cache_codes=False` unpacks on every call instead of
    keeping the codes (float32 codes take twice the bytes of a bfloat16 weight, int8
    codes half; the packed bytes an eighth).
    """

    weight: Tensor
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
        kernel: str = "auto",
        cache_codes: bool = True,
    ) -> None:
        super().__init__()
        if kernel not in KERNELS:
            raise ConfigError(
                f"kernel={kernel!r}: expected one of {', '.join(KERNELS)}"
            )
        self.in_features = in_features
        self.out_features = out_features
        self.norm = norm
        self.norm_eps = norm_eps
        self.quant_eps = quant_eps
        self.kernel = kernel
        self.cache_codes = cache_codes
        self.rms_norm = RMSNorm(in_features, norm_eps) if norm == "rms" else None
        if self.rms_norm is not None:
            self.rms_norm.weight.requires_grad_(False)
        self.register_buffer(
            "weight",
            torch.zeros(packed_rows(out_features), in_features, dtype=torch.uint8),
        )
        self.register_buffer("weight_scale", torch.ones(1, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)
        # kernel -> (key, the packed bytes it was unpacked from, the codes)
        self._codes: dict[
            str, tuple[tuple[object, ...], weakref.ref[Tensor], Tensor]
        ] = {}

    @classmethod
    def from_bitlinear(cls, layer: BitLinear, kernel: str = "auto") -> PackedBitLinear:
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
            kernel=kernel,
        ).to(layer.weight.device)
        with torch.no_grad():
            codes, scale = BF.absmean_ternary(layer.weight.float(), layer.quant_eps)
            packed.weight.copy_(pack_ternary(codes))
            packed.weight_scale.copy_(scale.reshape(1))
            if layer.bias is not None and packed.bias is not None:
                packed.bias.copy_(layer.bias)
        return packed

    def forward(self, x: Tensor) -> Tensor:
        # The norm's float32 gain promotes a half-precision input: keep the caller's.
        dtype = x.dtype
        if self.rms_norm is not None:
            x = self.rms_norm(x)
        x_codes, x_scale = BF.absmax_int8(x.float(), self.quant_eps)
        flat = x_codes.reshape(-1, self.in_features)
        kernel = self.kernel_for(flat)
        operand = flat.to(torch.int8) if kernel == "int8" else flat
        sums = code_matmul(operand, self._weight_codes(kernel)).float()
        sums = sums.reshape(*x_codes.shape[:-1], self.out_features)
        y = sums / (x_scale * self.weight_scale.float())
        if self.bias is not None:
            y = y + self.bias.float()
        return y.to(dtype)

    def kernel_for(self, flat: Tensor) -> str:
        """The kernel for activation codes `flat` [rows, in_features]: the one asked
        for, or with "auto" the faster on this device for this many rows (timed once
        per power-of-two row count and shape, then remembered)."""
        rows, device = flat.shape[0], flat.device
        usable = kernels_for(device, rows, self.in_features, self.out_features)
        if self.kernel != "auto":
            if self.kernel not in usable:
                raise ConfigError(
                    f"kernel={self.kernel!r} cannot run {rows}x{self.in_features}x"
                    f"{self.out_features} exactly on {device.type}; use one of "
                    f"{', '.join(usable)}"
                )
            return self.kernel
        if len(usable) == 1 or torch.compiler.is_compiling():
            return usable[-1]
        key = (str(device), 1 << (rows - 1).bit_length(), *self._shape)
        if key not in _chosen_kernels:
            _chosen_kernels[key] = min(usable, key=lambda name: self._time(name, flat))
            # Keep the codes of the kernels some row count of this shape uses; timing
            # unpacked the others.
            used = {
                kernel
                for (place, _, *shape), kernel in _chosen_kernels.items()
                if place == key[0] and tuple(shape) == self._shape
            }
            self._codes = {
                name: item for name, item in self._codes.items() if name in used
            }
        return _chosen_kernels[key]

    @property
    def _shape(self) -> tuple[int, int]:
        return self.in_features, self.out_features

    def _time(self, kernel: str, flat: Tensor) -> float:
        """Seconds for one product of `flat` by the weight codes with `kernel`."""
        operand = flat.to(torch.int8) if kernel == "int8" else flat
        codes = self._weight_codes(kernel)
        code_matmul(operand, codes)  # the first call pays for allocations
        _synchronize(flat.device)
        started = time.perf_counter()
        for _ in range(_TIMING_CALLS):
            code_matmul(operand, codes)
        _synchronize(flat.device)
        return time.perf_counter() - started

    def _weight_codes(self, kernel: str) -> Tensor:
        """The weight's codes for `kernel`: int8, or float32 whole numbers; cached
        until the packed bytes change (keyed on their version counter)."""
        key = (self.weight._version, self.weight.data_ptr())
        cached = self._codes.get(kernel)
        if cached is not None and cached[0] == key and cached[1]() is self.weight:
            return cached[2]
        dtype = torch.int8 if kernel == "int8" else torch.float32
        codes = unpack_ternary(self.weight, self.out_features, dtype)
        if self.cache_codes and not torch.compiler.is_compiling():
            self._codes = {
                name: item for name, item in self._codes.items() if item[0] == key
            }
            self._codes[kernel] = (key, weakref.ref(self.weight), codes)
        return codes

    def release_codes(self) -> None:
        """Drop the cached unpacked codes; the next call unpacks again."""
        self._codes = {}

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._codes = {}
        super()._load_from_state_dict(*args, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            "weights=ternary packed 2-bit, activations=int8 per token, "
            f"norm={self.norm}, kernel={self.kernel}"
        )


def convert_to_inference(module: nn.Module, kernel: str = "auto") -> nn.Module:
    """Replace every ternary BitLinear under `module` by a PackedBitLinear, in place."""
    for name, child in module.named_children():
        if (
            isinstance(child, BitLinear)
            and child.quantize
            and child.weight_mode == "ternary"
        ):
            setattr(module, name, PackedBitLinear.from_bitlinear(child, kernel))
        else:
            convert_to_inference(child, kernel)
    return module
