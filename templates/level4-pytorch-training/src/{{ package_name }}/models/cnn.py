"""A small convolutional network for low-resolution images."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig


class CNN(nn.Module):
    """Stages of conv 3x3 -> batch norm -> ReLU; every stage after the first halves the
    resolution with max pooling (8x8 -> 4x4 for two stages). Global average pooling and
    one linear layer give the class logits.
    """

    def __init__(
        self, config: ModelConfig, input_shape: tuple[int, ...], num_classes: int
    ) -> None:
        super().__init__()
        in_channels = input_shape[0]
        layers: list[nn.Module] = []
        for index, out_channels in enumerate(config.channels):
            if index > 0:
                layers.append(nn.MaxPool2d(2))
            layers += [
                nn.Conv2d(
                    in_channels, out_channels, kernel_size=3, padding=1, bias=False
                ),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(in_channels, num_classes),
        )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(inputs))  # type: ignore[no-any-return]
