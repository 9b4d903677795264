"""A small Vision Transformer (Dosovitskiy et al., 2021) for low-resolution images.

The image is cut into square patches, each patch becomes a vector (a token), a learned
class token and position embeddings are added, and Transformer encoder blocks let
every token attend to every other. The class token's final vector gives the logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError


class SelfAttention(nn.Module):
    """Multi-head self-attention: each head mixes tokens by softmax(QK^T/sqrt(d)) V."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, length, dim = tokens.shape
        # (batch, length, 3 * dim) -> three of (batch, heads, length, dim / heads)
        qkv = self.qkv(tokens).view(batch, length, 3, self.heads, dim // self.heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)
        mixed = F.scaled_dot_product_attention(
            query, key, value, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(mixed.transpose(1, 2).reshape(batch, length, dim))  # type: ignore[no-any-return]


class Block(nn.Module):
    """A pre-norm Transformer encoder block: x + attention(norm(x)), then
    x + MLP(norm(x)), the MLP four times as wide as the model."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, dropout)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self.attention(self.attention_norm(tokens))
        return tokens + self.mlp(self.mlp_norm(tokens))  # type: ignore[no-any-return]


class ViT(nn.Module):
    def __init__(
        self, config: ModelConfig, input_shape: tuple[int, ...], num_classes: int
    ) -> None:
        super().__init__()
        channels, height, width = input_shape
        patch = config.patch_size
        if height % patch or width % patch:
            raise ConfigError(
                f"model.patch_size: must divide the image size {height}x{width},"
                f" got {patch}"
            )
        # A convolution with stride = kernel = patch is a linear map of each patch.
        self.patches = nn.Conv2d(channels, config.dim, kernel_size=patch, stride=patch)
        count = (height // patch) * (width // patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.positions = nn.Parameter(torch.randn(1, count + 1, config.dim) * 0.02)
        self.blocks = nn.Sequential(
            *(
                Block(config.dim, config.heads, config.dropout)
                for _ in range(config.depth)
            )
        )
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, num_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        tokens = self.patches(inputs).flatten(2).transpose(1, 2)  # (batch, count, dim)
        class_token = self.class_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([class_token, tokens], dim=1) + self.positions
        tokens = self.norm(self.blocks(tokens))
        return self.head(tokens[:, 0])  # type: ignore[no-any-return]
