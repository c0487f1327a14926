"""Image transforms for training and evaluation: any PIL image -> normalised 3 x size x size tensor."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from mlfer.data.images import to_rgb

#: ImageNet channel statistics, which the ResNet50 backbone was trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _pipeline(
    size: int, flip: bool, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> transforms.Compose:
    steps = [to_rgb, transforms.Resize((size, size))]
    if flip:
        steps.append(transforms.RandomHorizontalFlip())
    steps += [transforms.ToTensor(), transforms.Normalize(mean, std)]
    return transforms.Compose(steps)


def train_transform(size: int = 224) -> transforms.Compose:
    """RGB conversion, resize to size x size, random horizontal flip (the paper's only
    augmentation), tensor, ImageNet normalisation.

    Args:
        size: output height and width (the paper's aligned faces are 224).
    """
    return _pipeline(size, flip=True)


def eval_transform(
    size: int = 224, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> transforms.Compose:
    """RGB conversion, resize to size x size, tensor, normalisation (no randomness).

    Args:
        size: output height and width.
        mean, std: per-channel normalisation, ``(x - mean) / std`` on [0, 1] values (ImageNet's).
    """
    return _pipeline(size, False, mean, std)


def eval_batch(
    faces: Sequence[np.ndarray] | np.ndarray,
    size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """RGB uint8 faces (each H x W x 3) as one input batch N x 3 x size x size, each through
    :func:`eval_transform` (with ``mean`` and ``std``)."""
    transform = eval_transform(size, mean, std)
    return torch.stack([transform(Image.fromarray(face)) for face in faces])
