"""Draw the aligned faces of the shared photos in a grid, with the template points overlaid.

Red crosses: the template (right eye, left eye, mouth). Cyan dots: where the detected
points land after the least-squares similarity transform. Titles: file, face index, score.

Usage: python scripts/make_aligned_gallery.py [--photos FOLDER] [--out PNG] [--columns N]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mlfer.core.errors import MlferError
from mlfer.data.images import IMAGE_SUFFIXES, read_image
from mlfer.faces import TEMPLATE, FaceDetector, align_face, similarity_transform, transform_points

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "faces"
GALLERY = ROOT / "docs" / "images" / "aligned_gallery.png"


def aligned_faces(photos: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(title, aligned face, transformed detected points)`` for every face of every photo."""
    tiles = []
    with FaceDetector() as detector:
        for path in sorted(p for p in photos.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            image = np.asarray(read_image(path))
            faces = detector.detect(image)
            for index, face in enumerate(faces):
                landed = transform_points(similarity_transform(face.landmarks(), TEMPLATE), face.landmarks())
                title = path.stem if len(faces) == 1 else f"{path.stem} #{index}"
                tiles.append((f"{title}\nscore {face.score:.2f}", align_face(image, face), landed))
    return tiles


def draw(tiles: list[tuple[str, np.ndarray, np.ndarray]], out: Path, columns: int) -> None:
    """Lay the tiles out in a grid and save it."""
    rows = math.ceil(len(tiles) / columns)
    figure = Figure(figsize=(2.2 * columns, 2.5 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (title, face, landed) in zip(axes.flat, tiles):
        axis.imshow(face)
        axis.scatter(TEMPLATE[:, 0], TEMPLATE[:, 1], marker="x", s=40, c="red", linewidths=1.5)
        axis.scatter(landed[:, 0], landed[:, 1], marker="o", s=10, c="cyan")
        axis.set_title(title, fontsize=8)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="folder of face photos")
    parser.add_argument("--out", type=Path, default=GALLERY, help="PNG to write")
    parser.add_argument("--columns", type=int, default=5, help="tiles per row")
    args = parser.parse_args()
    if not args.photos.is_dir():
        raise MlferError("folder of photos not found", path=args.photos)
    tiles = aligned_faces(args.photos)
    if not tiles:
        raise MlferError("no face found in any photo", path=args.photos)
    draw(tiles, args.out, args.columns)
    print(f"wrote {len(tiles)} aligned faces to {args.out}")


if __name__ == "__main__":
    main()
