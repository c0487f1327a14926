"""One training run: a model trained on one train/test division with one seed.

:func:`train_on_features` is the frozen mode (the head on feature vectors held in memory),
:func:`train_finetune` the end-to-end mode. With a run folder, each writes its resume state
at most once a minute (``train.save_minutes``) and, when done, ``model.safetensors``,
``config.yaml``, ``graph.json``, ``history.csv`` and, last (it marks the run as finished),
``metrics.json``.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mlfer.core.config import RunConfig
from mlfer.core.fileio import atomic_path, write_text_atomic
from mlfer.data.dataset import LabelledData, Partition
from mlfer.evaluation.metrics import METRIC_NAMES
from mlfer.graph.graph_file import load_graph, save_graph
from mlfer.graph.label_graph import LabelGraph
from mlfer.models.checkpoint import save_model
from mlfer.models.heads import head_class
from mlfer.models.model import FeatureScaler, MultiLabelModel
from mlfer.models.package import GRAPH_FILE
from mlfer.runtime.distributed import ShardedBatches, is_main, ordered_shard
from mlfer.runtime.reproduce import resolve_device, seed_everything
from mlfer.train.features import image_batches
from mlfer.train.gpu import training_module
from mlfer.train.loop import (
    FEATURE_EVAL_CHUNK,
    Batches,
    FeatureBatches,
    MetricsFunction,
    fit,
    make_optimizer,
    make_scheduler,
    multilabel_metrics,
    target_tensor,
)
from mlfer.train.resident import resident_batches
from mlfer.train.run_model import PrototypeSource, build_run_model, with_seed, with_word_vectors
from mlfer.train.state import LAST_DIR, Resumable
from mlfer.train.targets import training_targets

METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"


@dataclass
class FeatureSet:
    """Feature vectors with their labels (frozen mode).

    Args:
        features: (N, D) features of the plain images.
        labels: (N, C) 0/1 labels, RAF order: the label graph, the prototypes, the test pass.
        flipped: (N, D) features of the horizontally flipped images, or None.
        targets: (N, C) training targets (:func:`~mlfer.train.targets.training_targets`), or
            None: the labels.
    """

    features: torch.Tensor
    labels: np.ndarray
    flipped: torch.Tensor | None = None
    targets: np.ndarray | None = None


@dataclass
class RunResult:
    """What one run produced.

    Args:
        name: the run's name (``<partition>-seed<k>``).
        metrics: the nine metrics on the test rows after the last epoch.
        history: one row per epoch (see :func:`mlfer.train.loop.fit`).
        graph: the label graph of its training rows.
        model: the trained model, or None for a run read back from a finished folder.
        directory: its run folder, if it has one.
    """

    name: str
    metrics: dict[str, float]
    history: pd.DataFrame
    graph: LabelGraph
    model: MultiLabelModel | None = None
    directory: Path | None = None


def json_metrics(metrics: dict[str, float]) -> dict[str, float | None]:
    """Metrics ready for JSON: NaN (an undefined metric) becomes null."""
    return {name: None if math.isnan(value) else float(value) for name, value in metrics.items()}


def is_finished(run_dir: Path) -> bool:
    """Whether a run folder holds a finished run (its ``metrics.json`` is written last)."""
    return (run_dir / METRICS_FILE).is_file()


def read_finished(run_dir: Path) -> RunResult:
    """The result of a finished run, read back from its folder (without the model)."""
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    return RunResult(
        name=run_dir.name,
        metrics={name: math.nan if metrics[name] is None else float(metrics[name]) for name in METRIC_NAMES},
        history=pd.read_csv(run_dir / HISTORY_FILE),
        graph=load_graph(run_dir / GRAPH_FILE),
        directory=run_dir,
    )


def write_run_files(run_dir: Path, history: pd.DataFrame, metrics: dict[str, float]) -> None:
    """``history.csv``, then ``metrics.json`` (the mark of a finished run); the resume state goes."""
    with atomic_path(run_dir / HISTORY_FILE) as temporary:
        history.to_csv(temporary, index=False)
    write_text_atomic(run_dir / METRICS_FILE, json.dumps(json_metrics(metrics), indent=2) + "\n")
    shutil.rmtree(run_dir / LAST_DIR, ignore_errors=True)


def _finish(
    name: str,
    history: list[dict[str, Any]],
    model: MultiLabelModel,
    graph: LabelGraph,
    config: RunConfig,
    run_dir: Path | None,
) -> RunResult:
    table = pd.DataFrame(history)
    metrics = {metric: float(history[-1][metric]) for metric in METRIC_NAMES}
    if run_dir is not None and is_main():
        with atomic_path(run_dir / GRAPH_FILE) as temporary:
            save_graph(graph, temporary)
        save_model(model, config, run_dir)  # seals the folder, graph.json included
        write_run_files(run_dir, table, metrics)
    return RunResult(name, metrics, table, graph, model, run_dir)


def _training_rows(train: FeatureSet) -> PrototypeSource:
    return lambda: (train.features, train.labels)


@dataclass
class _Run:
    """What both modes set up first: the config with the seed and word vectors, the model and
    label graph of the training rows (on the device), and the run's CPU generator."""

    config: RunConfig
    model: MultiLabelModel
    graph: LabelGraph
    device: torch.device
    generator: torch.Generator


def _start_run(
    config: RunConfig,
    seed: int,
    train_labels: np.ndarray,
    prototypes: PrototypeSource,
    backbone: torch.nn.Module | None,
    device: torch.device | None,
    scaler: FeatureScaler | None = None,
) -> _Run:
    """Seed everything, then build the run's model and label graph from its training rows."""
    device = device or resolve_device(config.train.device)
    seed_everything(seed, config.train.deterministic)
    config, vectors = with_word_vectors(with_seed(config, seed))
    model, graph = build_run_model(config, train_labels, vectors, prototypes, backbone, scaler)
    model.to(device)
    return _Run(config, model, graph, device, torch.Generator().manual_seed(seed))


