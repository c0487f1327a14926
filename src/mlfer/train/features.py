"""Backbone features of a dataset's images, plain and flipped, through the feature cache."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn
from torch.fx.experimental.optimization import fuse
from torch.utils.data import DataLoader, Sampler
from torchvision import transforms

from mlfer.core.config import ModelConfig, TrainConfig
from mlfer.core.errors import MlferError
from mlfer.core.version import __version__
from mlfer.data.dataset import LabelledData, Partition
from mlfer.data.torch_dataset import ImageDataset, collate_skipping_failures
from mlfer.data.transforms import eval_transform, train_transform
from mlfer.models.package import MODEL_FILE
from mlfer.runtime.distributed import (
    GlobalBatchSampler,
    OrderedShardSampler,
    gather_rows,
    world_size,
)
from mlfer.runtime.progress import show_progress
from mlfer.train.cache import FeatureCache, shared_cache_entry
from mlfer.train.gpu import Accelerated
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
    sampler: Sampler[int] | None = None,
    batch_sampler: Sampler[list[int]] | None = None,
    workers: int | None = None,
    targets: np.ndarray | None = None,
) -> DataLoader:
    """A DataLoader of ``(images, labels, rows)`` batches, unreadable images left out
    (``targets`` in place of the labels where given, see :class:`ImageDataset`).

    Its shuffling and worker seeds come from ``generator`` (default: a fresh one), never
    from torch's global generator, so loading images leaves the global random state alone.
    ``sampler`` or ``batch_sampler`` choose the rows (under torchrun, this process's share);
    ``workers`` defaults to :func:`loader_workers`.
    """
    batching = (
        {"batch_sampler": batch_sampler}
        if batch_sampler is not None
        else {"batch_size": batch_size, "shuffle": shuffle, "sampler": sampler}
    )
    return DataLoader(
        ImageDataset(data, transform, targets),
        **batching,
        generator=generator if generator is not None else torch.Generator().manual_seed(0),
        num_workers=loader_workers() if workers is None else workers,
        collate_fn=collate_skipping_failures,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )


def image_batches(
    data: LabelledData,
    partition: Partition,
    config: TrainConfig,
    generator: torch.Generator,
    channels: int = 3,
    targets: np.ndarray | None = None,
) -> tuple[LoaderBatches, LoaderBatches]:
    """Shuffled training batches (random flips with ``config.flip``, random reframing with
    ``config.rotate``, ``rescale`` and ``shift``) and ordered test batches
    of a partition's images, with ``channels`` (3 RGB, 1 grey); under torchrun, this
    process's share of each global training batch and its ordered shard of the test rows.
    The training batches carry ``targets`` (one row per training row; default: the labels),
    the test batches always the 0/1 labels."""
    size = config.image_size
    augment = train_transform(size, channels, config.flip, config.reframing())
    train_data, test_data = data.subset(partition.train), data.subset(partition.test)
    if world_size() > 1:
        train = image_loader(
            train_data,
            augment,
            config.batch_size,
            generator=generator,
            workers=config.workers,
            batch_sampler=GlobalBatchSampler(len(train_data), config.batch_size, generator),
            targets=targets,
        )
    else:
        train = image_loader(
            train_data,
            augment,
            config.batch_size,
            shuffle=True,
            generator=generator,
            workers=config.workers,
            targets=targets,
        )
    test = image_loader(
        test_data,
        eval_transform(size, channels=channels),
        EVAL_BATCH_SIZE,
        workers=config.workers,
        sampler=OrderedShardSampler(len(test_data), EVAL_BATCH_SIZE),
    )
    return LoaderBatches(train), LoaderBatches(test)


def flipped_transform(size: int, channels: int = 3) -> transforms.Compose:
    """The evaluation transform followed by a horizontal flip (for the cached flipped copies)."""
    return transforms.Compose([eval_transform(size, channels=channels), transforms.RandomHorizontalFlip(p=1.0)])


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """An eval-mode copy of ``module`` with each BatchNorm folded into the convolution before
    it (``torch.fx``): the same function up to rounding, one memory pass less per layer."""
    return fuse(module.eval())


@torch.inference_mode()
def extract_features(
    module: nn.Module,
    data: LabelledData,
    transform: transforms.Compose,
    device: torch.device,
    progress: bool = False,
    *,
    amp: str = "none",
    channels_last: bool = True,
    fold: bool = True,
) -> torch.Tensor:
    """``module`` applied to every image in eval mode, (N, D) float32 on the CPU.

    Rows whose image cannot be read are NaN (callers leave them out). Under torchrun each
    process runs its ordered shard and every process gets all rows.

    Args:
        module, data, transform, device, progress: the backbone, the images, their
            transform, where to run, and whether to show a progress bar.
        amp: ``none`` or ``bf16`` (bfloat16 autocast: faster only on hardware with bfloat16
            units, and the features drift from fp32; see docs/benchmarks.md).
        channels_last: feed the images in channels-last (NHWC) layout, the same fp32
            arithmetic in another order (1.3x faster for ResNet50 on a 2-core AMD EPYC).
        fold: run with the BatchNorm layers folded into the convolutions (:func:`fold_batchnorm`).
    """
    module = module.to(device).eval()
    module = Accelerated(fold_batchnorm(module) if fold else module, amp, channels_last)
    loader = image_loader(data, transform, EVAL_BATCH_SIZE, sampler=OrderedShardSampler(len(data), EVAL_BATCH_SIZE))
    values, rows = [], []
    for batch in show_progress(loader, "features", unit="batch", leave=False, disable=not progress):
        if batch is not None:
            values.append(module(batch[0].to(device, non_blocking=True)).float().cpu())
            rows.append(batch[2])
    all_values = gather_rows(torch.cat(values) if values else None)
    all_rows = gather_rows(torch.cat(rows) if rows else None)
    if all_values is None or all_rows is None:
        raise MlferError("no image of the dataset could be read", field=data.spec)
    outputs = torch.full((len(data), all_values.shape[1]), float("nan"))
    outputs[all_rows] = all_values
    return outputs


def weights_identity(config: ModelConfig, seed: int) -> dict[str, Any]:
    """What the backbone's weights are, for the cache key: a file's path, size and mtime,
    torchvision's ImageNet weights, or a random initialisation with its seed."""
    weights = config.backbone_weights
    if weights is None:
        return {"random_init_seed": seed}
    if weights == "imagenet":
        return {"imagenet": torchvision.__version__}
    return file_identity(weights)


def file_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A file's real path, size and modification time (for a cache key)."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    return {"path": real, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


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
    init_from: str | None = None,
) -> torch.Tensor:
    """Features of every row (flipped images with ``flip``), from the cache where possible.

    The identity backbone returns the dataset's own feature vectors (and has no flipped copy).
    ``init_from`` names the model folder the backbone's weights came from (``train.init_from``).
    """
    if data.is_features:
        return torch.as_tensor(np.asarray(data.features, dtype=np.float32))
    channels = config.in_channels
    transform = flipped_transform(image_size, channels) if flip else eval_transform(image_size, channels=channels)
    if cache is None:
        return extract_features(backbone, data, transform, device, progress)
    description = {
        "mlfer": __version__,
        "dataset": data.spec,
        "rows": FeatureCache.key({"ids": list(data.ids)}),
        "backbone": config.backbone,
        # the small stem and grey input only where set, so that earlier cache entries stay valid
        **({"stem": config.stem} if config.stem != "standard" else {}),
        **({"in_channels": channels} if channels != 3 else {}),
        "weights": weights_identity(config, seed),
        **({"init_from": file_identity(Path(init_from) / MODEL_FILE)} if init_from is not None else {}),
        "image_size": image_size,
        "flip": flip,
    }

    def compute() -> torch.Tensor:
        return extract_features(backbone, data, transform, device, progress)

    features, hit = shared_cache_entry(cache, description, compute)
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
