"""A model carries its preprocessing: defaults in memory, the folder's values after loading."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from builders import unseal
from mlfer.core.config import ModelConfig, RunConfig, TrainConfig, make_config
from mlfer.core.errors import MlferError
from mlfer.data.normalisation import GREY_MEAN, GREY_STD, IMAGENET_MEAN, IMAGENET_STD
from mlfer.data.transforms import eval_batch
from mlfer.evaluation.thresholds import save_thresholds
from mlfer.models.checkpoint import load_model, save_model
from mlfer.models.model import build_model
from mlfer.models.package import seal
from mlfer.models.preprocessing import FRAMING_FILE, Preprocessing
from mlfer.train.run_model import build_run_model

CONFIG = ModelConfig(backbone="identity", feature_dim=8, head="baseline")


def faces(count: int = 3, size: int = 40) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)


def test_defaults_are_the_training_ones() -> None:
    preprocessing = Preprocessing()
    assert preprocessing.image_size == 224 == TrainConfig().image_size
    assert (preprocessing.channels, preprocessing.mean, preprocessing.std) == (3, IMAGENET_MEAN, IMAGENET_STD)
    assert preprocessing.thresholds == (0.5,) * 6
    np.testing.assert_array_equal(preprocessing.threshold_array(), np.full(6, 0.5))
    assert build_model(CONFIG).preprocessing == preprocessing
    assert build_model(CONFIG, preprocessing=Preprocessing(48)).preprocessing.image_size == 48


def test_batch_resizes_and_normalises_like_evaluation() -> None:
    batch = Preprocessing(32).batch(faces())
    assert batch.shape == (3, 3, 32, 32)
    torch.testing.assert_close(batch, eval_batch(faces(), 32))
    plain = Preprocessing(40, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)).batch(faces())
    expected = (torch.from_numpy(faces()).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(plain, expected)


def test_grey_models_get_luminance_faces() -> None:
    grey = Preprocessing(40, channels=1)
    assert (grey.mean, grey.std) == (GREY_MEAN, GREY_STD)
    batch = grey.batch(faces())
    red, green, blue = torch.from_numpy(faces()).permute(3, 0, 1, 2).float()
    luminance = (0.299 * red + 0.587 * green + 0.114 * blue).round().unsqueeze(1) / 255
    assert batch.shape == (3, 1, 40, 40)
    torch.testing.assert_close(batch, (luminance - GREY_MEAN[0]) / GREY_STD[0], atol=0.02, rtol=0)


def test_a_saved_grey_model_loads_as_grey(tmp_path: Path) -> None:
    config = ModelConfig(backbone="resnet18", stem="small", in_channels=1, head="baseline")
    save_model(build_model(config), RunConfig(model=config, train=TrainConfig(image_size=48)), tmp_path / "grey")
    model = load_model(tmp_path / "grey")
    assert model.preprocessing == Preprocessing(48, channels=1)
    assert model.preprocessing.batch(faces()).shape == (3, 1, 48, 48)
    assert model(model.preprocessing.batch(faces())).shape == (3, 6)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"image_size": 0}, "image_size"),
        ({"channels": 2, "mean": (0.5, 0.5), "std": (0.5, 0.5)}, "channels"),
        ({"channels": 1, "mean": (0.5, 0.5, 0.5)}, "mean"),
        ({"mean": (0.5, 0.5)}, "mean"),
        ({"std": (0.2, 0.0, 0.2)}, "std"),
        ({"thresholds": (0.5,) * 5}, "thresholds"),
        ({"thresholds": (0.5,) * 5 + (1.5,)}, "thresholds"),
    ],
)
def test_bad_values_are_refused(settings: dict[str, object], field: str) -> None:
    with pytest.raises(MlferError) as raised:
        Preprocessing(**settings)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_a_saved_model_loads_with_its_image_size_and_thresholds(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    save_model(build_model(CONFIG), RunConfig(model=CONFIG, train=TrainConfig(image_size=48)), folder)
    assert load_model(folder).preprocessing == Preprocessing(48)
    save_thresholds(folder, [0.3, 0.4, 0.5, 0.6, 0.7, 0.2])
    seal(folder)
    assert load_model(folder).preprocessing.thresholds == (0.3, 0.4, 0.5, 0.6, 0.7, 0.2)
    assert load_model(folder, thresholds="tuned").preprocessing == load_model(folder).preprocessing
    assert load_model(folder, thresholds="default").preprocessing == Preprocessing(48)
    with pytest.raises(MlferError, match="choose default, tuned or auto"):
        load_model(folder, thresholds="best")


def test_a_trained_model_knows_its_training_image_size() -> None:
    config = make_config(None, {"model.backbone": "identity", "model.feature_dim": 8, "train.image_size": 48})
    labels = np.eye(6, dtype=np.uint8)[np.arange(30) % 6]
    model, _ = build_run_model(config, labels, np.zeros((6, 50)), lambda: (torch.randn(30, 8), labels))
    assert model.preprocessing == dataclasses.replace(Preprocessing(), image_size=48)


def test_a_model_folder_carries_its_alignment_template(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    save_model(build_model(CONFIG), RunConfig(model=CONFIG, train=TrainConfig(image_size=48)), folder)
    assert load_model(folder).preprocessing.template is None  # mlfer's own
    points = [[70.5, 89.7], [154.6, 85.2], [113.9, 172.2]]
    (folder / FRAMING_FILE).write_text(json.dumps({"template": points, "source": "test"}))
    seal(folder)
    assert load_model(folder).preprocessing.template == tuple(map(tuple, points))
    (folder / FRAMING_FILE).write_text(json.dumps({"template": points[:2]}))
    with pytest.raises(MlferError, match=f"{FRAMING_FILE}.*three finite"):
        seal(folder)
    (folder / FRAMING_FILE).write_text("{")
    with pytest.raises(MlferError, match=f"{FRAMING_FILE}.*not valid JSON"):
        load_model(unseal(folder))
