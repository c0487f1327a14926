"""Backbone features of a dataset's images, plain and flipped, through the feature cache."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms
from tqdm import tqdm

import mlfer
from mlfer.data.dataset import LabelledData, Partition
from mlfer.data.torch_dataset import ImageDataset, collate_skipping_failures
from mlfer.data.transforms import eval_transform, train_transform
from mlfer.model import ModelConfig
from mlfer.train.cache import FeatureCache
from mlfer.train.config import TrainConfig
from mlfer.train.loop import LoaderBatches

#: Images per forward pass when extracting features or predicting.
EVAL_BATCH_SIZE = 64


def loader_workers() -> int:
    """DataLoader worker processes: all CPU cores but one, at most 8."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def image_loader(
    data: LabelledData,
    transform: transforms.Compose,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """A DataLoader of ``(images, labels, rows)`` batches, unreadable images left out.

    Its shuffling and worker seeds come from ``generator`` (default: a fresh one), never
    from torch's global generator, so loading images leaves the global random state alone.
    """
    workers = loader_workers()
    return DataLoader(
        ImageDataset(data, transform),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator if generator is not None else torch.Generator().manual_seed(0),
        num_workers=workers,
        collate_fn=collate_skipping_failures,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )


def image_batches(
    data: LabelledData, partition: Partition, config: TrainConfig, generator: torch.Generator
) -> tuple[LoaderBatches, LoaderBatches]:
    """Shuffled training batches (random flips with ``config.flip``) and ordered test batches
    of a partition's images."""
    size = config.image_size
    augment = train_transform(size) if config.flip else eval_transform(size)
    train = image_loader(data.subset(partition.train), augment, config.batch_size, shuffle=True, generator=generator)
    test = image_loader(data.subset(partition.test), eval_transform(size), EVAL_BATCH_SIZE)
    return LoaderBatches(train), LoaderBatches(test)


def flipped_transform(size: int) -> transforms.Compose:
    """The evaluation transform followed by a horizontal flip (for the cached flipped copies)."""
    return transforms.Compose([eval_transform(size), transforms.RandomHorizontalFlip(p=1.0)])


@torch.inference_mode()
def extract_features(
    module: nn.Module, data: LabelledData, transform: transforms.Compose, device: torch.device, progress: bool = False
) -> torch.Tensor:
    """``module`` applied to every image in eval mode, (N, D) float32 on the CPU.

    Rows whose image cannot be read are NaN (callers leave them out).
    """
    module = module.to(device).eval()
    outputs: torch.Tensor | None = None
    loader = image_loader(data, transform, EVAL_BATCH_SIZE)
    for batch in tqdm(loader, desc="features", leave=False, disable=not progress):
        if batch is None:
            continue
        images, _, rows = batch
        values = module(images.to(device, non_blocking=True)).float().cpu()
        if outputs is None:
            outputs = torch.full((len(data), values.shape[1]), float("nan"))
        outputs[rows] = values
    if outputs is None:
        raise mlfer.MlferError("no image of the dataset could be read", field=data.spec)
    return outputs


def weights_identity(config: ModelConfig, seed: int) -> dict[str, Any]:
    """What the backbone's weights are, for the cache key: a file's path, size and mtime,
    torchvision's ImageNet weights, or a random initialisation with its seed."""
    weights = config.backbone_weights
    if weights is None:
        return {"random_init_seed": seed}
    if weights == "imagenet":
        return {"imagenet": torchvision.__version__}
    path = os.path.realpath(weights)
    stat = os.stat(path)
    return {"path": path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def backbone_features(
    backbone: nn.Module,
    data: LabelledData,
    config: ModelConfig,
    image_size: int,
    *,
    seed: int,
    flip: bool,
    cache: FeatureCache | None,
    device: torch.device,
    progress: bool = False,
) -> torch.Tensor:
    """Features of every row (flipped images with ``flip``), from the cache where possible.

    The identity backbone returns the dataset's own feature vectors (and has no flipped copy).
    """
    if data.is_features:
        return torch.as_tensor(np.asarray(data.features, dtype=np.float32))
    transform = flipped_transform(image_size) if flip else eval_transform(image_size)
    if cache is None:
        return extract_features(backbone, data, transform, device, progress)
    description = {
        "mlfer": mlfer.__version__,
        "dataset": data.spec,
        "rows": FeatureCache.key({"ids": list(data.ids)}),
        "backbone": config.backbone,
        "weights": weights_identity(config, seed),
        "image_size": image_size,
        "flip": flip,
    }
    features, hit = cache.get_or_compute(description, lambda: extract_features(backbone, data, transform, device, progress))
    if progress:
        print(f"{'flipped' if flip else 'plain'} features of {data.spec}: {'cache hit' if hit else 'computed'}")
    return features


def readable_rows(features: torch.Tensor, index: np.ndarray, what: str) -> np.ndarray:
    """The rows of ``index`` whose features are finite (unreadable images are NaN), with a warning
    naming how many were left out."""
    finite = torch.isfinite(features[torch.as_tensor(index, dtype=torch.long)]).all(dim=1).numpy()
    if not finite.all():
        warnings.warn(f"left out {int((~finite).sum())} {what} rows whose images could not be read", stacklevel=2)
    return index[finite]
