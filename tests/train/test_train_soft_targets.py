"""``train.soft_targets``: the training targets blend the label distribution into the labels
(frozen, finetune and resident paths); the test pass, the graph and the metrics keep the labels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from builders import one_thread, small_config, write_features  # noqa: F401  (one_thread: autouse fixture)
from mlfer.core.config import TrainConfig, make_config
from mlfer.core.errors import MlferError
from mlfer.data import LabelledData, load_dataset
from mlfer.train import fitting
from mlfer.train.run_folder import train_runs
from mlfer.train.targets import training_targets

TINY = {
    "model.backbone": "resnet18",
    "model.head": "baseline",
    "train.image_size": 32,
    "train.epochs": 1,
    "train.workers": 0,
    "train.soft_targets": 0.5,
}


def with_distribution(data: LabelledData, seed: int = 0) -> LabelledData:
    """``data`` with a random label distribution (rows sum to at most 1)."""
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.ones(7), size=len(data))[:, :6].astype(np.float32)
    return dataclasses.replace(data, distribution=shares)


def assert_same_rows(found: torch.Tensor, expected: np.ndarray) -> None:
    """The rows of ``found`` are those of ``expected``, in any order (batches come shuffled)."""

    def ordered(rows: np.ndarray) -> np.ndarray:
        return rows[np.lexsort(np.round(rows, 3).T[::-1])]

    assert found.shape == expected.shape
    np.testing.assert_allclose(ordered(found.numpy()), ordered(np.asarray(expected, dtype=np.float32)), atol=1e-6)


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> dict[str, torch.Tensor]:
    """The targets of one pass of the training and of the test batches each run trains on."""
    seen: dict[str, torch.Tensor] = {}
    real = fitting.fit

    def spying(module, train_batches, test_batches, *args, **kwargs):
        seen["train"] = torch.cat([targets for _, targets in train_batches]).cpu()
        seen["test"] = torch.cat([targets for _, targets in test_batches]).cpu()
        return real(module, train_batches, test_batches, *args, **kwargs)

    monkeypatch.setattr(fitting, "fit", spying)
    return seen


def test_soft_targets_must_lie_in_0_1() -> None:
    for value in ("1.5", "-0.1"):
        with pytest.raises(MlferError) as caught:
            make_config(None, [f"train.soft_targets={value}"])
        assert caught.value.field == "train.soft_targets"
    assert make_config(None, ["train.soft_targets=1"]).train.soft_targets == 1.0


def test_targets_are_the_labels_at_0_and_the_blend_above() -> None:
    data = with_distribution(load_dataset("synthetic:20"))
    rows = np.array([3, 0, 7])
    plain = training_targets(data, rows, TrainConfig())
    assert plain.dtype == np.float32
    np.testing.assert_array_equal(plain, data.labels[rows])
    half = training_targets(data, rows, TrainConfig(soft_targets=0.5))
    np.testing.assert_allclose(half, 0.5 * data.labels[rows] + 0.5 * data.distribution[rows], rtol=1e-6)
    np.testing.assert_allclose(training_targets(data, rows, TrainConfig(soft_targets=1)), data.distribution[rows])


def test_unlabelled_ferplus_faces_train_on_their_share_of_the_votes(tmp_path: Path) -> None:
    """keep_unlabelled keeps a neutral face (all-zero labels) with its vote shares as its distribution."""
    header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    rows = [("fer0000000.png", "0,8,2,0,0,0,0,0,0,0"), ("fer0000001.png", "6,1,1,0,0,0,0,0,2,0")]
    for folder in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        (tmp_path / folder).mkdir()
    for name, _ in rows:
        Image.fromarray(np.zeros((48, 48), dtype=np.uint8)).save(tmp_path / "FER2013Train" / name)
    lines = [header, *(f"Training,{name},{votes}" for name, votes in rows)]
    (tmp_path / "fer2013new.csv").write_text("\n".join(lines) + "\n")
    data = load_dataset(f"ferplus:{tmp_path}?keep_unlabelled=1")
    assert not data.labels[1].any()
    targets = training_targets(data, np.arange(2), TrainConfig(soft_targets=0.5))
    # RAF order: surprise, fear, disgust, happiness, sadness, anger
    np.testing.assert_allclose(targets, [[0.6, 0, 0, 0.9, 0, 0], [0.05, 0, 0, 0.05, 0, 0]], rtol=1e-6)


def test_a_dataset_without_a_distribution_is_refused_before_training(tmp_path: Path) -> None:
    data = load_dataset(f"features:{write_features(tmp_path / 'f.npz')}")
    config = small_config(data, "train.soft_targets=0.3")
    with pytest.raises(MlferError, match="has no label distribution") as caught:
        train_runs(config, tmp_path / "out", data=data, progress=False)
    assert caught.value.field == "train.soft_targets" and data.spec in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_0_trains_exactly_as_without_a_distribution(tmp_path: Path) -> None:
    data = load_dataset(f"features:{write_features(tmp_path / 'f.npz')}")
    config = small_config(data, epochs=3)
    plain = train_runs(config, tmp_path / "plain", data=data, progress=False)
    blended = train_runs(config, tmp_path / "zero", data=with_distribution(data), progress=False)
    assert blended.runs[0].history.equals(plain.runs[0].history)


@pytest.mark.parametrize("mode", ["features", "frozen", "finetune", "resident"])
def test_training_batches_carry_the_blend_and_test_batches_the_labels(
    mode: str, tmp_path: Path, batches: dict[str, torch.Tensor]
) -> None:
    if mode == "features":
        data = with_distribution(load_dataset(f"features:{write_features(tmp_path / 'f.npz', rows=60)}"))
        config = small_config(data, "train.soft_targets=0.5", epochs=1)
    else:
        data = with_distribution(load_dataset("synthetic:40"))
        settings = {**TINY, "train.mode": "frozen" if mode == "frozen" else "finetune"}
        config = make_config(None, {**settings, "train.resident": mode == "resident"}, dataset=data.spec)
    result = train_runs(config, tmp_path / "out", data=data, cache_dir=tmp_path / "cache", progress=False)
    (partition,) = data.partitions()
    blend = 0.5 * data.labels[partition.train] + 0.5 * data.distribution[partition.train]
    assert_same_rows(batches["train"], blend)
    assert_same_rows(batches["test"], data.labels[partition.test])
    np.testing.assert_array_equal(
        result.runs[0].graph.cooccurrence, data.labels[partition.train].T.astype(int) @ data.labels[partition.train]
    )
