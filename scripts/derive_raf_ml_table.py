"""Derive the label-set table the synthetic generator samples from, out of RAF-ML.

Reads RAF-ML's per-image label distributions (N x 6, RAF order, rows sum to 1),
binarises them at >= 1/6 (RAF-ML's multi-label rule) and writes how many images carry
each distinct label set. Only this small table is committed, never the distributions.

Usage: python scripts/derive_raf_ml_table.py [--source NPY] [--out CSV]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "raf-ml" / "label_distribution.npy"
TABLE = ROOT / "src" / "mlfer" / "resources" / "raf_ml_cooccurrence.csv"


def label_set_counts(distributions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct 0/1 label sets (K x 6) of distributions binarised at >= 1/6, most frequent first."""
    labels = (distributions >= 1.0 / len(EXPRESSIONS)).astype(np.uint8)
    sets, counts = np.unique(labels, axis=0, return_counts=True)
    order = np.lexsort((-sets @ (2 ** np.arange(len(EXPRESSIONS))[::-1]), -counts))
    return sets[order], counts[order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="RAF-ML label_distribution.npy")
    parser.add_argument("--out", type=Path, default=TABLE, help="CSV table to write")
    args = parser.parse_args()
    if not args.source.is_file():
        raise MlferError("RAF-ML label distributions not found", path=args.source)
    distributions = np.load(args.source)
    if distributions.ndim != 2 or distributions.shape[1] != len(EXPRESSIONS):
        raise MlferError(f"expected N x {len(EXPRESSIONS)} distributions, got {distributions.shape}", path=args.source)
    sets, counts = label_set_counts(distributions)
    with args.out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*EXPRESSIONS, "count"])
        writer.writerows([*row.tolist(), int(count)] for row, count in zip(sets, counts))
    print(f"{len(sets)} label sets from {len(distributions)} images -> {args.out}")


if __name__ == "__main__":
    main()
