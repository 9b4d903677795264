"""A small U-Net (Ronneberger et al., 2015) for segmentation.

The encoder halves the resolution at each stage while widening the features; the
decoder doubles it back, and at each resolution concatenates the encoder's features of
that size (the skip connections), so the output keeps fine detail. A 1x1 convolution
gives one logit per class for every pixel.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """The U-Net's unit: (conv 3x3 -> batch norm -> ReLU) twice."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """`model.channels` gives the width of each stage, e.g. [16, 32, 64]: three
    resolutions, so the image sides must be multiples of 4."""

    def __init__(
        self, config: ModelConfig, input_shape: tuple[int, ...], num_classes: int
    ) -> None:
        super().__init__()
        widths = config.channels
        scale = 2 ** (len(widths) - 1)
        if input_shape[1] % scale or input_shape[2] % scale:
            raise ConfigError(
                f"model.channels: {len(widths)} stages need image sides that are "
                f"multiples of {scale}, not {input_shape[1]}x{input_shape[2]}, "
                f"got {widths}"
            )
        self.down = nn.ModuleList()
        in_channels = input_shape[0]
        for width in widths:
            self.down.append(double_conv(in_channels, width))
            in_channels = width
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.ModuleList()
        self.up = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.upsample.append(nn.ConvTranspose2d(in_channels, width, 2, stride=2))
            self.up.append(double_conv(2 * width, width))
            in_channels = width
        self.dropout = nn.Dropout2d(config.dropout)
        self.head = nn.Conv2d(in_channels, num_classes, kernel_size=1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        skips = []
        features = inputs
        for index, stage in enumerate(self.down):
            if index > 0:
                features = self.pool(features)
            features = stage(features)
            skips.append(features)
        skips.pop()  # the deepest stage feeds the decoder directly
        for upsample, stage in zip(self.upsample, self.up, strict=True):
            features = upsample(features)
            features = stage(torch.cat([features, skips.pop()], dim=1))
        return self.head(self.dropout(features))  # type: ignore[no-any-return]
