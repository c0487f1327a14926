"""How a face becomes a network's input, without torch: channel statistics, and the evaluation
transform (:func:`mlfer.data.transforms.eval_transform`) computed in numpy, value for value."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from mlfer.data.images import to_rgb

#: ImageNet channel statistics, which the ResNet50 backbone was trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Statistics of grey input: the mean of ImageNet's three channels.
GREY_MEAN = (0.449,)
GREY_STD = (0.226,)


def channel_statistics(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The default normalisation (mean, std) of RGB (3) or grey (1) input."""
    return (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else (GREY_MEAN, GREY_STD)


def normalised_array(
    faces: Sequence[np.ndarray] | np.ndarray,
    size: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    channels: int = 3,
) -> np.ndarray:
    """RGB uint8 faces (each H x W x 3) as one float32 batch N x C x size x size, as
    :func:`~mlfer.data.transforms.eval_batch` makes it: grey (PIL's ``L``) for ``channels=1``,
    resized with PIL's bilinear filter where the side differs, scaled to [0, 1], then
    ``(x - mean) / std`` per channel (default :func:`channel_statistics`), all in float32."""
    default_mean, default_std = channel_statistics(channels)
    shape = (1, channels, 1, 1)
    centre = np.asarray(mean or default_mean, dtype=np.float32).reshape(shape)
    scale = np.asarray(std or default_std, dtype=np.float32).reshape(shape)
    batch = np.empty((len(faces), channels, size, size), dtype=np.float32)
    for index, face in enumerate(faces):
        image = to_rgb(Image.fromarray(face))
        image = image.convert("L") if channels == 1 else image
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32) / np.float32(255)
        batch[index] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return (batch - centre) / scale
