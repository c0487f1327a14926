"""``mlfer align SRC DST``: detect and align the faces of every image under a folder.

Outputs mirror SRC's relative paths as PNGs: ``a/b.jpg`` becomes ``DST/a/b.png`` (the
largest face), or ``DST/a/b_face0.png``, ``b_face1.png``, ... left to right with
``--all-faces``. A rerun skips images whose output exists. Images with no face or that
cannot be read are listed in ``DST/align_report.csv`` (columns ``path``, ``problem``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlfer.core.framing import MAX_FACE_SIZE, MIN_FACE_SIZE, TEMPLATE_SIZE


def _size(text: str) -> int:
    """argparse type of ``--size``: an integer from :data:`MIN_FACE_SIZE` to :data:`MAX_FACE_SIZE`."""
    value = int(text)
    if not MIN_FACE_SIZE <= value <= MAX_FACE_SIZE:
        raise argparse.ArgumentTypeError(f"must lie between {MIN_FACE_SIZE} and {MAX_FACE_SIZE}, got {text[:20]}")
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
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="let MediaPipe's own log lines (TFLite, absl) through to stderr; the same as MLFER_VERBOSE=1",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``mlfer align``; problems with single images go to the report, not the exit status."""
    from mlfer.faces.detect import FaceDetector
    from mlfer.faces.folder import REPORT_NAME, align_folder
    from mlfer.faces.quiet import set_verbose

    set_verbose(args.verbose)  # before MediaPipe starts

    with FaceDetector(min_score=args.min_score) as detector:
        summary = align_folder(args.src, args.dst, detector, size=args.size, all_faces=args.all_faces)
    print(
        f"aligned {summary.faces} faces from {summary.images} images, {summary.skipped} already done, "
        f"{len(summary.problems)} problems listed in {args.dst / REPORT_NAME}"
    )
    return 0
