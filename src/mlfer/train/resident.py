"""Device-resident images (``train.resident``): the faces of a dataset decoded once into a
uint8 tensor on the device, then shuffled, flipped and normalised there each epoch, so that
fine-tuning is bound by the model rather than by JPEG decoding.

RAF-ML's 4,908 faces at 224 x 224 take 4908 * 3 * 224 * 224 bytes = 0.74 GB. Batches hold
exactly the values of the DataLoader path (:func:`mlfer.data.transforms.eval_transform`,
with the flip applied to the resized pixels in both).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torchvision import transforms

from mlfer.core.config import TrainConfig
from mlfer.core.errors import MlferError
from mlfer.data.dataset import LabelledData, Partition
from mlfer.data.images import to_rgb
from mlfer.data.normalisation import IMAGENET_MEAN, IMAGENET_STD
from mlfer.runtime.distributed import OrderedShardSampler, gather_rows, ordered_shard, rank_share, training_steps
from mlfer.train.features import EVAL_BATCH_SIZE, image_loader
from mlfer.train.loop import target_tensor


def uint8_transform(size: int) -> transforms.Compose:
    """RGB conversion, resize to size x size, uint8 3 x size x size tensor (no scaling)."""
    return transforms.Compose([to_rgb, transforms.Resize((size, size)), transforms.PILToTensor()])


def decode_images(
    data: LabelledData, size: int, device: torch.device, workers: int | None, *, shared: bool
) -> tuple[torch.Tensor, np.ndarray]:
    """The readable images of ``data`` as (N', 3, size, size) uint8 on ``device``, and their rows.

    With ``shared``, each process decodes its ordered shard
    (:class:`~mlfer.runtime.distributed.OrderedShardSampler`) and every process gets all of
    them; without, this process decodes every row of ``data`` (its own shard of a test set).
    Unreadable images are left out with a warning (see
    :class:`~mlfer.data.torch_dataset.ImageDataset`).
    """
    sampler = OrderedShardSampler(len(data), EVAL_BATCH_SIZE) if shared else None
    loader = image_loader(data, uint8_transform(size), EVAL_BATCH_SIZE, sampler=sampler, workers=workers)
    images, rows = [], []
    for batch in loader:
        if batch is not None:
            images.append(batch[0].to(device, non_blocking=True))
            rows.append(batch[2])
    local_images = torch.cat(images) if images else None
    local_rows = torch.cat(rows) if rows else None
    if shared:
        local_images, local_rows = gather_rows(local_images), gather_rows(local_rows)
        if local_rows is None:
            raise MlferError("no image of the dataset could be read", field=data.spec)
    if local_images is None or local_rows is None:
        return torch.zeros((0, 3, size, size), dtype=torch.uint8, device=device), np.zeros(0, dtype=np.int64)
    return local_images, local_rows.numpy()


class ResidentBatches:
    """Mini-batches of device-resident uint8 images, normalised on the device.

    With a generator, each pass draws a permutation and (with ``flip``) one coin per image
    from it, both on the CPU as the other batch sources do; under torchrun every process
    draws the same and takes its share of each global batch. Without a generator the rows
    come in order (evaluation).

    Args:
        images: (N, 3, S, S) uint8 images on the device.
        labels: (N, C) float targets on the same device (0/1, or soft in training).
        batch_size: rows per global batch (training) or per forward pass (evaluation).
        generator: the run's CPU generator, or None.
        flip: flip each image horizontally with probability 1/2 (training only).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        generator: torch.Generator | None = None,
        flip: bool = False,
    ) -> None:
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.generator, self.flip = generator, flip
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(shape)
        self.std = torch.tensor(IMAGENET_STD, device=images.device).view(shape)

    def __len__(self) -> int:
        count = len(self.images)
        return training_steps(count, self.batch_size) if self.generator is not None else -(-count // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        count = len(self.images)
        if self.generator is None:
            for start in range(0, count, self.batch_size):
                yield self._batch(torch.arange(start, min(start + self.batch_size, count)), None)
            return
        order = torch.randperm(count, generator=self.generator)
        coins = torch.rand(count, generator=self.generator) < 0.5 if self.flip else None
        for start in range(0, count, self.batch_size):
            batch = order[start : start + self.batch_size]
            share = rank_share(len(batch))
            if share is not None:
                rows = batch[share]
                yield self._batch(rows, None if coins is None else coins[rows])

    def _batch(self, rows: torch.Tensor, flips: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        rows = rows.to(self.images.device, non_blocking=True)
        images = self.images[rows].float().div_(255)
        if flips is not None:
            images = torch.where(flips.to(images.device)[:, None, None, None], images.flip(-1), images)
        return images.sub_(self.mean).div_(self.std), self.labels[rows]


def resident_batches(
    data: LabelledData,
    partition: Partition,
    config: TrainConfig,
    generator: torch.Generator,
    device: torch.device,
    targets: np.ndarray,
) -> tuple[ResidentBatches, ResidentBatches]:
    """Training batches over every process's copy of the readable training images, and test
    batches over this process's ordered shard of the test images (evaluation gathers). The
    training batches carry ``targets`` (one row per training row,
    :func:`~mlfer.train.targets.training_targets`), the test batches always the 0/1 labels."""
    size, workers = config.image_size, config.workers
    train_images, train_rows = decode_images(data.subset(partition.train), size, device, workers, shared=True)
    test = data.subset(partition.test)
    shard = ordered_shard(len(test), EVAL_BATCH_SIZE)
    test_shard = test.subset(np.arange(shard.start, shard.stop))
    test_images, test_rows = decode_images(test_shard, size, device, workers, shared=False)
    train_labels = target_tensor(targets[train_rows], device)
    test_labels = target_tensor(test_shard.labels[test_rows], device)
    return (
        ResidentBatches(train_images, train_labels, config.batch_size, generator, config.flip),
        ResidentBatches(test_images, test_labels, EVAL_BATCH_SIZE),
    )
