"""Draw docs/images/synthetic_gallery.png: the six basic expressions, then ten distinct RAF-ML blends.

Usage: python scripts/make_synthetic_gallery.py [--seed 0] [--size 128] [--out PNG]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mlfer.core.expressions import NUM_EXPRESSIONS, label_names
from mlfer.data.synthetic import LABEL_STREAM, render_faces, sample_label_sets, seeded_rng

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "synthetic_gallery.png"
COLUMNS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the faces and blends")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--out", type=Path, default=OUT, help="PNG to write")
    args = parser.parse_args()
    sampled = sample_label_sets(200, seeded_rng(args.seed, LABEL_STREAM))
    _, first = np.unique(sampled, axis=0, return_index=True)
    blends = sampled[np.sort(first)][:10]  # ten distinct label sets, in the order drawn
    labels = np.concatenate([np.eye(NUM_EXPRESSIONS, dtype=np.uint8), blends])
    faces = render_faces(labels, seed=args.seed, size=args.size)
    rows = -(-len(labels) // COLUMNS)
    figure, axes = plt.subplots(rows, COLUMNS, figsize=(2.2 * COLUMNS, 2.5 * rows))
    for axis, image, row in zip(axes.ravel(), faces.images, faces.labels):
        axis.imshow(image)
        names = label_names(row)
        axis.set_title(" + ".join(names[:2]) + ("\n+ " + " + ".join(names[2:]) if len(names) > 2 else ""), fontsize=8)
    for axis in axes.ravel():
        axis.axis("off")
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=80)
    print(f"{len(labels)} faces -> {args.out}")


if __name__ == "__main__":
    main()
