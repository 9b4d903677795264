"""Predictions of a trained model on new inputs: .npy arrays or .png images."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError
from .evaluate import SavedModel
from .runtime import autocast

if TYPE_CHECKING:  # imported where an image is read: Pillow takes time to load
    from PIL.Image import Image as PillowImage

# The most pixels an input image may have: a 50-megapixel photo, far more than any
# model here looks at once it is resized, and 200 MB as float32.
MAX_IMAGE_PIXELS = 50_000_000
# The most values one .npy file may hold: 1 GB as float32, four million digits. A
# header is all it takes to claim a terabyte (a sparse file holds one in no space).
MAX_ARRAY_VALUES = 250_000_000
# Pillow's modes of 16-bit grey; it reads 16-bit colour as 8 bits a channel.
_SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def read_inputs(path: Path, input_shape: tuple[int, ...]) -> torch.Tensor:
    """A batch (N, *input_shape) from a .npy file of one example or a batch of them,
    or from an image, read in the model's channels (grey or RGB) and resized.

    The digits model expects light strokes on a dark background, values in [0, 1].
    """
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _as_batch(_read_array(path), path, input_shape)
    if suffix in (".png", ".jpg", ".jpeg"):
        return _read_image(path, input_shape)
    raise ConfigError(f"{path}: expected a .npy array or a .png/.jpg image")


def _read_array(path: Path) -> torch.Tensor:
    try:
        # Mapped, not read: the shape is known before a byte of data is in memory.
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except EOFError:
        raise ConfigError(f"{path}: not a NumPy array file (it is empty)") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: not a NumPy array file ({error})") from None
    # Booleans, integers and reals only: text cannot be a pixel, and a complex
    # array would lose its imaginary part without a word.
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        kind = array.dtype if isinstance(array, np.ndarray) else type(array)
        raise ConfigError(f"{path}: holds {kind} values, expected numbers")
    if array.size > MAX_ARRAY_VALUES:
        raise ConfigError(
            f"{path}: an array of shape {list(array.shape)} holds more than"
            f" {MAX_ARRAY_VALUES:,} values, too many to read at once; split it"
        )
    # A copy, read from the file, that torch may write to. Values past float32's range
    # become infinite, which _as_batch refuses by name, so numpy need not warn.
    with np.errstate(over="ignore"):
        return torch.from_numpy(np.array(array, dtype=np.float32))


def _as_batch(
    tensor: torch.Tensor, path: Path, input_shape: tuple[int, ...]
) -> torch.Tensor:
    shape = tuple(tensor.shape)
    if shape == input_shape:
        tensor = tensor[None]
    elif input_shape[0] == 1 and shape == input_shape[1:]:
        tensor = tensor[None, None]
    elif input_shape[0] == 1 and shape[1:] == input_shape[1:]:
        tensor = tensor[:, None]
    elif shape[1:] != input_shape:
        raise ConfigError(
            f"{path}: an array of shape {list(shape)} does not fit the model's input "
            f"{list(input_shape)} (give one example or a batch of them)"
        )
    if len(tensor) == 0:
        raise ConfigError(f"{path}: holds no example (a batch of 0)")
    if not bool(torch.isfinite(tensor).all()):
        raise ConfigError(f"{path}: holds NaN or infinite values")
    return tensor


def _read_image(path: Path, input_shape: tuple[int, ...]) -> torch.Tensor:
    """An image, read by its content whatever its name says. Its size comes from the
    header before any pixel is decoded: a PNG of 20000 x 20000 blank pixels is 400 KB
    on disk and took 18 s and 2.6 GB to read; a JPEG of that size stopped in a
    traceback from Pillow's own, higher limit."""
    from PIL import Image

    channels = input_shape[0]
    if channels not in (1, 3):
        raise ConfigError(
            f"{path}: the model takes {channels} channels, and an image gives 1 (grey)"
            " or 3 (RGB): give a .npy array"
        )
    too_many = f"{path}: more than {MAX_IMAGE_PIXELS:,} pixels, too large to read"
    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 million pixels; the limit here is lower.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ConfigError(f"{too_many} ({width} x {height})")
            pixels = _pixels(image, channels)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except Image.DecompressionBombError:
        raise ConfigError(too_many) from None
    except (OSError, ValueError, SyntaxError):  # no image, or pixels cut short
        raise ConfigError(f"{path}: not an image this program can read") from None
    tensor = torch.from_numpy(pixels).permute(2, 0, 1)[None]
    return F.interpolate(tensor, size=input_shape[1:], mode="bilinear", antialias=True)


def _pixels(image: PillowImage, channels: int) -> np.ndarray:
    """(height, width, channels) float32 in [0, 1]: grey for 1 channel, RGB for 3.
    The scale comes from the image's bit depth: a dark 8-bit image stays dark.
    Transparent pixels count as black, the background the digits model knows."""
    from PIL import Image

    if image.mode in _SIXTEEN_BIT:
        grey = np.asarray(image, dtype=np.float32) / 65535.0
        return np.repeat(grey[..., None], channels, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        black = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, image.convert("RGBA"))
    pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"), np.float32)
    return pixels.reshape(*pixels.shape[:2], channels) / 255.0


@torch.no_grad()
def predict(
    saved: SavedModel, inputs: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """Class probabilities: (N, classes), or (N, classes, H, W) for segmentation."""
    outputs = []
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size].to(saved.device)
        with autocast(saved.device, saved.amp_dtype):
            logits = saved.model(batch)
        outputs.append(logits.float().softmax(dim=1).cpu())
    return torch.cat(outputs)


def masks_as_npy(masks: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, masks.numpy().astype(np.uint8))
    return buffer.getvalue()
