"""Transforms on every image mode, and the torch Dataset that skips unreadable images."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from mlfer.core.config import Reframing
from mlfer.core.errors import MlferError
from mlfer.data import LabelledData, load_dataset
from mlfer.data.normalisation import GREY_MEAN, GREY_STD, IMAGENET_MEAN, IMAGENET_STD
from mlfer.data.torch_dataset import ImageDataset, UnreadableImageWarning, collate_skipping_failures
from mlfer.data.transforms import MID_GREY, eval_transform, train_transform


def _modes() -> dict[str, Image.Image]:
    grey = np.tile(np.arange(0, 240, 15, dtype=np.uint8), (12, 1))
    return {
        "L": Image.fromarray(grey),
        "RGBA": Image.fromarray(np.dstack([grey, grey, grey, np.full_like(grey, 128)])),
        "CMYK": Image.new("CMYK", (16, 12), (0, 255, 255, 0)),
        "I;16": Image.fromarray(grey.astype(np.uint16) * 256),
        "P": Image.fromarray(grey).convert("P"),
    }


@pytest.mark.parametrize("mode", sorted(_modes()))
def test_transforms_take_any_mode(mode):
    image = _modes()[mode]
    assert image.mode == mode
    for channels in (3, 1):
        for transform in (train_transform(8, channels=channels), eval_transform(8, channels=channels)):
            tensor = transform(image)
            assert tensor.shape == (channels, 8, 8) and tensor.dtype == torch.float32
            assert torch.isfinite(tensor).all()


def test_grey_transforms_give_normalised_luminance():
    tensor = eval_transform(4, channels=1)(Image.new("RGB", (10, 6), (255, 0, 128)))
    luminance = round(0.299 * 255 + 0.114 * 128) / 255
    torch.testing.assert_close(tensor[:, 0, 0], (torch.tensor([luminance]) - GREY_MEAN[0]) / GREY_STD[0])
    grey = Image.fromarray(np.full((6, 10), 77, np.uint8))
    torch.testing.assert_close(train_transform(4, channels=1)(grey), eval_transform(4, channels=1)(grey))


def test_eval_transform_normalises_with_imagenet_statistics():
    tensor = eval_transform(4)(Image.new("RGB", (10, 6), (255, 0, 128)))
    expected = (torch.tensor([1.0, 0.0, 128 / 255]) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(tensor[:, 0, 0], expected)
    # CMYK (0, 255, 255, 0) is RGB red (255, 0, 0) once converted
    red = eval_transform(4)(_modes()["CMYK"])
    assert red[1:].max() < 0 < red[0].min()


def test_train_transform_flips_horizontally_at_random():
    ramp = Image.fromarray(np.tile(np.arange(0, 256, 32, dtype=np.uint8), (8, 1)))
    plain = eval_transform(8)(ramp)
    torch.manual_seed(0)
    outputs = [train_transform(8)(ramp) for _ in range(20)]
    flipped = [torch.equal(output, plain.flip(-1)) for output in outputs]
    assert all(flip or torch.equal(output, plain) for flip, output in zip(flipped, outputs))
    assert 0 < sum(flipped) < 20


def _spot_centre(tensor: torch.Tensor) -> np.ndarray:
    """Row and column of the brightness-weighted centre of a grey face's pixels above level 160."""
    bright = (tensor[0] - (160 / 255 - GREY_MEAN[0]) / GREY_STD[0]).clamp(min=0).numpy()
    rows, cols = np.indices(bright.shape)
    return np.array([(rows * bright).sum(), (cols * bright).sum()]) / bright.sum()


