"""``mlfer predict --annotate``: picture names too long, a folder in a picture's place, the
annotated folder left out of the inputs of later runs, and a picture without a face marked."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from builders import make_checkpoint
from mlfer.cli import main
from mlfer.data.images import OUTPUT_MARK
from mlfer.inference.drawing import MAX_NAME_BYTES, picture_name
from mlfer.inference.inputs import Frame


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return make_checkpoint(tmp_path_factory.mktemp("checkpoint"))


def _predict(checkpoint: Path, inputs: list[Path], out: Path, annotate: Path) -> int:
    return main(
        ["predict", "--checkpoint", str(checkpoint), *map(str, inputs), "--out", str(out), "--annotate", str(annotate)]
    )


def _pictures(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))


@pytest.mark.parametrize("stem", ["a" * 246, "é" * 123, "ü" * 122 + "x", "b" * 251])
def test_names_too_long_are_cut_with_a_stable_hash(stem: str) -> None:
    for video in (False, True):
        frame = Frame(f"/photos/{stem}.{'mp4' if video else 'jpg'}", 12, None)
        name = picture_name(frame, 3)
        assert len(os.fsencode(name)) <= MAX_NAME_BYTES and name.startswith("000003-")
        assert name.endswith("-frame12.jpg" if video else ".jpg")
        assert name == picture_name(frame, 3)  # the same on every run
        other = picture_name(Frame(f"/photos/{stem[:-1]}c.jpg", 0, None), 3)
        assert other != picture_name(Frame(f"/photos/{stem}.jpg", 0, None), 3)
    assert picture_name(Frame("/photos/short.jpg", 0, None), 7) == "000007-short.jpg"


def test_a_long_name_and_a_folder_in_the_way_are_that_input_s_problem(
    checkpoint: Path, shared_data: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    long_name = photos / ("p" * 246 + ".jpg")  # legal: 250 bytes
    shutil.copy(shared_data / "faces" / "single_face.jpg", long_name)
    blocked = photos / "blocked.jpg"
    shutil.copy(shared_data / "faces" / "0-f1-su-ph.jpg", blocked)
    later = photos / "later.jpg"
    shutil.copy(shared_data / "faces" / "0-f15-hao-ph.jpg", later)
    annotated = tmp_path / "annotated"
    (annotated / "000000-blocked.jpg").mkdir(parents=True)  # sorted order: blocked, later, ppp...
    out = tmp_path / "faces.csv"
    assert _predict(checkpoint, [photos], out, annotated) == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == 3
    errors = dict(zip(table["input"].map(lambda name: Path(name).name), table["error"]))
    assert "a folder is in its place" in errors["blocked.jpg"] and "000000-blocked.jpg" in errors["blocked.jpg"]
    assert errors["later.jpg"] == "" and errors[long_name.name] == ""
    assert len(_pictures(annotated)) == 3  # the folder in the way and two pictures, one of them hashed
    assert any(
        len(os.fsencode(name)) <= MAX_NAME_BYTES and name.startswith("000002-p") for name in _pictures(annotated)
    )


def test_an_annotate_folder_inside_the_input_folder_is_not_read_back(
    checkpoint: Path, shared_data: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("0-f1-su-ph.jpg", "single_face.jpg"):
        shutil.copy(shared_data / "faces" / name, photos / name)
    annotated = photos / "annotated"
    for run in range(2):
        out = tmp_path / f"run{run}.csv"
        assert _predict(checkpoint, [photos], out, annotated) == 0
        assert len(pd.read_csv(out)) == 2, f"run {run}"
    assert (annotated / OUTPUT_MARK).is_file() and len(_pictures(annotated)) == 2
    # Without --annotate too: the folder is marked as mlfer's output.
    assert main(["predict", "--checkpoint", str(checkpoint), str(photos), "--out", str(tmp_path / "plain.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "plain.csv")) == 2


def test_a_picture_without_a_face_is_saved_marked(checkpoint: Path, shared_data: Path, tmp_path: Path) -> None:
    landscape = shared_data / "faces" / "free-mountain-vector-01.jpg"
    annotated = tmp_path / "annotated"
    assert _predict(checkpoint, [landscape], tmp_path / "t.csv", annotated) == 0
    (name,) = _pictures(annotated)
    with Image.open(annotated / name) as saved, Image.open(landscape) as original:
        assert saved.size == original.size
        difference = np.abs(np.asarray(saved, float) - np.asarray(original.convert("RGB"), float)).mean(axis=2)
    height, width = difference.shape
    assert (difference[: height // 10, : width // 10] > 60).mean() > 0.05  # the "no face" label, top left
    assert (difference[height // 4 :, width // 4 :] > 60).mean() < 0.001  # and nothing else
