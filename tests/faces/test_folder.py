"""align_folder from Python: outputs mirror the source tree, problems go to the report, a rerun skips
finished images. A stub detector stands in for MediaPipe (tests/cli/test_cli_align.py runs the real one)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlfer.core.errors import MlferError
from mlfer.faces import AlignSummary, Face, align_folder


class BrightFaces:
    """Two faces (the right one larger) in a bright image, none in a dark one."""

    min_score = 0.5

    def detect(self, image: np.ndarray) -> list[Face]:
        if image.mean() < 128:
            return []
        left = Face((5.0, 10.0, 30.0, 30.0), 0.9, (12.0, 20.0), (28.0, 20.0), (20.0, 32.0))
        right = Face((40.0, 5.0, 35.0, 35.0), 0.8, (48.0, 16.0), (66.0, 16.0), (57.0, 30.0))
        return [left, right]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "a").mkdir(parents=True)
    Image.new("RGB", (80, 60), (230, 230, 230)).save(root / "a" / "bright.png")
    Image.new("RGB", (80, 60), (10, 10, 10)).save(root / "dark.jpg")
    (root / "broken.png").write_bytes(b"not an image")
    (root / "notes.txt").write_text("not an image suffix")
    return root


def report(dst: Path) -> list[list[str]]:
    with (dst / "align_report.csv").open(newline="", encoding="utf-8") as stream:
        return list(csv.reader(stream))


def test_largest_face_mirrors_the_tree_and_problems_are_reported(source: Path, tmp_path: Path) -> None:
    dst = tmp_path / "aligned"
    summary = align_folder(source, dst, BrightFaces(), size=32)
    assert (summary.images, summary.faces, summary.skipped) == (1, 1, 0)
    assert np.asarray(Image.open(dst / "a" / "bright.png")).shape == (32, 32, 3)
    assert sorted(path.relative_to(dst).as_posix() for path in dst.rglob("*.png")) == ["a/bright.png"]
    rows = report(dst)
    assert rows[0] == ["path", "problem"]
    assert [row[0] for row in rows[1:]] == ["broken.png", "dark.jpg"]
    assert rows[1][1].startswith("unreadable:") and rows[2][1] == "no face found (min score 0.5)"
    assert align_folder(source, dst, BrightFaces(), size=32) == AlignSummary(0, 0, 1, summary.problems)


def test_all_faces_left_to_right(source: Path, tmp_path: Path) -> None:
    dst = tmp_path / "aligned"
    summary = align_folder(source, dst, BrightFaces(), size=16, all_faces=True)
    assert (summary.images, summary.faces) == (1, 2)
    assert {path.name for path in (dst / "a").iterdir()} == {"bright_face0.png", "bright_face1.png"}


def test_output_inside_the_source_is_refused(source: Path) -> None:
    with pytest.raises(MlferError, match="outside the source folder"):
        align_folder(source, source / "aligned", BrightFaces())
    assert not (source / "aligned").exists()
