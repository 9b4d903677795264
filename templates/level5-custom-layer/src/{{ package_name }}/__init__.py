"""BitNet b1.58's BitLinear and the blocks built from it, with the checks that prove
them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Each public name is imported from its module on first use: the command line imports
# this package before anything else, and must set its Ctrl-C handling before
# torch loads (a second or more).
_MODULE_OF = {
    "absmax_int8": ".functional",
    "absmean_ternary": ".functional",
    "bitlinear": ".functional",
    "rms_norm": ".functional",
    "sign_binary": ".functional",
    "ste": ".functional",
    "PackedBitLinear": ".inference",
    "convert_to_inference": ".inference",
    "BitAttention": ".layers",
    "BitFeedForward": ".layers",
    "BitLinear": ".layers",
    "RMSNorm": ".layers",
    "BitNetTransformer": ".model",
    "ModelConfig": ".model",
    "pack_ternary": ".packing",
    "unpack_ternary": ".packing",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
