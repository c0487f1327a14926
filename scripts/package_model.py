"""Package a trained model as the one that ships with mlfer (``src/mlfer/resources/ferplus-svml-rgcn``).

Reads a model folder written by ``mlfer train``; predicts the rows of ``--split`` (FER+
PublicTest, the validation split) and tunes one threshold per expression on them
(:func:`mlfer.evaluation.thresholds.tune_thresholds`); prints the nine metrics at 0.5 and at
the tuned thresholds, how often a face's one label is among the model's top two, and how
many faces without a basic expression (kept by ``keep_unlabelled=true``) are given one;
writes the weights in float16 (half the file, at most 25 MB), the thresholds, the alignment
template (``framing.json`` from ``bench/framing.py``), the label graph and the model card
(``docs/model-card.md``) into the packaged folder, its config naming datasets and files
relative to the working directory, and seals it (``manifest.json``)::

    python scripts/package_model.py --run runs/ferplus-svml-rgcn \\
        --dataset "ferplus:../shared/data/ferplus?test=valid" --split test \\
        --framing framing.json --card docs/model-card.md
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from mlfer.core.config import load_config
from mlfer.core.expressions import EXPRESSIONS
from mlfer.data import load_dataset
from mlfer.evaluation.metrics import compute_metrics
from mlfer.evaluation.thresholds import save_thresholds, tune_thresholds
from mlfer.models.checkpoint import load_model, save_model
from mlfer.models.package import CONFIG_FILE, GRAPH_FILE, MODEL_FILE, portable_config, seal
from mlfer.models.preprocessing import FRAMING_FILE
from mlfer.models.shipped import CARD_FILE, SHIPPED_DIR
from mlfer.train.evaluation import evaluate_model

#: Largest packaged weights file, in bytes.
MAX_BYTES = 25_000_000


def top_two_rates(labels: np.ndarray, scores: np.ndarray) -> dict[str, tuple[int, float]]:
    """Per expression, over the faces labelled with it alone: how many, and the share whose
    label is among the model's two highest scores (the photo check of the model card)."""
    top_two = np.argsort(-scores, axis=1, kind="stable")[:, :2]
    single = labels.sum(axis=1) == 1
    rates = {}
    for column, name in enumerate(EXPRESSIONS):
        faces = single & (labels[:, column] == 1)
        rates[name] = (int(faces.sum()), float((top_two[faces] == column).any(axis=1).mean()) if faces.any() else 0.0)
    return rates


def main(argv: list[str] | None = None) -> int:
    """Tune the thresholds, write the packaged folder, check its size and that it loads."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path, metavar="DIR", help="model folder (mlfer train --out)")
    parser.add_argument("--dataset", required=True, metavar="SPEC", help="the dataset whose --split tunes thresholds")
    parser.add_argument("--split", default="validation", help="rows the thresholds are tuned on (default validation)")
    parser.add_argument("--framing", type=Path, metavar="JSON", help="alignment template (bench/framing.py)")
    parser.add_argument("--card", required=True, type=Path, metavar="MD", help="the model card")
    parser.add_argument("--out", type=Path, default=SHIPPED_DIR, metavar="DIR", help=f"default {SHIPPED_DIR}")
    args = parser.parse_args(argv)

    model = load_model(args.run, thresholds="default")
    config = load_config(args.run / CONFIG_FILE)
    data = load_dataset(args.dataset)
    rows = data.subset(np.flatnonzero(np.asarray(data.split) == args.split))
    evaluation = evaluate_model(model, rows, config.train.image_size, torch.device("cpu"))
    scores = evaluation.probabilities()
    thresholds = tune_thresholds(rows.labels, scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        at_half = compute_metrics(rows.labels, scores)
        tuned = compute_metrics(rows.labels, scores, thresholds)
    print(f"{len(rows)} rows of split {args.split!r}")
    print("thresholds:", ", ".join(f"{name} {value:.2f}" for name, value in zip(EXPRESSIONS, thresholds)))
    for name in at_half:
        print(f"{name:>18}  {at_half[name]:.4f}  (tuned thresholds: {tuned[name]:.4f})")
    rates = top_two_rates(rows.labels, scores)
    print(
        "label among the top two, faces with that label alone:",
        ", ".join(f"{name} {rate:.1%} of {count}" for name, (count, rate) in rates.items()),
    )
    unlabelled = ~rows.labels.any(axis=1)
    if unlabelled.any():
        given = (scores[unlabelled] >= thresholds).any(axis=1)
        print(
            f"{unlabelled.sum()} faces with no basic expression (neutral, contempt): "
            f"{given.sum()} ({given.mean():.1%}) given one at the tuned thresholds"
        )

    if args.out.exists():
        shutil.rmtree(args.out)
    save_model(model, portable_config(config), args.out, dtype=torch.float16)
    save_thresholds(args.out, thresholds)
    shutil.copyfile(args.run / GRAPH_FILE, args.out / GRAPH_FILE)
    shutil.copyfile(args.card, args.out / CARD_FILE)
    if args.framing is not None:
        framing = json.loads(args.framing.read_text())
        (args.out / FRAMING_FILE).write_text(json.dumps(framing, indent=2) + "\n")
    seal(args.out)
    size = (args.out / MODEL_FILE).stat().st_size
    print(f"wrote {args.out}: {MODEL_FILE} {size / 1e6:.2f} MB")
    if size > MAX_BYTES:
        raise SystemExit(f"{MODEL_FILE} is {size:,} bytes, over the {MAX_BYTES:,} allowed")
    packaged = load_model(args.out, thresholds="default")
    again = evaluate_model(packaged, rows, config.train.image_size, torch.device("cpu")).probabilities()
    print(f"float16 weights move the probabilities by at most {np.abs(again - scores).max():.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
