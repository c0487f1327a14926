"""``mlfer align`` on a temporary folder of real photos, a corrupt JPEG and a face-less image."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from faults import read_only_folder
from mlfer.cli import main


@pytest.fixture()
def source(shared_data: Path, tmp_path: Path) -> Path:
    photos = shared_data / "faces"
    if not photos.is_dir():
        pytest.skip(f"{photos} is absent")
    src = tmp_path / "src"
    (src / "people").mkdir(parents=True)
    shutil.copy(photos / "0-f15-hao-ph.jpg", src / "people" / "0-f15-hao-ph.jpg")
    shutil.copy(photos / "single_face.jpg", src / "single_face.JPG")
    (src / "corrupt.jpg").write_bytes((photos / "0-f1-su-ph.jpg").read_bytes()[:600])
    Image.open(photos / "free-mountain-vector-01.jpg").resize((480, 270)).save(src / "mountain.png")
    (src / "notes.txt").write_text("not an image")
    return src


def read_report(dst: Path) -> dict[str, str]:
    with (dst / "align_report.csv").open(newline="") as stream:
        return {row["path"]: row["problem"] for row in csv.DictReader(stream)}


def snapshot(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


def test_align_writes_faces_reports_problems_and_resumes(source, tmp_path, capsys):
    dst = tmp_path / "dst"
    before = snapshot(source)
    assert main(["align", str(source), str(dst)]) == 0
    assert "aligned 2 faces from 2 images, 0 already done, 2 problems" in capsys.readouterr().out
    outputs = {"people/0-f15-hao-ph.png", "single_face.png"}
    assert set(snapshot(dst)) == outputs | {"align_report.csv"}
    for name in outputs:
        with Image.open(dst / name) as aligned:
            assert aligned.size == (224, 224) and aligned.mode == "RGB"
    problems = read_report(dst)
    assert set(problems) == {"corrupt.jpg", "mountain.png"}
    assert problems["corrupt.jpg"].startswith("unreadable")
    assert problems["mountain.png"].startswith("no face")
    assert snapshot(source) == before

    finished = snapshot(dst)
    (dst / "single_face.png").unlink()
    assert main(["align", str(source), str(dst)]) == 0
    assert "aligned 1 faces from 1 images, 1 already done, 2 problems" in capsys.readouterr().out
    again = snapshot(dst)
    assert again["people/0-f15-hao-ph.png"] == finished["people/0-f15-hao-ph.png"]
    assert (dst / "single_face.png").is_file()
    assert set(read_report(dst)) == {"corrupt.jpg", "mountain.png"}


def test_all_faces_and_size(shared_data, tmp_path, capsys):
    photos = shared_data / "faces"
    if not photos.is_dir():
        pytest.skip(f"{photos} is absent")
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    shutil.copy(photos / "multi_face.jpg", src / "group.jpg")
    assert main(["align", str(src), str(dst), "--all-faces", "--size", "112"]) == 0
    written = sorted(path.name for path in dst.glob("*.png"))
    assert 4 <= len(written) <= 5
    assert written == [f"group_face{index}.png" for index in range(len(written))]
    with Image.open(dst / "group_face0.png") as aligned:
        assert aligned.size == (112, 112)
    assert read_report(dst) == {}


def test_same_output_name_is_reported(source, tmp_path, capsys):
    shutil.copy(source / "single_face.JPG", source / "single_face.png")
    dst = tmp_path / "dst"
    assert main(["align", str(source), str(dst)]) == 0
    assert "same output name as single_face.JPG" in read_report(dst)["single_face.png"]


@pytest.mark.parametrize("inside", [True, False])
def test_output_overlapping_the_source_is_refused(source, tmp_path, capsys, inside):
    dst = source / "aligned" if inside else source
    assert main(["align", str(source), str(dst)]) == 2
    message = capsys.readouterr().err
    assert str(dst) in message and "outside the source folder" in message
    assert not (source / "aligned").exists() and not (source / "align_report.csv").exists()


def test_missing_source_and_bad_options(tmp_path, capsys):
    assert main(["align", str(tmp_path / "absent"), str(tmp_path / "dst")]) == 2
    assert "absent: not a folder of images" in capsys.readouterr().err
    for option in (["--min-score", "0"], ["--size", "4"], ["--size", "100000"], ["--size", "9" * 400]):
        with pytest.raises(SystemExit) as exit_info:
            main(["align", str(tmp_path), str(tmp_path / "dst"), *option])
        assert exit_info.value.code == 2


def test_names_that_do_not_decode_are_aligned_and_reported_escaped(source, tmp_path, capsys):
    raw = os.fsencode(source)
    shutil.copy(source / "single_face.JPG", os.path.join(raw, b"caf\xe9.jpg"))
    shutil.copy(source / "corrupt.jpg", os.path.join(raw, b"\xff\xfe.jpg"))
    shutil.copy(source / "mountain.png", os.path.join(raw, b"back\\slash.png"))
    (source / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")  # a broken link: reported as unreadable
    dst = tmp_path / "dst"
    assert main(["align", str(source), str(dst)]) == 0
    assert os.path.isfile(os.path.join(os.fsencode(dst), b"caf\xe9.png"))
    problems = read_report(dst)
    assert set(problems) == {"corrupt.jpg", "mountain.png", "\\xff\\xfe.jpg", "back\\\\slash.png", "gone.jpg"}
    assert problems["gone.jpg"].startswith("unreadable") and problems["\\xff\\xfe.jpg"].startswith("unreadable")


def test_a_read_only_destination_is_refused_before_any_work(source, tmp_path, capsys):
    with read_only_folder(tmp_path / "ro") as folder:
        for dst in (folder, folder / "sub"):
            assert main(["align", str(source), str(dst)]) == 2
            assert f"{dst}: cannot write there" in capsys.readouterr().err
