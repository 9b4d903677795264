"""A tiny denoiser: a few convolutions conditioned on a bag of hashed prompt tokens."""

from __future__ import annotations

import zlib

import torch
from torch import nn
from torch.nn import functional as F

VOCABULARY = 256


def tokenize(prompt):
    """Word-level tokens by hashing: no vocabulary file, no download."""
    words = prompt.lower().split() or [""]
    return torch.tensor(
        [zlib.crc32(word.encode("utf-8")) % VOCABULARY for word in words]
    )


class TinyDenoiser(nn.Module):
    def __init__(self, channels, depth, embed_dim):
        super().__init__()
        self.embed = nn.Embedding(VOCABULARY, embed_dim)
        self.condition = nn.Linear(embed_dim, channels)
        self.inp = nn.Conv2d(3, channels, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=1) for _ in range(depth)
        )
        self.out = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, image, tokens):
        condition = self.condition(self.embed(tokens).mean(dim=0))
        hidden = F.silu(self.inp(image) + condition[None, :, None, None])
        for block in self.blocks:
            hidden = hidden + F.silu(block(hidden))
        return image - 0.25 * torch.tanh(self.out(hidden))


def build_model(settings):
    """Random-initialised from the seed, so every run builds the same weights."""
    torch.manual_seed(settings["seed"])
    model = TinyDenoiser(
        settings["model_channels"], settings["model_depth"], settings["embed_dim"]
    )
    return model.eval()
