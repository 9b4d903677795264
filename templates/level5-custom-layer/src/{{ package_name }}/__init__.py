"""BitNet b1.58's BitLinear and the blocks built from it, with the checks that prove
them."""

from .functional import (
    absmax_int8,
    absmean_ternary,
    bitlinear,
    rms_norm,
    sign_binary,
    ste,
)
from .inference import PackedBitLinear, convert_to_inference
from .layers import BitAttention, BitFeedForward, BitLinear, RMSNorm
from .model import BitNetTransformer, ModelConfig
from .packing import pack_ternary, unpack_ternary

__all__ = [
    "BitAttention",
    "BitFeedForward",
    "BitLinear",
    "BitNetTransformer",
    "ModelConfig",
    "PackedBitLinear",
    "RMSNorm",
    "absmax_int8",
    "absmean_ternary",
    "bitlinear",
    "convert_to_inference",
    "pack_ternary",
    "rms_norm",
    "sign_binary",
    "ste",
    "unpack_ternary",
]
