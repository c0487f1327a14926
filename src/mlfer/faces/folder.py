"""Align every image under a folder: detect the faces and write them aligned, mirroring the relative paths.

Outputs are PNGs: ``a/b.jpg`` becomes ``DST/a/b.png`` (the largest face), or ``DST/a/b_face0.png``,
``b_face1.png``, ... left to right with ``all_faces``. A rerun skips images whose output exists.
Images with no face, or that cannot be read, detected or aligned (whatever fails for one image:
:func:`mlfer.faces.boundary.guarded`), are listed in ``DST/align_report.csv`` (columns ``path``,
``problem``). Every file is written through a temporary file renamed into place.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from mlfer.core.errors import MlferError
from mlfer.core.fileio import atomic_path, check_destination, printable
from mlfer.data.images import image_files, read_image
from mlfer.faces.align import align_face
from mlfer.faces.boundary import guarded
from mlfer.faces.detect import Face, FaceDetector
from mlfer.faces.template import TEMPLATE_SIZE
from mlfer.runtime.progress import show_progress

REPORT_NAME = "align_report.csv"


@dataclass
class AlignSummary:
    """What one run did: counts, and the ``(relative path, problem)`` pairs of the report."""

    images: int = 0
    faces: int = 0
    skipped: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)


def check_folders(src: Path, dst: Path) -> None:
    """Refuse a missing SRC, a DST that is SRC or lies inside it or around it, and a DST that
    cannot be written (:func:`~mlfer.core.fileio.check_destination`)."""
    if not src.is_dir():
        raise MlferError("not a folder of images", path=src)
    source, target = src.resolve(), dst.resolve()
    if source == target or source in target.parents or target in source.parents:
        raise MlferError(f"the output folder must lie outside the source folder {src}", path=dst)
    check_destination(dst, folder=True)


def find_images(src: Path) -> list[Path]:
    """Image files under ``src`` (:func:`~mlfer.data.images.image_files`: recursively, by suffix,
    broken links too so that the report lists them, folders of mlfer's own pictures left out),
    as sorted relative paths."""
    return [path.relative_to(src) for path in image_files(src)]


def output_path(dst: Path, relative: Path, index: int | None = None) -> Path:
    """Where the aligned face goes: ``DST/rel.png``, or ``DST/rel_face{index}.png`` with an index."""
    stem = relative.stem if index is None else f"{relative.stem}_face{index}"
    return dst / relative.parent / f"{stem}.png"


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write through ``write`` to a hidden temporary file beside ``path``, then rename it into
    place (:func:`mlfer.core.fileio.atomic_path`: a kill leaves no visible partial file, a full disk
    an MlferError)."""
    with atomic_path(path) as temporary:
        write(temporary)


def save_png(image: np.ndarray, path: Path) -> None:
    """Save an RGB array as PNG so that a killed run leaves no half-written file."""
    write_atomically(path, lambda partial: Image.fromarray(image).save(partial, format="PNG"))


def write_report(problems: list[tuple[str, str]], path: Path) -> None:
    """Write the ``path, problem`` CSV report (a header alone when all went well); names that
    do not decode are escaped (:func:`~mlfer.core.fileio.printable`)."""

    def write(partial: Path) -> None:
        with partial.open("w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(["path", "problem"])
            writer.writerows((printable(name), printable(problem)) for name, problem in problems)

    write_atomically(path, write)


def _aligned_faces(image: np.ndarray, detector: FaceDetector, size: int, all_faces: bool) -> list[np.ndarray]:
    """The image's faces aligned, left to right; only the largest without ``all_faces``."""
    faces: list[Face] = detector.detect(image)
    if faces and not all_faces:
        faces = [max(faces, key=lambda face: face.area)]
    return [align_face(image, face, size) for face in faces]


def align_folder(
    src: Path, dst: Path, detector: FaceDetector, size: int = TEMPLATE_SIZE, all_faces: bool = False
) -> AlignSummary:
    """Align every image under ``src`` into ``dst`` (see the module docstring) and write the report.

    Args:
        src: folder of images, searched recursively (never written).
        dst: folder for the aligned PNGs and the report; outside ``src``.
        detector: the face detector (its ``min_score`` is named in the report).
        size: side of the aligned faces.
        all_faces: write every face, not only the largest.
    """
    check_folders(src, dst)
    summary = AlignSummary()
    first_source: dict[Path, Path] = {}
    for relative in show_progress(find_images(src), "align", unit="image"):
        # With several faces, face 0 is written last: its presence means the image is done.
        done = output_path(dst, relative, 0 if all_faces else None)
        taken_by = first_source.setdefault(done, relative)
        if taken_by != relative:
            summary.problems.append((relative.as_posix(), f"same output name as {taken_by.as_posix()}; skipped"))
            continue
        if done.exists():
            summary.skipped += 1
            continue
        try:
            image = np.asarray(read_image(src / relative))
        except MlferError as error:
            summary.problems.append((relative.as_posix(), f"unreadable: {error}"))
            continue
        try:
            aligned = guarded(str(src / relative), _aligned_faces, image, detector, size, all_faces)
        except MlferError as error:
            summary.problems.append((relative.as_posix(), f"cannot align: {error}"))
            continue
        if not aligned:
            summary.problems.append((relative.as_posix(), f"no face found (min score {detector.min_score})"))
            continue
        summary.images += 1
        if not all_faces:
            save_png(aligned[0], done)
            summary.faces += 1
            continue
        for index in reversed(range(len(aligned))):
            save_png(aligned[index], output_path(dst, relative, index))
            summary.faces += 1
    write_report(summary.problems, dst / REPORT_NAME)
    return summary
