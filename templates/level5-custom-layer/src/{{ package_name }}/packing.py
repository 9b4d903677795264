"""Ternary weights packed 2 bits each, four to a byte, in Hugging Face's layout.

Layout (the `pack_weights`/`unpack_weights` layout of transformers' BitNet
integration): a code w in {-1, 0, 1} is stored as w + 1 in {0, 1, 2}. For a weight of
R rows, the packed tensor has P = ceil(R / 4) rows of uint8; bits 2j..2j+1 of packed
row i hold row i + j*P of the weight (j = 0..3). Rows past R in the last block are
padding, stored as 0 bits and dropped on unpacking. A 4096 x 4096 weight packs into
1024 x 4096 bytes: 4 MiB, one eighth of its 32 MiB in bfloat16.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .errors import Error

VALUES_PER_BYTE = 4
BITS = 2


class PackingError(Error):
    """A tensor cannot be packed or unpacked as asked; the message says why."""


def packed_rows(rows: int) -> int:
    """Rows of the packed tensor for a weight of `rows` rows: ceil(rows / 4)."""
    return -(-rows // VALUES_PER_BYTE)


def pack_ternary(codes: Tensor) -> Tensor:
    """Pack ternary codes [rows, ...] (-1, 0, 1) into uint8 [ceil(rows / 4), ...]."""
    if codes.dim() < 1 or codes.shape[0] == 0:
        raise PackingError(f"cannot pack a tensor of shape {tuple(codes.shape)}")
    if codes.is_floating_point() and not torch.equal(codes, codes.round()):
        raise PackingError("ternary codes must be whole numbers -1, 0 or 1")
    shifted = codes.to(torch.int16) + 1
    if shifted.min() < 0 or shifted.max() > 2:
        raise PackingError("ternary codes must be -1, 0 or 1")
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
