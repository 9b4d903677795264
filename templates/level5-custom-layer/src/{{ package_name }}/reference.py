"""Frozen, literal transcriptions of the published formulas: the tests' oracle.

Nothing in the package imports this module (a test checks): the layers are written
independently and compared against it. Keep it literal and do not refactor it; if a
formula here changes, it is because the source was misread, and the commit says so.

Sources:
- "The Era of 1-bit LLMs: Training Tips, Code and FAQ" (microsoft/unilm, BitNet):
  activation_quant, weight_quant and BitLinear.forward as printed there.
- BitNet (arXiv 2310.11453), section 2: the binary weight W~ = Sign(W - alpha) with
  alpha = mean(W), and beta = ||W||_1 / (n m).
- Hugging Face transformers, integrations/bitnet.py: the packed layout, described in
  its docstrings and rewritten here from that description (unpack_hf_layout).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def activation_quant(x: Tensor) -> Tensor:
    """Per-token quantization to 8 bits. No grouping is needed for quantization."""
    scale = 127.0 / x.abs().max(dim=-1, keepdim=True).values.clamp_(min=1e-5)
    y = (x * scale).round().clamp_(-128, 127) / scale
    return y


def weight_quant(w: Tensor) -> Tensor:
    """Per-tensor quantization to 1.58 bits. No grouping is needed for quantization."""
    scale = 1.0 / w.abs().mean().clamp_(min=1e-5)
    u = (w * scale).round().clamp_(-1, 1) / scale
    return u


def simple_rms_norm(x: Tensor, eps: float = 1e-5) -> Tensor:
    """RMSNorm without a gain: x / sqrt(mean(x^2) + eps)."""
    return x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)


class BitLinear(nn.Linear):
    """The training-tips BitLinear: RMSNorm, both quantisers, a detach() STE."""

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight
        x_norm = simple_rms_norm(x)
        x_quant = x_norm + (activation_quant(x_norm) - x_norm).detach()
        w_quant = w + (weight_quant(w) - w).detach()
        y = F.linear(x_quant, w_quant)
        return y


def binary_weight(W: Tensor) -> Tensor:
    """BitNet, section 2: Sign(W - alpha) * beta, Sign(x) = +1 if x > 0 else -1."""
    n, m = W.shape
    alpha = W.sum() / (n * m)
    beta = W.abs().sum() / (n * m)
    W_tilde = torch.where(W - alpha > 0, torch.ones_like(W), -torch.ones_like(W))
    return W_tilde * beta


def integer_inference(x_norm: Tensor, W: Tensor) -> Tensor:
    """The inference form, integers then scales: y = x_q W_q^T / (s_x s_w)."""
    x_scale = 127.0 / x_norm.abs().max(dim=-1, keepdim=True).values.clamp_(min=1e-5)
    x_q = (x_norm * x_scale).round().clamp_(-128, 127)
    w_scale = 1.0 / W.abs().mean().clamp_(min=1e-5)
    w_q = (W * w_scale).round().clamp_(-1, 1)
    y = x_q.double() @ w_q.double().t()
    return y / w_scale.double() / x_scale.double()


def unpack_hf_layout(packed: Tensor, rows: int) -> Tensor:
    """HF layout: byte row i, bits 2j..2j+1, hold weight row i + j*P, as w+1."""
    P = packed.shape[0]
    out = torch.empty((4 * P, *packed.shape[1:]), dtype=torch.int8)
    for i in range(P):
        for j in range(4):
            out[i + j * P] = ((packed[i].int() >> (2 * j)) & 3).to(torch.int8) - 1
    return out[:rows]
