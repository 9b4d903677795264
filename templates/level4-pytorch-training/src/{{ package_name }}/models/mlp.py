"""A multilayer perceptron: the image flattened, then fully connected layers."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ModelConfig


class MLP(nn.Module):
    """Flatten -> [linear -> layer norm -> GELU -> dropout] per size in `model.hidden`
    -> linear to the class logits. It sees pixels, not neighbourhoods: the baseline
    that the convolutional and attention models improve on.
    """

    def __init__(
        self, config: ModelConfig, input_shape: tuple[int, ...], num_classes: int
    ) -> None:
        super().__init__()
        width = math.prod(input_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        for hidden in config.hidden:
            layers += [
                nn.Linear(width, hidden),
                nn.LayerNorm(hidden),
                nn.GELU(),
                nn.Dropout(config.dropout),
            ]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.layers(inputs)  # type: ignore[no-any-return]
