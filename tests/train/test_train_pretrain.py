"""``mlfer pretrain-backbone``: a tiny ResNet18 trained on single-label synthetic faces writes a
trunk that ``build_model`` loads as the backbone of a multi-label model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from test_train_features import one_thread  # noqa: F401  (autouse fixture)

import mlfer
from mlfer.cli import main
from mlfer.core.config import ModelConfig
from mlfer.models.model import build_model


def test_pretrained_trunk_loads_as_a_backbone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pretrained"
    args = ["pretrain-backbone", "--dataset", "synthetic:60?single_label=1", "--out", str(out), "--quiet"]
    for item in ("model.backbone=resnet18", "train.image_size=32", "train.epochs=2"):
        args += ["--set", item]
    assert main(args) == 0
    accuracy = json.loads((out / "metrics.json").read_text())["accuracy"]
    assert 0.0 <= accuracy <= 1.0
    assert f"test accuracy {accuracy:.4f}" in capsys.readouterr().out
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == ["run", "epoch", "train_loss", "test_loss", "lr_head", "lr_backbone", "accuracy"]
    assert history["accuracy"].iloc[-1] == pytest.approx(accuracy)
    assert not (out / "last").exists()

    weights = out / "backbone.safetensors"
    model = build_model(ModelConfig(backbone="resnet18", backbone_weights=str(weights), head="baseline"))
    saved = load_file(str(weights))
    loaded = model.backbone.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[key], loaded[key]) for key in saved)
    untrained = build_model(ModelConfig(backbone="resnet18", head="baseline")).backbone.state_dict()
    assert not torch.equal(saved["body.conv1.weight"], untrained["body.conv1.weight"])


def test_pretraining_needs_single_label_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    features = tmp_path / "f.npz"
    np.savez(features, features=np.zeros((4, 3), np.float32), labels=np.ones((4, 6), np.uint8))
    assert main(["pretrain-backbone", "--dataset", f"features:{features}", "--out", str(tmp_path / "o")]) == 2
    assert "exactly one basic expression" in capsys.readouterr().err


def test_a_grey_small_stem_trunk_pretrains_and_trains_a_grey_model(tmp_path: Path) -> None:
    """model.stem=small, in_channels=1 through pre-training, frozen features, finetuning and evaluation."""
    grey = ["model.backbone=resnet18", "model.stem=small", "model.in_channels=1", "train.image_size=24"]
    settings = [item for setting in [*grey, "train.epochs=1"] for item in ("--set", setting)]
    out = tmp_path / "pretrained"
    assert (
        main(["pretrain-backbone", "--dataset", "synthetic:40?single_label=1", "--out", str(out), "--quiet", *settings])
        == 0
    )
    trunk = load_file(str(out / "backbone.safetensors"))
    assert trunk["body.conv1.weight"].shape == (64, 1, 3, 3)
    weights = ["--model", "baseline", "--set", f"model.backbone_weights={out / 'backbone.safetensors'}"]
    for mode in ("frozen", "finetune"):
        run = tmp_path / mode
        assert (
            main(
                [
                    "train",
                    "--dataset",
                    "synthetic:40",
                    "--out",
                    str(run),
                    "--quiet",
                    *settings,
                    *weights,
                    "--set",
                    f"train.mode={mode}",
                ]
            )
            == 0
        )
        model = mlfer.load(run)
        assert model.preprocessing.channels == 1 and model.preprocessing.image_size == 24
        assert main(["evaluate", "--checkpoint", str(run), "--dataset", "synthetic:40"]) == 0
