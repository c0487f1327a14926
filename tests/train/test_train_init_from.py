"""``train.init_from``: a run starts from a model folder's weights (backbone, scaler, head),
refuses another architecture naming the folder and tensor, loads the packaged float16 model,
and a resumed run continues from ``last/``, not from the folder again."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from builders import one_thread, small_config, write_features  # noqa: F401  (one_thread: autouse fixture)
from mlfer.core.config import load_config, make_config
from mlfer.core.errors import MlferError
from mlfer.data import LabelledData, load_dataset
from mlfer.data.transforms import eval_transform
from mlfer.models.checkpoint import load_model, save_model
from mlfer.models.package import CONFIG_FILE
from mlfer.models.shipped import shipped_model_dir
from mlfer.train import loop, run_folder
from mlfer.train.features import extract_features
from mlfer.train.fitting import FeatureSet
from mlfer.train.run_folder import train_runs
from mlfer.train.run_model import build_run_model, with_word_vectors


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> LabelledData:
    return load_dataset(f"features:{write_features(tmp_path_factory.mktemp('data') / 'f.npz')}")


@pytest.fixture(scope="module")
def start(features: LabelledData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained model folder (frozen mode on feature vectors)."""
    out = tmp_path_factory.mktemp("start") / "out"
    train_runs(small_config(features, epochs=4), out, data=features, progress=False)
    return out


def assert_same_state(found: torch.nn.Module, expected: torch.nn.Module) -> None:
    mine, theirs = found.state_dict(), expected.state_dict()
    assert mine.keys() == theirs.keys()
    for key, value in theirs.items():
        assert mine[key].dtype == torch.float32 or not value.is_floating_point(), key
        torch.testing.assert_close(mine[key], value.to(mine[key].dtype), rtol=0, atol=0, msg=key)


def test_a_run_starts_from_the_folder_s_weights(features: LabelledData, start: Path, tmp_path: Path) -> None:
    frozen = ["train.lr_head=0", f"train.init_from={start}"]
    run = train_runs(small_config(features, *frozen, epochs=1), tmp_path / "b", data=features, progress=False)
    assert_same_state(load_model(tmp_path / "b"), load_model(start))
    fresh = train_runs(small_config(features, "train.lr_head=0", epochs=1), tmp_path / "c", data=features)
    assert run.runs[0].metrics != fresh.runs[0].metrics  # without init_from the untrained head scores otherwise


def test_another_architecture_is_refused_naming_the_folder_and_tensor(
    features: LabelledData, start: Path, tmp_path: Path
) -> None:
    config = small_config(features, "model.mfb_o=16", f"train.init_from={start}")
    with pytest.raises(MlferError, match=r"head\.fusion\.\S+ is of shape \[\d+(, \d+)*\] there, of shape") as caught:
        train_runs(config, tmp_path / "out", data=features, progress=False)
    assert caught.value.field == "train.init_from" and caught.value.path == str(start)


def test_the_packaged_float16_model_starts_a_finetune_run_of_its_config() -> None:
    packaged = shipped_model_dir()
    config = load_config(packaged / CONFIG_FILE)
    model_config = dataclasses.replace(config.model, backbone_weights=None)  # a path of the machine it was made on
    config = dataclasses.replace(
        config, model=model_config, train=dataclasses.replace(config.train, init_from=str(packaged))
    )
    config, vectors = with_word_vectors(config)
    labels = np.eye(6, dtype=np.uint8)[np.arange(12) % 6]
    model, _ = build_run_model(config, labels, vectors, lambda: (torch.randn(12, 512), labels))
    assert config.train.mode == "finetune"
    packaged_model = load_model(packaged)
    packaged_model.logit_scaling.set(torch.ones(6), torch.zeros(6))  # its calibration is not carried over
    assert_same_state(model, packaged_model)


def test_frozen_features_on_images_come_from_the_folder_s_backbone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faces = load_dataset("synthetic:30")
    tiny = {"model.backbone": "resnet18", "model.head": "baseline", "train.image_size": 32, "train.epochs": 1}
    tuned = {**tiny, "train.mode": "finetune", "train.lr_backbone": 0.05, "train.workers": 0}
    train_runs(make_config(None, tuned, dataset=faces.spec), tmp_path / "a", data=faces, progress=False)
    seen: list[FeatureSet] = []
    real = run_folder.train_on_features

    def spying(config, train, *args, **kwargs):
        seen.append(train)
        return real(config, train, *args, **kwargs)

    monkeypatch.setattr(run_folder, "train_on_features", spying)
    config = make_config(None, {**tiny, "train.init_from": str(tmp_path / "a")}, dataset=faces.spec)
    train_runs(config, tmp_path / "b", data=faces, cache_dir=tmp_path / "cache", progress=False)
    started = load_model(tmp_path / "a").backbone
    expected = extract_features(started, faces, eval_transform(32), torch.device("cpu"))
    (partition,) = faces.partitions()
    torch.testing.assert_close(seen[0].features, expected[partition.train], rtol=1e-4, atol=1e-4)


class Stop(Exception):
    """Ends a run after a given test pass, as a kill would."""


def test_a_resumed_run_continues_from_last_not_from_the_folder(
    features: LabelledData, start: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = small_config(features, f"train.init_from={start}", "train.deterministic=true", epochs=4)
    whole = train_runs(config, tmp_path / "whole", data=features, progress=False)
    real, passes = loop.evaluate_batches, []

    def stopping(*args, **kwargs):
        passes.append(1)
        if len(passes) == 3:
            raise Stop
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "evaluate_batches", stopping)
    with pytest.raises(Stop):
        train_runs(config, tmp_path / "killed", data=features, progress=False)
    monkeypatch.undo()
    resumed = train_runs(config, tmp_path / "killed", data=features, resume=True, progress=False)
    assert list(resumed.runs[0].history["epoch"]) == [1, 2, 3, 4]
    assert resumed.runs[0].history.equals(whole.runs[0].history)


def test_a_calibration_of_the_folder_is_not_carried_into_the_run(features: LabelledData, tmp_path: Path) -> None:
    """A fitted calibration belongs to the model it was fitted on: a warm-started run, which
    trains on, starts uncalibrated (identity scaling)."""
    start = tmp_path / "start"
    train_runs(small_config(features, epochs=1), start, data=features, progress=False)
    calibrated = load_model(start)
    calibrated.logit_scaling.set(torch.full((6,), 0.5), torch.full((6,), 0.25))
    save_model(calibrated, load_config(start / CONFIG_FILE), start)
    assert float(load_model(start).logit_scaling.scale[0]) == 0.5
    train_runs(small_config(features, "train.lr_head=0", f"train.init_from={start}", epochs=1), tmp_path / "b")
    warm = load_model(tmp_path / "b").logit_scaling
    assert torch.equal(warm.scale, torch.ones(6)) and torch.equal(warm.bias, torch.zeros(6))
