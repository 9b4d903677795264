"""A vignette: frames darken towards their corners (a file this fork adds)."""

from __future__ import annotations

import math

import torch


def apply_vignette(frame, strength):
    """`frame` (N, 3, H, W) in [-1, 1], corners darkened by `strength` (0 to 1)."""
    if strength <= 0:
        return frame
    height, width = frame.shape[-2:]
    ys = torch.linspace(-1.0, 1.0, height)[:, None]
    xs = torch.linspace(-1.0, 1.0, width)[None, :]
    radius = torch.sqrt(ys**2 + xs**2) / math.sqrt(2.0)
    mask = 1.0 - strength * radius**2
    return (frame + 1.0) * mask - 1.0
