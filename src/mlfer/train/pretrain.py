"""Pretraining a backbone as a single-label six-way expression classifier.

The paper's backbone is "ResNet50 trained on RAF-Basic": a trunk trained with cross-entropy
on basic-expression images. :func:`pretrain_backbone` does that on any dataset whose rows
carry one basic expression each (rows with none or several are left out) and writes the
trunk to ``OUT/backbone.safetensors``, for ``model.backbone_weights=OUT/backbone.safetensors``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from mlfer.core.config import RunConfig
from mlfer.core.errors import MlferError
from mlfer.core.expressions import NUM_EXPRESSIONS
from mlfer.core.fileio import atomic_path
from mlfer.data import LabelledData, load_dataset
from mlfer.data.dataset import single_label_rows
from mlfer.models.backbones import build_backbone
from mlfer.runtime.reproduce import resolve_device, seed_everything
from mlfer.train.features import image_batches
from mlfer.train.fitting import write_run_files
from mlfer.train.loop import Evaluation, fit, make_optimizer, make_scheduler
from mlfer.train.run_folder import prepare_out_dir, resumed_config
from mlfer.train.run_model import check_fits
from mlfer.train.state import Resumable

BACKBONE_FILE = "backbone.safetensors"

#: Pretraining settings that differ from the head training defaults (``--set`` overrides them):
#: the new classifier at 1e-3, the trunk at 1e-4, 20 epochs, lr / 10 after 8 and 16.
PRETRAIN_DEFAULTS: dict[str, Any] = {
    "model.backbone": "resnet50",
    "model.head": "baseline",
    "train.mode": "finetune",
    "train.epochs": 20,
    "train.lr_head": 1e-3,
    "train.lr_backbone": 1e-4,
    "train.lr_step": 8,
}


@dataclass
class PretrainResult:
    """The test accuracy after the last epoch, the per-epoch history, the weights file."""

    accuracy: float
    history: pd.DataFrame
    weights: Path


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    r"""Softmax cross-entropy :math:`-\log \mathrm{softmax}(\hat{y})_{c}` of the one label ``c``
    of each one-hot row of ``targets``, averaged over the batch.

    Args:
        logits: (B, C) scores.
        targets: (B, C) one-hot labels.
    """
    return F.cross_entropy(logits, targets.argmax(dim=1))


def accuracy(evaluation: Evaluation) -> dict[str, float]:
    """Share of test rows whose highest logit is their label."""
    hits = evaluation.logits.argmax(dim=1) == evaluation.targets.argmax(dim=1)
    return {"accuracy": float(hits.float().mean())}


def single_label_subset(data: LabelledData) -> LabelledData:
    """The rows of ``data`` with exactly one basic expression (a warning counts the others)."""
    rows = single_label_rows(data.labels)
    if len(rows) == 0:
        raise MlferError(
            "no row carries exactly one basic expression: pretraining needs single-label images", field=data.spec
        )
    if len(rows) < len(data):
        warnings.warn(f"left out {len(data) - len(rows)} rows of {data.spec} without exactly one label", stacklevel=2)
    return data.subset(rows)


def pretrain_backbone(
    config: RunConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    data: LabelledData | None = None,
    progress: bool = True,
) -> PretrainResult:
    """Train ``config.model.backbone`` with a linear six-way classifier by cross-entropy.

    Trains on the official training split (or all folds but the first) and reports the
    accuracy on the test split (or the first fold). Writes ``config.yaml``, ``history.csv``,
    ``metrics.json`` (``accuracy``) and the trunk weights ``backbone.safetensors`` to
    ``out_dir``; the resume state lives in ``out_dir/last/`` until the end.

    Args:
        config: dataset, backbone (``backbone_weights`` is the starting point) and training
            settings; the trunk trains at ``lr_backbone``, the classifier at ``lr_head``.
        out_dir: the output folder.
        resume: continue the pretraining already in ``out_dir``.
        data: the dataset, if already loaded.
        progress: show tqdm progress bars.
    """
    out_dir = Path(out_dir)
    data = single_label_subset(data if data is not None else load_dataset(config.dataset))
    check_fits(config, data)
    partition = data.partitions(config.folds, seed=0)[0]
    device = resolve_device(config.train.device)
    config = resumed_config(out_dir, config, resume)
    prepare_out_dir(out_dir, config, resume)
    seed_everything(config.train.seed, config.train.deterministic)
    trunk = build_backbone(config.model)
    classifier = nn.Linear(config.model.out_features, NUM_EXPRESSIONS)
    network = nn.Sequential(trunk, classifier).to(device)
    generator = torch.Generator().manual_seed(config.train.seed)
    optimizer = make_optimizer(
        {"head": list(classifier.parameters()), "backbone": list(trunk.parameters())},
        {"head": config.train.lr_head, "backbone": config.train.lr_backbone},
        config.train,
    )
    objects = Resumable(network, optimizer, make_scheduler(optimizer, config.train), generator)
    train_batches, test_batches = image_batches(data, partition, config.train, generator, config.model.in_channels)
    history = fit(
        network,
        train_batches,
        test_batches,
        config.train,
        objects,
        device,
        name="pretrain",
        run_dir=out_dir,
        progress=progress,
        loss_fn=cross_entropy,
        metrics_fn=accuracy,
    )
    weights = out_dir / BACKBONE_FILE
    with atomic_path(weights) as temporary:
        state = {key: value.detach().contiguous().cpu() for key, value in trunk.state_dict().items()}
        save_file(state, str(temporary), metadata={"format": "mlfer-backbone", "backbone": config.model.backbone})
    final = float(history[-1]["accuracy"])
    write_run_files(out_dir, pd.DataFrame(history), {"accuracy": final})
    return PretrainResult(final, pd.DataFrame(history), weights)
