"""Frozen mode scales features with the training rows' statistics and keeps them in the model, so
that the linear head is as good a judge as a logistic regression on the same features."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from builders import write_features
from mlfer.core.config import TrainConfig, make_config
from mlfer.data import load_dataset
from mlfer.evaluation.metrics import compute_metrics
from mlfer.models.checkpoint import load_model
from mlfer.train.fitting import FeatureSet, train_on_features
from mlfer.train.run_model import data_overrides


def scaled_features(tmp_path: Path, scale: float) -> Path:
    """:func:`write_features`, made non-negative like a histogram or a ReLU output, times ``scale``
    (JAFFE's LBP histograms average 0.004)."""
    path = write_features(tmp_path / "raw.npz", rows=400, dim=24, seed=3)
    arrays = dict(np.load(path))
    arrays["features"] = (np.maximum(arrays["features"] + 1.0, 0.0) * scale).astype(np.float32)
    out = tmp_path / f"scaled-{scale}.npz"
    np.savez(out, **arrays)
    return out


def split_sets(spec: str) -> tuple[FeatureSet, FeatureSet, dict]:
    data = load_dataset(spec)
    partition = data.partitions()[0]
    assert data.features is not None
    features = torch.as_tensor(data.features)
    train = FeatureSet(features[partition.train], data.labels[partition.train])
    test = FeatureSet(features[partition.test], data.labels[partition.test])
    return train, test, data_overrides(data)


def test_the_baseline_head_matches_a_logistic_regression_on_badly_scaled_features(tmp_path: Path) -> None:
    spec = f"features:{scaled_features(tmp_path, 0.004)}"
    train, test, overrides = split_sets(spec)
    settings = {**overrides, "model.head": "baseline", "train.epochs": 60, "train.lr_head": 5e-3}
    result = train_on_features(make_config(None, settings, dataset=spec), train, test)
    assert result.model is not None  # the baseline has a bias: its features are standardised
    torch.testing.assert_close(result.model.feature_scaler.shift, train.features.mean(dim=0))
    torch.testing.assert_close(result.model.feature_scaler.scale, train.features.std(dim=0, correction=0))
    logistic = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(C=0.1, max_iter=5000)))
    logistic.fit(train.features.numpy(), train.labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = compute_metrics(test.labels, logistic.predict_proba(test.features.numpy()))
    assert result.metrics["average_precision"] > reference["average_precision"] - 0.01
    as_read = train_on_features(
        make_config(None, {**settings, "train.scale_features": False}, dataset=spec), train, test
    )
    assert as_read.metrics["average_precision"] < result.metrics["average_precision"] - 0.05  # the fix matters


def test_the_statistics_travel_with_the_saved_model(tmp_path: Path) -> None:
    spec = f"features:{scaled_features(tmp_path, 0.01)}"
    train, test, overrides = split_sets(spec)
    config = make_config(None, {**overrides, "model.mfb_k": 2, "model.mfb_o": 32, "train.epochs": 2}, dataset=spec)
    result = train_on_features(config, train, test, run_dir=tmp_path / "run")
    model = load_model(tmp_path / "run")
    torch.testing.assert_close(model.feature_scaler.shift, torch.zeros(train.features.shape[1]))  # no bias: not centred
    torch.testing.assert_close(model.feature_scaler.scale, train.features.pow(2).mean(dim=0).sqrt())
    with torch.no_grad():
        probabilities = torch.sigmoid(model(test.features)).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        again = compute_metrics(test.labels, probabilities)
    assert abs(again["average_precision"] - result.metrics["average_precision"]) < 1e-6


def test_the_learning_rate_decays_by_the_paper_only_in_finetune_mode() -> None:
    assert TrainConfig(mode="finetune").decay_every() == 20
    assert TrainConfig(mode="frozen", epochs=80).decay_every() == 80  # no decay within the run
    assert TrainConfig(mode="frozen", lr_step=5).decay_every() == 5
