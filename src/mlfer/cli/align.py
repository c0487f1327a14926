"""``mlfer align SRC DST``: detect and align the faces of every image under a folder.

Outputs mirror SRC's relative paths as PNGs: ``a/b.jpg`` becomes ``DST/a/b.png`` (the
largest face), or ``DST/a/b_face0.png``, ``b_face1.png``, ... left to right with
``--all-faces``. A rerun skips images whose output exists. Images with no face or that
cannot be read are listed in ``DST/align_report.csv`` (columns ``path``, ``problem``).
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from mlfer.core.errors import MlferError
from mlfer.core.fileio import atomic_path
from mlfer.data.images import IMAGE_SUFFIXES, read_image
from mlfer.faces.align import MIN_SIZE, TEMPLATE_SIZE, align_face
from mlfer.faces.detect import FaceDetector

REPORT_NAME = "align_report.csv"


@dataclass
class AlignSummary:
    """What one run did: counts, and the ``(relative path, problem)`` pairs of the report."""

    images: int = 0
    faces: int = 0
    skipped: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)


def _size(text: str) -> int:
    """argparse type of ``--size``: an integer of at least :data:`MIN_SIZE`."""
    value = int(text)
    if value < MIN_SIZE:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_SIZE}, got {value}")
    return value


def _score(text: str) -> float:
    """argparse type of ``--min-score``: a number in (0, 1]."""
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1], got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``align`` parser."""
    parser = subparsers.add_parser(
        "align",
        help="detect and align the faces of every image in a folder",
        description="Detect and align the faces of every image under SRC into DST, mirroring its relative "
        "paths as PNGs; a rerun skips finished images; problems go to DST/align_report.csv.",
    )
    parser.add_argument("src", type=Path, metavar="SRC", help="folder of images, searched recursively (never written)")
    parser.add_argument("dst", type=Path, metavar="DST", help="folder for the aligned PNGs and align_report.csv")
    parser.add_argument("--size", type=_size, default=TEMPLATE_SIZE, help="side of the aligned faces (default: 224)")
    parser.add_argument("--min-score", type=_score, default=0.5, help="minimum detection score (default: 0.5)")
    parser.add_argument("--all-faces", action="store_true", help="write every face, not only the largest")
    parser.set_defaults(handler=run)


def check_folders(src: Path, dst: Path) -> None:
    """Refuse a missing SRC, and a DST that is SRC or lies inside it or around it."""
    if not src.is_dir():
        raise MlferError("not a folder of images", path=src)
    source, target = src.resolve(), dst.resolve()
    if source == target or source in target.parents or target in source.parents:
        raise MlferError(f"the output folder must lie outside the source folder {src}", path=dst)


def find_images(src: Path) -> list[Path]:
    """Image files under ``src`` (recursively, by suffix), as sorted relative paths."""
    return sorted(
        path.relative_to(src) for path in src.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )


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
    """Write the ``path, problem`` CSV report (a header alone when all went well)."""

    def write(partial: Path) -> None:
        with partial.open("w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(["path", "problem"])
            writer.writerows(problems)

    write_atomically(path, write)


def align_folder(
    src: Path, dst: Path, detector: FaceDetector, size: int = TEMPLATE_SIZE, all_faces: bool = False
) -> AlignSummary:
    """Align every image under ``src`` into ``dst`` (see the module docstring) and write the report."""
    check_folders(src, dst)
    summary = AlignSummary()
    first_source: dict[Path, Path] = {}
    for relative in tqdm(find_images(src), desc="align", unit="image"):
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
        faces = detector.detect(image)
        if not faces:
            summary.problems.append((relative.as_posix(), f"no face found (min score {detector.min_score})"))
            continue
        summary.images += 1
        if not all_faces:
            save_png(align_face(image, max(faces, key=lambda face: face.area), size), done)
            summary.faces += 1
            continue
        for index in reversed(range(len(faces))):
            save_png(align_face(image, faces[index], size), output_path(dst, relative, index))
            summary.faces += 1
    write_report(summary.problems, dst / REPORT_NAME)
    return summary


def run(args: argparse.Namespace) -> int:
    """Run ``mlfer align``; problems with single images go to the report, not the exit status."""
    with FaceDetector(min_score=args.min_score) as detector:
        summary = align_folder(args.src, args.dst, detector, size=args.size, all_faces=args.all_faces)
    print(
        f"aligned {summary.faces} faces from {summary.images} images, {summary.skipped} already done, "
        f"{len(summary.problems)} problems listed in {args.dst / REPORT_NAME}"
    )
    return 0
