"""Builders shared by tests of several packages: small feature datasets and configs, and
small untrained checkpoint folders. Imported as ``builders`` (pytest's pythonpath has tests/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from mlfer.core.config import ModelConfig, RunConfig, TrainConfig, make_config, parse_overrides
from mlfer.data import LabelledData
from mlfer.models.checkpoint import save_model
from mlfer.models.model import build_model
from mlfer.models.package import MANIFEST_FILE
from mlfer.train.run_model import data_overrides

#: A small graph head that learns fast, so that a test epoch takes milliseconds; a resume
#: state after every epoch (the resume tests kill between them).
SMALL = ["model.mfb_k=2", "model.mfb_o=32", "train.lr_head=0.01", "train.save_minutes=0"]


def write_features(path: Path, rows: int = 240, dim: int = 16, split: bool = True, seed: int = 0) -> Path:
    """An npz of features linear in the labels plus noise; 48 rows carry one label each."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((rows, 6)) < 0.3).astype(np.uint8)
    labels[:48] = np.eye(6, dtype=np.uint8)[np.arange(48) % 6]
    features = labels @ rng.normal(size=(6, dim)) + 0.5 * rng.normal(size=(rows, dim))
    arrays = {"features": features.astype(np.float32), "labels": labels}
    if split:
        arrays["split"] = np.where(np.arange(rows) % 5 == 4, "test", "train")
    np.savez(path, **arrays)
    return path


def small_config(data: LabelledData, *overrides: str, epochs: int = 6) -> RunConfig:
    """A config fitted to a feature dataset, with :data:`SMALL` and ``overrides``."""
    values = {**data_overrides(data), "train.epochs": epochs, **parse_overrides([*SMALL, *overrides])}
    return make_config(None, values, dataset=data.spec)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread: these tiny models only lose time to thread hand-offs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


NO_FACE = "free-mountain-vector-01.jpg"
IMAGE_SIZE = 64


def make_checkpoint(directory: Path, head: str = "svml-rgcn", image_size: int = IMAGE_SIZE, seed: int = 0) -> Path:
    """Save an untrained ResNet18 model with random graph inputs (small MFB) as a checkpoint folder."""
    torch.manual_seed(seed)
    config = ModelConfig(backbone="resnet18", head=head, mfb_k=2, mfb_o=64)
    relations = (torch.rand(2, 6, 6) > 0.5).float()
    model = build_model(config, relations, torch.randn(6, 50), torch.randn(6, 512))
    save_model(model, RunConfig(model=config, train=TrainConfig(image_size=image_size)), directory)
    return directory


def unseal(directory: Path) -> Path:
    """A model folder as mlfer wrote it before manifests (and other tools write it): no
    ``manifest.json``, so that only its weights' own checksum guards it."""
    (directory / MANIFEST_FILE).unlink()
    return directory
