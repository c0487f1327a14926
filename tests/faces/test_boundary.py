"""Pictures beyond OpenCV's limits: detection on a shrunk view, alignment on a crop, and
mlfer align's report. Detection runs in a forked child: the old code aborted the process."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faults import check_case
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


def test_detection_survives_every_extreme_shape() -> None:
    def detect_all() -> list[int]:
        from mlfer.faces import FaceDetector  # made in the child: MediaPipe's graphs do not survive a fork

        with FaceDetector() as detector:
            return [len(detector.detect(np.full((*shape, 3), 128, np.uint8))) for shape in SHAPES]

    outcome = check_case("extreme geometries", detect_all, [], seconds=60, isolated=True)
    assert outcome == [0] * len(SHAPES)


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

    def align() -> int:
        from mlfer.faces import FaceDetector, align_folder

        with FaceDetector() as detector:
            return align_folder(source, tmp_path / "dst", detector).faces

    assert check_case("extreme geometries", align, [source], seconds=60, isolated=True) == 1
    with (tmp_path / "dst" / "align_report.csv").open(encoding="utf-8") as report:
        assert [row["path"] for row in csv.DictReader(report)] == ["wide.jpg"]
    assert (tmp_path / "dst" / "single.png").is_file()
    assert not [path for path in (tmp_path / "dst").iterdir() if path.suffix == ".part"]
