"""The engine on images: a tiny ResNet18 on synthetic faces, frozen (feature cache, hit on the
second run, corrupt entries rebuilt) and end to end (finetune), and evaluate on images."""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file
from test_train_features import one_thread  # noqa: F401  (autouse fixture)

import mlfer.train.features as features_module
from mlfer.core.config import ModelConfig, make_config
from mlfer.data import load_dataset
from mlfer.evaluation.metrics import METRIC_NAMES
from mlfer.models.backbones import build_backbone
from mlfer.models.checkpoint import load_model
from mlfer.train.cache import CacheWarning, FeatureCache
from mlfer.train.evaluation import evaluate_checkpoint
from mlfer.train.features import backbone_features
from mlfer.train.run_folder import train_runs

TINY = {"model.backbone": "resnet18", "train.image_size": 32, "train.epochs": 1, "model.mfb_k": 2, "model.mfb_o": 32}
PROTOTYPES = "synthetic:30?single_label=1"


@pytest.fixture(scope="module")
def faces():
    return load_dataset("synthetic:60")


@pytest.fixture
def extractions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the backbone passes over a dataset (one per feature extraction)."""
    calls: list[int] = []
    real = features_module.extract_features

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(features_module, "extract_features", counting)
    return calls


def test_frozen_run_caches_features_and_hits_the_cache_next_time(faces, tmp_path: Path, extractions: list[int]) -> None:
    config = make_config(None, {**TINY, "model.head": "svml-rgcn"}, dataset="synthetic:60", prototypes=PROTOTYPES)
    first = train_runs(config, tmp_path / "a", data=faces, cache_dir=tmp_path / "cache", progress=False)
    assert len(extractions) == 3  # plain, flipped, prototypes
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 3
    second = train_runs(config, tmp_path / "b", data=faces, cache_dir=tmp_path / "cache", progress=False)
    assert len(extractions) == 3
    assert second.runs[0].metrics == pytest.approx(first.runs[0].metrics, abs=1e-6)
    history = pd.read_csv(tmp_path / "a" / "history.csv")
    assert list(history.columns) == ["run", "epoch", "train_loss", "test_loss", "lr_head", *METRIC_NAMES]
    # The cached features are what the saved model computes: evaluate gives the final metrics.
    final = json.loads((tmp_path / "a" / "metrics.json").read_text())["runs"]["split-seed0"]
    evaluated = evaluate_checkpoint(tmp_path / "a", "synthetic:60", device="cpu")
    assert evaluated == pytest.approx(final, abs=1e-5)


def test_corrupt_or_truncated_cache_entries_are_rebuilt_with_a_warning(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    description = {"dataset": "x", "flip": False}
    values = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    cache.save(description, values)
    assert torch.equal(cache.load(description), values)
    path = cache.path(description)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40  # one bit of one feature
    path.write_bytes(bytes(data))
    with pytest.warns(CacheWarning, match="checksum"):
        assert cache.load(description) is None
    with pytest.warns(CacheWarning, match="checksum"):
        rebuilt, hit = cache.get_or_compute(description, lambda: values * 2)
    assert not hit and torch.equal(rebuilt, values * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(cache.get_or_compute(description, lambda: values)[0], values * 2)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.warns(CacheWarning, match="unreadable"):
        assert cache.load(description) is None


def test_the_cache_key_follows_the_backbone_weights(faces, tmp_path: Path, extractions: list[int]) -> None:
    few = faces.subset(np.arange(8))
    cache = FeatureCache(tmp_path / "cache")
    config = make_config(None, TINY).model
    trunk = build_backbone(config)

    def features(model_config: ModelConfig, seed: int) -> torch.Tensor:
        return backbone_features(
            trunk, few, model_config, 32, seed=seed, flip=False, cache=cache, device=torch.device("cpu")
        )

    first = features(config, seed=0)
    features(config, seed=1)
    assert len(extractions) == 2  # random weights: each seed initialises its own trunk
    weights = tmp_path / "trunk.safetensors"
    save_file(trunk.state_dict(), str(weights))
    from_file = dataclasses.replace(config, backbone_weights=str(weights))
    assert torch.equal(features(from_file, seed=0), first)
    features(from_file, seed=1)
    assert len(extractions) == 3  # a weights file: the seed does not change the features
    os.utime(weights, ns=(0, 0))  # the same file, touched
    features(from_file, seed=0)
    assert len(extractions) == 4


def test_finetune_trains_the_backbone_with_its_own_learning_rate(faces, tmp_path: Path) -> None:
    config = make_config(
        None,
        {**TINY, "model.head": "baseline", "train.mode": "finetune", "train.lr_backbone": 1e-3},
        dataset="synthetic:60",
    )
    result = train_runs(config, tmp_path / "out", data=faces, cache_dir=tmp_path / "cache", progress=False)
    history = pd.read_csv(tmp_path / "out" / "history.csv")
    assert history[["lr_head", "lr_backbone"]].iloc[0].tolist() == [2e-4, 1e-3]
    assert torch.isfinite(torch.tensor(history[["train_loss", "test_loss"]].to_numpy())).all()
    torch.manual_seed(0)  # the run's seed: the trunk it started from
    untrained = build_backbone(config.model).state_dict()
    trained = result.runs[0].model
    assert trained is not None
    moved = [
        key
        for key, value in trained.backbone.state_dict().items()
        if value.is_floating_point() and not torch.equal(value.cpu(), untrained[key])
    ]
    assert "body.conv1.weight" in moved and "body.layer4.1.conv2.weight" in moved
    saved = load_model(tmp_path / "out").state_dict()
    assert all(torch.equal(saved[key], value.cpu()) for key, value in trained.state_dict().items())
    assert not list((tmp_path / "cache").glob("*"))  # a baseline needs no prototype features