def test_reframing_moves_a_face_within_its_bounds_and_fills_the_corners_grey():
    image = np.full((48, 48, 3), 40, dtype=np.uint8)
    image[11:13, 35:37] = 255  # a bright spot 17 px from the centre, up and to the right
    spot = Image.fromarray(image)
    reframing = Reframing(rotate=10, rescale=0.1, shift=0.05)
    assert train_transform(48, 1, flip=False)(spot).equal(eval_transform(48, channels=1)(spot))
    torch.manual_seed(0)
    outputs = [train_transform(48, 1, flip=False, reframing=reframing)(spot) for _ in range(30)]
    moves = np.array([np.linalg.norm(_spot_centre(output) - [11.5, 35.5]) for output in outputs])
    # rotation 17 * 2 sin 5 deg = 3.0 px, scale 1.7 px, shift 2.4 px on each axis: at most 8.1 px
    assert moves.max() < 8.5 and len(np.unique(moves.round(3))) == 30
    assert not Reframing() and reframing  # all zero: no change
    shrunk = train_transform(48, 1, flip=False, reframing=Reframing(rescale=0.5))
    grey = (MID_GREY / 255 - GREY_MEAN[0]) / GREY_STD[0]
    corners = [output[0, 0, 0] for output in (shrunk(spot) for _ in range(30))]
    assert any(abs(float(corner) - grey) < 1e-2 for corner in corners)


def _folder_with_a_corrupt_image(root: Path) -> Path:
    for index, name in enumerate(("happy/a.png", "happy/b.png", "sad/c.png", "sad/d.png")):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (10, 10), (index * 60, 0, 0)).save(root / name)
    (root / "sad" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return root


def test_corrupt_image_is_skipped_reported_once_and_listed(tmp_path):
    data = load_dataset(f"folder:{_folder_with_a_corrupt_image(tmp_path)}")
    broken = data.ids.index("sad/broken.jpg")
    dataset = ImageDataset(data, eval_transform(4))
    loader = DataLoader(dataset, batch_size=5, collate_fn=collate_skipping_failures)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = list(loader) + list(loader)
    reports = [warning for warning in caught if issubclass(warning.category, UnreadableImageWarning)]
    assert len(reports) == 1 and "broken.jpg" in str(reports[0].message)
    images, labels, rows = batches[0]
    assert images.shape == (4, 3, 4, 4) and broken not in rows.tolist()
    torch.testing.assert_close(labels, torch.from_numpy(data.labels[rows.numpy()]).float())
    assert dataset.failures == {broken: str(tmp_path / "sad" / "broken.jpg")}


def test_failures_in_worker_processes_reach_the_caller(tmp_path):
    data = load_dataset(f"folder:{_folder_with_a_corrupt_image(tmp_path)}")
    dataset = ImageDataset(data, eval_transform(4))
    loader = DataLoader(dataset, batch_size=1, num_workers=1, collate_fn=collate_skipping_failures)
    batches = list(loader)
    assert sum(batch is None for batch in batches) == 1
    assert list(dataset.failures.values()) == [str(tmp_path / "sad" / "broken.jpg")]


def test_in_memory_images_and_all_failed_batch():
    images = np.zeros((3, 6, 6, 3), dtype=np.uint8)
    images[1] = 255
    data = LabelledData(spec="memory", labels=np.eye(6)[:3], ids=["a", "b", "c"], images=images)
    image, label, row = ImageDataset(data, eval_transform(6))[1]
    assert image.shape == (3, 6, 6) and row == 1 and label.tolist() == [0, 1, 0, 0, 0, 0]
    assert collate_skipping_failures([None, None]) is None


def test_construction_decodes_nothing(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("mlfer.data.torch_dataset.read_image", lambda path: calls.append(path))
    paths = [tmp_path / f"{index:05d}.jpg" for index in range(10_000)]
    data = LabelledData(spec="many", labels=np.zeros((10_000, 6)), ids=[p.name for p in paths], paths=paths)
    dataset = ImageDataset(data, eval_transform(4))
    assert len(dataset) == 10_000 and calls == [] and dataset.failures == {}


def test_features_dataset_is_refused():
    data = LabelledData(spec="features:x.npz", labels=np.zeros((2, 6)), ids=["0", "1"], features=np.ones((2, 3)))
    with pytest.raises(MlferError, match="precomputed features"):
        ImageDataset(data, eval_transform(4))
