"""Image transforms for training and evaluation: any PIL image -> normalised C x size x size tensor
(C = 3 for RGB, or 1 for grey faces: luminance, ``L = 0.299 R + 0.587 G + 0.114 B``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from mlfer.core.config import Reframing
from mlfer.data.images import to_rgb
from mlfer.data.normalisation import GREY_MEAN, channel_statistics

#: Fill of the corners that a random reframing uncovers: the grey mean, in 8-bit levels.
MID_GREY = round(255 * GREY_MEAN[0])


def random_reframing(reframing: Reframing) -> transforms.RandomAffine:
    """The random affine transform of a PIL image that ``reframing`` asks for
    (:class:`torchvision.transforms.RandomAffine`; uncovered corners are mid grey)."""
    return transforms.RandomAffine(
        degrees=reframing.rotate,
        translate=(reframing.shift, reframing.shift),
        scale=(1 - reframing.rescale, 1 + reframing.rescale),
        interpolation=transforms.InterpolationMode.BILINEAR,
        fill=MID_GREY,
    )


def _pipeline(
    size: int,
    flip: bool,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    channels: int = 3,
    reframing: Reframing = Reframing(),
) -> transforms.Compose:
    default_mean, default_std = channel_statistics(channels)
    mean, std = mean or default_mean, std or default_std
    steps = [to_rgb, *([transforms.Grayscale(1)] if channels == 1 else []), transforms.Resize((size, size))]
    if reframing:
        steps.append(random_reframing(reframing))
    if flip:
        steps.append(transforms.RandomHorizontalFlip())
    steps += [transforms.ToTensor(), transforms.Normalize(mean, std)]
    return transforms.Compose(steps)


def train_transform(
    size: int = 224, channels: int = 3, flip: bool = True, reframing: Reframing = Reframing()
) -> transforms.Compose:
    """RGB conversion (then grey for ``channels=1``), resize to size x size, random reframing,
    random horizontal flip (the paper's only augmentation), tensor, normalisation
    (:func:`channel_statistics`).

    Args:
        size: output height and width (the paper's aligned faces are 224).
        channels: 3 (RGB) or 1 (grey).
        flip: flip each image horizontally with probability 1/2.
        reframing: random rotation, scale and shift (:class:`Reframing`; default none).
    """
    return _pipeline(size, flip, channels=channels, reframing=reframing)


def eval_transform(
    size: int = 224, mean: Sequence[float] | None = None, std: Sequence[float] | None = None, channels: int = 3
) -> transforms.Compose:
    """RGB conversion (then grey for ``channels=1``), resize to size x size, tensor,
    normalisation (no randomness).

    Args:
        size: output height and width.
        mean, std: per-channel normalisation, ``(x - mean) / std`` on [0, 1] values
            (default: :func:`channel_statistics`, ImageNet's).
        channels: 3 (RGB) or 1 (grey).
    """
    return _pipeline(size, False, mean, std, channels)


def eval_batch(
    faces: Sequence[np.ndarray] | np.ndarray,
    size: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    channels: int = 3,
) -> torch.Tensor:
    """RGB uint8 faces (each H x W x 3) as one input batch N x C x size x size, each through
    :func:`eval_transform` (with ``mean``, ``std`` and ``channels``)."""
    transform = eval_transform(size, mean, std, channels)
    return torch.stack([transform(Image.fromarray(face)) for face in faces])
