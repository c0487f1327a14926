"""A torch Dataset over the images of a :class:`LabelledData`, skipping unreadable files."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from mlfer.core.errors import MlferError
from mlfer.data.dataset import LabelledData
from mlfer.data.images import read_image

#: One row: (image tensor, float targets in RAF order (the 0/1 labels by default), row index in
#: the LabelledData).
Sample = tuple[torch.Tensor, torch.Tensor, int]
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class UnreadableImageWarning(UserWarning):
    """An image could not be decoded; its row is left out of its batch."""


class ImageDataset(Dataset):
    """Rows of a dataset as ``(image, labels, row)``; images are decoded only when a row is read.

    An unreadable image yields ``None`` (dropped by :func:`collate_skipping_failures`), is
    reported once with an :class:`UnreadableImageWarning` naming the file, and is listed in
    :attr:`failures`, which sees failures from DataLoader worker processes too.

    Args:
        data: a dataset with ``paths`` (image files) or ``images`` (uint8 N x H x W x 3).
        transform: PIL image -> tensor, e.g. :func:`mlfer.data.transforms.eval_transform`.
        targets: (N, C) float targets in [0, 1] returned in place of the labels (soft training
            targets); default: the 0/1 labels.
    """

    def __init__(
        self,
        data: LabelledData,
        transform: Callable[[Image.Image], torch.Tensor],
        targets: np.ndarray | None = None,
    ) -> None:
        if data.paths is None and data.images is None:
            raise MlferError(f"{data.spec} holds precomputed features, not images", field="dataset")
        self.data = data
        self.transform = transform
        self._labels = torch.from_numpy(np.asarray(data.labels if targets is None else targets, dtype=np.float32))
        self._failed = torch.zeros(len(data), dtype=torch.bool).share_memory_()

    def __len__(self) -> int:
        return len(self.data)

    def _name(self, row: int) -> str:
        return str(self.data.paths[row]) if self.data.paths is not None else self.data.ids[row]

    def _decode(self, row: int) -> Image.Image:
        if self.data.paths is not None:
            return read_image(self.data.paths[row])
        assert self.data.images is not None, "a dataset of images holds paths or decoded images"
        return Image.fromarray(np.ascontiguousarray(self.data.images[row]))

    def __getitem__(self, row: int) -> Sample | None:
        try:
            image = self._decode(row)
        except MlferError as error:
            if not self._failed[row]:
                self._failed[row] = True
                warnings.warn(f"skipping unreadable image: {error}", UnreadableImageWarning, stacklevel=2)
            return None
        return self.transform(image), self._labels[row], row

    @property
    def failures(self) -> dict[int, str]:
        """Row -> file (or id) of every image found unreadable so far."""
        return {int(row): self._name(int(row)) for row in np.flatnonzero(self._failed.numpy())}


def collate_skipping_failures(samples: list[Sample | None]) -> Batch | None:
    """DataLoader ``collate_fn``: stack the readable samples; ``None`` when none is left."""
    kept = [sample for sample in samples if sample is not None]
    if not kept:
        return None
    images, labels, rows = zip(*kept)
    return torch.stack(images), torch.stack(labels), torch.tensor(rows)
