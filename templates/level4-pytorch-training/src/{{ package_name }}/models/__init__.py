"""The networks, one small module each, built from blocks you can read:

- cnn.py   convolution stages (classification)
- mlp.py   fully connected layers (classification)
- vit.py   a small Vision Transformer: patches, self-attention blocks (classification)
- unet.py  a U-Net: an encoder, a decoder and skip connections (segmentation)

To try another, add a class taking (config, input_shape, num_classes) to MODELS and
select it with `model.name=<name>`. Training needs logits of shape (batch, classes)
for classification, (batch, classes, height, width) for segmentation.
"""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from .cnn import CNN
from .mlp import MLP
from .unet import UNet
from .vit import ViT

MODELS: dict[str, type[nn.Module]] = {
    "cnn": CNN,
    "mlp": MLP,
    "vit": ViT,
    "unet": UNet,
}
SEGMENTATION_MODELS = ("unet",)


def build_model(
    config: ModelConfig,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    default: str = "cnn",
) -> nn.Module:
    """The model `config.name` names; `auto` takes `default`, the dataset's own."""
    name = default if config.name == "auto" else config.name
    try:
        model_class = MODELS[name]
    except KeyError:
        known = ", ".join(["auto", *sorted(MODELS)])
        raise ConfigError(
            f"model.name: unknown model (known: {known}), got {config.name!r}"
        ) from None
    if (name in SEGMENTATION_MODELS) != (default in SEGMENTATION_MODELS):
        task = "segmentation" if default in SEGMENTATION_MODELS else "classification"
        raise ConfigError(
            f"model.name: does not fit this dataset's task, {task} "
            f"(use auto or {default}), got {name!r}"
        )
    return model_class(config, input_shape, num_classes)
