"""A tiny BitNet transformer: full-precision embeddings and head, BitLinear in between.

Decoder-only and causal, LLaMA-shaped as BitNet b1.58 is (RMSNorm, gated feed-forward,
no biases), with learned position embeddings instead of rotary ones to stay short.
The token and position embeddings and the output head stay full precision, as in the
papers and the released models (Hugging Face leaves `lm_head` out of quantisation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .errors import ConfigError
from .layers import ACTIVATIONS, BitAttention, BitFeedForward, RMSNorm


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 256
    dim: int = 64
    layers: int = 2
    heads: int = 4
    hidden: int = 128
    max_length: int = 64
    activation: str = "relu2"
    sub_norm: bool = False  # False: RMSNorm inside every BitLinear (training-tips code)
    weight_mode: str = "ternary"
    quantize: bool = True  # False: the same network with full-precision linear maps

    def __post_init__(self) -> None:
        for name in ("vocab_size", "dim", "layers", "heads", "hidden", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"{name}={value!r}: expected a whole number of 1 or more"
                )
        if self.dim % self.heads:
            raise ConfigError(
                f"dim={self.dim} must be a multiple of heads={self.heads}"
            )
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation={self.activation!r}: "
                f"expected one of {', '.join(ACTIVATIONS)}"
            )


class Block(nn.Module):
    """x + attention(x), then + feed_forward(x); pre-norms only with sub_norm=True."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        sub = config.sub_norm
        self.attention_norm = RMSNorm(config.dim) if sub else None
        self.attention = BitAttention(
            config.dim,
            config.heads,
            sub_norm=sub,
            quantize=config.quantize,
            weight_mode=config.weight_mode,
        )
        self.ffn_norm = RMSNorm(config.dim) if sub else None
        self.feed_forward = BitFeedForward(
            config.dim,
            config.hidden,
            activation=config.activation,
            sub_norm=sub,
            quantize=config.quantize,
            weight_mode=config.weight_mode,
        )

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.attention_norm is None else self.attention_norm(x)
        x = x + self.attention(h)
        h = x if self.ffn_norm is None else self.ffn_norm(x)
        return x + self.feed_forward(h)  # type: ignore[no-any-return]


class BitNetTransformer(nn.Module):
    """Token ids [batch, length] -> logits [batch, length, vocab_size]."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.dim)
        self.position_embedding = nn.Embedding(config.max_length, config.dim)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.norm = RMSNorm(config.dim)
        self.head = nn.Linear(config.dim, config.vocab_size, bias=False)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding.weight, std=0.02)

    def forward(self, tokens: Tensor) -> Tensor:
        length = tokens.shape[-1]
        if length > self.config.max_length:
            raise ConfigError(
                f"sequence of {length} tokens: this model takes at most "
                f"max_length={self.config.max_length}"
            )
        positions = torch.arange(length, device=tokens.device)
        x = self.token_embedding(tokens) + self.position_embedding(positions)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))  # type: ignore[no-any-return]