def _fit_run(
    run: _Run,
    train_batches: Batches,
    test_batches: Batches,
    *,
    finetune: bool,
    name: str,
    run_dir: Path | None,
    progress: bool,
    metrics_fn: MetricsFunction = multilabel_metrics,
) -> RunResult:
    """Train the head (at ``train.lr_head``) and, with ``finetune``, the backbone in its own
    Adam group (at ``train.lr_backbone``); then save and return the run's result."""
    train_config = run.config.train
    model = run.model
    groups = {"head": list(model.head.parameters())}
    if finetune:
        groups["backbone"] = list(model.backbone.parameters())
    optimizer = make_optimizer(
        groups, {"head": train_config.lr_head, "backbone": train_config.lr_backbone}, train_config
    )
    trained = model if finetune else model.head
    objects = Resumable(trained, optimizer, make_scheduler(optimizer, train_config), run.generator)
    history = fit(
        training_module(trained, train_config, run.device),
        train_batches,
        test_batches,
        train_config,
        objects,
        run.device,
        name=name,
        run_dir=run_dir,
        progress=progress,
        metrics_fn=metrics_fn,
    )
    return _finish(name, history, run.model, run.graph, run.config, run_dir)


def train_on_features(
    config: RunConfig,
    train: FeatureSet,
    test: FeatureSet,
    *,
    seed: int = 0,
    prototypes: PrototypeSource | None = None,
    backbone: torch.nn.Module | None = None,
    name: str = "run",
    run_dir: Path | None = None,
    device: torch.device | None = None,
    progress: bool = False,
    metrics_fn: MetricsFunction = multilabel_metrics,
) -> RunResult:
    """Train a head on feature vectors (frozen mode) and evaluate it on the test rows each epoch.

    With ``train.scale_features`` (the default) the features are first scaled with the training
    rows' statistics (:class:`~mlfer.models.model.FeatureScaler`: standardised for a head with a
    bias, divided by their root mean square for the graph heads); the model keeps them
    (``model.feature_scaler``).

    The label graph comes from ``train.labels``; the visual prototypes from ``prototypes``
    (default: the single-label training rows); the loss from ``train.targets`` (default: the
    labels). Each epoch uses, per sample, the plain or the flipped feature at random when
    ``train.flipped`` is given and ``train.flip`` is on.

    Args:
        config: the run config; for feature vectors ``model.backbone=identity`` with
            ``model.feature_dim`` = D.
        train, test: the two sets of rows.
        seed: seeds the head's initialisation, the shuffling, the flips and dropout.
        prototypes: the source of the prototype features and labels.
        backbone: the backbone the features came from, stored in the saved model.
        name: the run's name in the history.
        run_dir: where the resume state and the outputs go; None keeps everything in memory.
        device: default: ``config.train.device``.
        progress: show tqdm progress bars.
        metrics_fn: what each epoch's history row records of the test pass (default: the nine
            metrics, which it must hold; ``bench/learning_curve.py`` scores a validation part so).
    """
    scaler = FeatureScaler(train.features.shape[1])
    if config.train.scale_features:
        scaler.fit(train.features, centre=head_class(config.model.head).has_bias)
    run = _start_run(config, seed, train.labels, prototypes or _training_rows(train), backbone, device, scaler)
    device, batch_size = run.device, run.config.train.batch_size
    scale = run.model.feature_scaler
    flipped = scale(train.flipped.to(device)) if train.flipped is not None and run.config.train.flip else None
    train_batches = ShardedBatches(
        FeatureBatches(
            scale(train.features.to(device)),
            target_tensor(train.labels if train.targets is None else train.targets, device),
            flipped,
            batch_size,
            run.generator,
        ),
        len(train.features),
        batch_size,
    )
    shard = ordered_shard(len(test.features), FEATURE_EVAL_CHUNK)
    test_batches = FeatureBatches(
        scale(test.features[shard].to(device)),
        target_tensor(test.labels[shard], device),
        None,
        FEATURE_EVAL_CHUNK,
    )
    return _fit_run(
        run,
        train_batches,
        test_batches,
        finetune=False,
        name=name,
        run_dir=run_dir,
        progress=progress,
        metrics_fn=metrics_fn,
    )


def train_finetune(
    config: RunConfig,
    data: LabelledData,
    partition: Partition,
    prototypes: PrototypeSource,
    *,
    seed: int = 0,
    backbone: torch.nn.Module | None = None,
    name: str = "run",
    run_dir: Path | None = None,
    device: torch.device | None = None,
    progress: bool = False,
) -> RunResult:
    """Train backbone and head end to end on images (finetune mode), each with its own
    learning rate, evaluating on the partition's test rows each epoch; the training targets
    follow ``train.soft_targets`` (:func:`~mlfer.train.targets.training_targets`).

    Args:
        config: the run config.
        data: a dataset of images.
        partition: which rows train and which test.
        prototypes: the source of the prototype features and labels (eq. 5).
        seed, backbone, name, run_dir, device, progress: as in :func:`train_on_features`.
    """
    targets = training_targets(data, partition.train, config.train)
    run = _start_run(config, seed, data.labels[partition.train], prototypes, backbone, device)
    batches: tuple[Batches, Batches]
    if run.config.train.resident:
        batches = resident_batches(data, partition, run.config.train, run.generator, run.device, targets)
    else:
        channels = run.config.model.in_channels
        batches = image_batches(data, partition, run.config.train, run.generator, channels, targets)
    return _fit_run(run, *batches, finetune=True, name=name, run_dir=run_dir, progress=progress)
