"""Ternary weights packed 2 bits each, four to a byte, in Hugging Face's layout.

Layout (the `pack_weights`/`unpack_weights` layout of transformers' BitNet
integration): a code w in {-1, 0, 1} is stored as w + 1 in {0, 1, 2}. For a weight of
R rows, the packed tensor has P = ceil(R / 4) rows of uint8; bits 2j..2j+1 of packed
row i hold row i + j*P of the weight (j = 0..3). Rows past R in the last block are
padding, stored as 0 bits and dropped on unpacking. A 4096 x 4096 weight packs into
1024 x 4096 bytes: 4 MiB, one eighth of its 32 MiB in bfloat16.

`pack_base3` is the denser alternative: five ternary values per byte as the base-3
number sum((w_k + 1) * 3**k), k = 0..4 (at most 242), over the flattened weight; 1.6
bits a value against the log2(3) = 1.585 bound, 3.2 MiB for 4096 x 4096. Unpacking it
takes divisions instead of shifts, which is why kernels usually prefer 2 bits.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .errors import Error

VALUES_PER_BYTE = 4
BITS = 2
TRITS_PER_BYTE = 5


class PackingError(Error):
    """A tensor cannot be packed or unpacked as asked; the message says why."""


def packed_rows(rows: int) -> int:
    """Rows of the packed tensor for a weight of `rows` rows: ceil(rows / 4)."""
    return -(-rows // VALUES_PER_BYTE)


def pack_ternary(codes: Tensor) -> Tensor:
    """Pack ternary codes [rows, ...] (-1, 0, 1) into uint8 [ceil(rows / 4), ...]."""
    if codes.dim() < 1:
        raise PackingError(f"cannot pack a tensor of shape {tuple(codes.shape)}")
    shifted = _shifted_codes(codes)
    rows = codes.shape[0]
    block = packed_rows(rows)
    packed = torch.zeros(
        (block, *codes.shape[1:]), dtype=torch.uint8, device=codes.device
    )
    for j in range(VALUES_PER_BYTE):
        part = shifted[j * block : (j + 1) * block].to(torch.uint8)
        packed[: part.shape[0]] |= part << (BITS * j)
    return packed


def unpack_ternary(
    packed: Tensor, rows: int, dtype: torch.dtype = torch.int8
) -> Tensor:
    """The ternary codes [rows, ...] that `pack_ternary` packed into `packed`."""
    if packed.dtype != torch.uint8:
        raise PackingError(f"packed weights must be uint8, not {packed.dtype}")
    if packed.dim() < 1 or packed_rows(rows) != packed.shape[0]:
        raise PackingError(
            f"{rows} rows pack into {packed_rows(rows)} rows of bytes, "
            f"but the packed tensor has shape {tuple(packed.shape)}"
        )
    parts = [(packed >> (BITS * j)) & 0b11 for j in range(VALUES_PER_BYTE)]
    return (torch.cat(parts, dim=0)[:rows].to(torch.int16) - 1).to(dtype)


def packed_nbytes(rows: int, columns: int) -> int:
    """Bytes of the packed weight of a rows x columns layer (its scale not included)."""
    return packed_rows(rows) * columns


def _shifted_codes(codes: Tensor) -> Tensor:
    """codes + 1 as int16, after checking that every code is -1, 0 or 1."""
    if codes.numel() == 0:
        raise PackingError(f"cannot pack a tensor of shape {tuple(codes.shape)}")
    if codes.is_floating_point() and not torch.equal(codes, codes.round()):
        raise PackingError("ternary codes must be whole numbers -1, 0 or 1")
    shifted = codes.to(torch.int16) + 1
    if shifted.min() < 0 or shifted.max() > 2:
        raise PackingError("ternary codes must be -1, 0 or 1")
    return shifted


def pack_base3(codes: Tensor) -> Tensor:
    """Pack ternary codes of any shape into uint8 [ceil(numel / 5)], five per byte."""
    shifted = _shifted_codes(codes).flatten()
    padding = -shifted.numel() % TRITS_PER_BYTE
    groups = torch.cat([shifted, shifted.new_zeros(padding)]).view(-1, TRITS_PER_BYTE)
    powers = torch.tensor([3**k for k in range(TRITS_PER_BYTE)], dtype=torch.int16)
    return (groups * powers.to(groups.device)).sum(dim=1).to(torch.uint8)


def unpack_base3(
    packed: Tensor, shape: tuple[int, ...], dtype: torch.dtype = torch.int8
) -> Tensor:
    """The ternary codes of `shape` that `pack_base3` packed into `packed`."""
    if packed.dtype != torch.uint8 or packed.dim() != 1:
        raise PackingError(
            "base-3 packed weights are 1-d uint8, "
            f"not {packed.dtype} of shape {tuple(packed.shape)}"
        )
    count = 1
    for size in shape:
        count *= size
    if -(-count // TRITS_PER_BYTE) != packed.numel():
        raise PackingError(
            f"shape {shape} packs into {-(-count // TRITS_PER_BYTE)} bytes, "
            f"not {packed.numel()}"
        )
    values = packed.to(torch.int16)
    digits = [(values // 3**k) % 3 for k in range(TRITS_PER_BYTE)]
    flat = torch.stack(digits, dim=1).flatten()[:count]
    return (flat - 1).to(dtype).view(shape)
