"""Pictures beyond OpenCV's limits: detection on a shrunk view, alignment on a crop, and
mlfer align's report. Detection runs in a child process: the old code aborted the process."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from faults import run_cli
from mlfer.core.errors import MlferError
from mlfer.faces import Face, align_face
from mlfer.faces.boundary import DETECT_MAX_SIDE, OPENCV_MAX_SIDE, detection_view, guarded

#: Shapes (height, width) that aborted MediaPipe (a side of 32,767 px or more) or lie at the edges.
SHAPES = [(100, 33_000), (33_000, 100), (2, 65_535), (65_535, 1), (1, 1), (1, 300), (3, OPENCV_MAX_SIDE + 1)]


def _face(x: float, y: float, eyes: float = 40.0) -> Face:
    return Face((x - eyes, y - eyes, 3 * eyes, 3 * eyes), 0.9, (x, y), (x + eyes, y), (x + eyes / 2, y + eyes))


def test_detection_view_shrinks_only_what_is_too_large() -> None:
    small = np.zeros((50, 80, 3), np.uint8)
    assert detection_view(small) is small
    for height, width in ((100, 33_000), (65_535, 1)):
        view = detection_view(np.zeros((height, width, 3), np.uint8))
        assert max(view.shape[:2]) == DETECT_MAX_SIDE and min(view.shape[:2]) >= 1


def test_predict_survives_every_extreme_shape(tmp_path: Path) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    for height, width in SHAPES:
        Image.new("RGB", (width, height), (128, 128, 128)).save(folder / f"{height}x{width}.png")
    out = tmp_path / "faces.csv"
    run_cli(["predict", str(folder), "--out", str(out)], tmp_path / "run", timeout=120).check_finished()
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == len(SHAPES) and not table["face_detected"].any() and (table["error"] == "").all()


def test_alignment_crops_pictures_wider_than_opencv_allows() -> None:
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, (100, 33_000, 3), dtype=np.uint8)
    aligned = align_face(wide, _face(30_000.0, 40.0, eyes=10.0), 48)  # scaled up: no shrinking first
    part = np.ascontiguousarray(wide[:, 29_800:30_300])
    expected = align_face(part, _face(200.0, 40.0, eyes=10.0), 48)
    assert np.abs(aligned.astype(int) - expected).max() <= 1  # fixed-point rounding of the shifted matrix
    longest = np.full((100, 65_535, 3), 77, np.uint8)  # shrunk by 0.8 first: still over the limit, then cropped
    assert (align_face(longest, _face(50_000.0, 50.0, eyes=20.0), 48)[10:30, 10:30] == 77).all()
    outside = align_face(np.full((2, 65_535, 3), 200, np.uint8), _face(100.0, 5000.0, eyes=10.0), 32)
    assert not outside.any()  # wholly outside the picture: black, as RAF-DB's borders


def test_guarded_names_the_input() -> None:
    def fails() -> None:
        raise ZeroDivisionError("boom")

    with pytest.raises(MlferError, match=r"^photo\.jpg: cannot analyse the picture \(ZeroDivisionError: boom\)"):
        guarded("photo.jpg", fails)
    with pytest.raises(MlferError, match="^own"):
        guarded("photo.jpg", lambda: (_ for _ in ()).throw(MlferError("own")))


def test_align_writes_its_report_past_a_picture_too_wide(shared_data: Path, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    Image.new("RGB", (33_000, 100), (120, 90, 80)).save(source / "wide.jpg", quality=80)
    shutil.copy(shared_data / "faces" / "single_face.jpg", source / "single.jpg")
    destination = tmp_path / "dst"
    run_cli(["align", str(source), str(destination)], tmp_path / "run", timeout=120).check_finished()
    with (destination / "align_report.csv").open(encoding="utf-8") as report:
        assert [row["path"] for row in csv.DictReader(report)] == ["wide.jpg"]
    assert (destination / "single.png").is_file()
    assert not [path for path in destination.iterdir() if path.suffix == ".part"]
