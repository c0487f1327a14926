"""Evaluating a saved model on a dataset: its test split, or every row when it has none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mlfer.core.config import load_config
from mlfer.data import LabelledData, load_dataset
from mlfer.data.transforms import eval_transform
from mlfer.models.checkpoint import CONFIG_FILE, load_model
from mlfer.models.model import MultiLabelModel
from mlfer.models.shipped import shipped_model_dir
from mlfer.runtime.distributed import OrderedShardSampler, ordered_shard
from mlfer.runtime.reproduce import resolve_device
from mlfer.train.features import EVAL_BATCH_SIZE, image_loader
from mlfer.train.loop import (
    FEATURE_EVAL_CHUNK,
    Evaluation,
    FeatureBatches,
    LoaderBatches,
    evaluate_batches,
    multilabel_metrics,
    target_tensor,
)
from mlfer.train.run_model import check_fits


def evaluation_rows(data: LabelledData) -> LabelledData:
    """The rows a model is evaluated on: the test split where the dataset has one, else all."""
    if data.split is None:
        return data
    return data.subset(np.flatnonzero(data.split == "test"))


def evaluate_model(model: MultiLabelModel, data: LabelledData, image_size: int, device: torch.device) -> Evaluation:
    """The model's logits and BCE on every row of ``data`` (feature vectors or images, the
    latter with the evaluation transform at ``image_size``); under torchrun each process
    evaluates its ordered shard and every process gets all rows."""
    model = model.to(device)
    if data.features is not None:
        shard = ordered_shard(len(data), FEATURE_EVAL_CHUNK)
        features = torch.as_tensor(np.asarray(data.features[shard], dtype=np.float32))
        targets = target_tensor(data.labels[shard], torch.device("cpu"))
        return evaluate_batches(model, FeatureBatches(features, targets, None, FEATURE_EVAL_CHUNK), device)
    sampler = OrderedShardSampler(len(data), EVAL_BATCH_SIZE)
    channels = model.config.in_channels
    loader = image_loader(data, eval_transform(image_size, channels=channels), EVAL_BATCH_SIZE, sampler=sampler)
    return evaluate_batches(model, LoaderBatches(loader), device)


def evaluate_checkpoint(
    checkpoint: str | Path | None, dataset: str, device: str = "auto", trust_unverified: bool = False
) -> dict[str, float]:
    """The nine metrics of the model saved in ``checkpoint`` (``None``: the model that ships with
    mlfer) on the dataset named by the spec ``dataset`` (its test split, or all its rows);
    ``trust_unverified`` as in :func:`load_model`."""
    target = resolve_device(device)
    folder = shipped_model_dir() if checkpoint is None else Path(checkpoint)
    model = load_model(folder, target, trust_unverified=trust_unverified)
    config = load_config(folder / CONFIG_FILE)
    data = load_dataset(dataset)
    check_fits(config, data)
    return multilabel_metrics(evaluate_model(model, evaluation_rows(data), config.train.image_size, target))
