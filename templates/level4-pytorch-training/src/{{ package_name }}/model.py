"""The network.

To try another, add a class taking (config, input_shape, num_classes) to MODELS and
select it with `model.name=<name>`; the training code only needs logits of shape
(batch, num_classes).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .errors import ConfigError


class DigitsCNN(nn.Module):
    """A small convolutional network for low-resolution images.

    Each stage is conv 3x3 -> batch norm -> ReLU, and every stage after the first halves
    the resolution with max pooling (8x8 -> 4x4 -> 2x2 for two stages). Global average
    pooling and one linear layer give the class logits.
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

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


MODELS: dict[str, type[nn.Module]] = {
    "digits_cnn": DigitsCNN,
}


def build_model(
    config: ModelConfig, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    try:
        model_class = MODELS[config.name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ConfigError(
            f"model.name={config.name!r}: unknown model (known: {known})"
        ) from None
    return model_class(config, input_shape, num_classes)
