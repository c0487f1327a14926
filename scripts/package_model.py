"""Package a trained model as the one that ships with mlfer (``src/mlfer/resources/ferplus-svml-rgcn``).

Reads a model folder written by ``mlfer train``; predicts the rows of ``--split`` (FER+
PublicTest, the validation split); fits a per-expression Platt scaling of the logits
(:func:`mlfer.evaluation.calibration.fit_logit_scale`) on one half of them (fixed seed,
stratified on whether a face has any label), prints the expected calibration error per
expression (15 bins) on the other half before and after, and keeps the scaling in the model
(``model.logit_scaling``) only where it lowers the mean ECE there (never with
``--no-calibration``); writes the reliability
plot of that half (``--reliability``); prints the AUC per expression (which an order-keeping
scaling leaves as it is); then tunes one threshold per expression on all the rows, with the
kept calibration (:func:`mlfer.evaluation.thresholds.tune_thresholds`); prints the nine metrics at 0.5 and at
the tuned thresholds, how often a face's one label is among the model's top two, and how
many faces without a basic expression (kept by ``keep_unlabelled=true``) are given one;
writes the weights in float16 (half the file, at most 25 MB), the thresholds, the alignment
template (``framing.json`` from ``bench/framing.py``), the label graph and the model card
(``docs/model-card.md``) into the packaged folder, its config naming datasets and files
relative to the working directory, and seals it (``manifest.json``)::

    python scripts/package_model.py --run runs/ferplus-svml-rgcn \\
        --dataset "ferplus:../shared/data/ferplus?test=valid" --split test \\
        --framing framing.json --card docs/model-card.md \\
        --reliability docs/images/model-reliability.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from mlfer.core.config import load_config
from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.data import load_dataset
from mlfer.evaluation.calibration import BINS, LogitScale, expected_calibration_error, fit_logit_scale, plot_reliability
from mlfer.evaluation.metrics import compute_metrics
from mlfer.evaluation.thresholds import save_thresholds, tune_thresholds
from mlfer.models.checkpoint import load_model, save_model
from mlfer.models.package import CONFIG_FILE, GRAPH_FILE, MODEL_FILE, portable_config, seal
from mlfer.models.preprocessing import FRAMING_FILE
from mlfer.models.shipped import CARD_FILE, SHIPPED_DIR
from mlfer.train.evaluation import evaluate_model

#: Largest packaged weights file, in bytes.
MAX_BYTES = 25_000_000
#: Seed of the split of the rows into the half a calibration is fitted on and the half it is checked on.
CALIBRATION_SEED = 0
RELIABILITY_PLOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "model-reliability.png"


def split_halves(labels: np.ndarray, seed: int = CALIBRATION_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of two halves of the rows (sorted), stratified on whether a face has any label."""
    first, second = train_test_split(
        np.arange(len(labels)), test_size=0.5, random_state=seed, stratify=labels.any(axis=1)
    )
    return np.sort(first), np.sort(second)


@dataclass(frozen=True)
class CalibrationCheck:
    """A per-expression scaling fitted on one half of the rows and checked on the other.

    Args:
        scale: the fitted scaling; ``None`` where none could be fitted (``reason`` says why).
        held_out: the rows of the half it is checked on.
        before: ECE per expression on the held-out half, as trained.
        after: ECE per expression on the held-out half, calibrated (``None`` without a scaling).
        reason: why no scaling was fitted; empty where one was.
    """

    scale: LogitScale | None
    held_out: np.ndarray
    before: np.ndarray
    after: np.ndarray | None
    reason: str = ""

    @property
    def kept(self) -> bool:
        """Whether the scaling lowers the mean ECE of the held-out half."""
        return self.after is not None and float(self.after.mean()) < float(self.before.mean())


def check_calibration(labels: np.ndarray, logits: np.ndarray, seed: int = CALIBRATION_SEED) -> CalibrationCheck:
    """Fit the scaling on the first of :func:`split_halves` and measure the ECE on the second."""
    first, second = split_halves(labels, seed)
    before = expected_calibration_error(labels[second], expit(logits[second]))
    try:
        scale = fit_logit_scale(labels[first], logits[first])
    except MlferError as error:
        return CalibrationCheck(None, second, before, None, str(error))
    return CalibrationCheck(
        scale, second, before, expected_calibration_error(labels[second], scale.probabilities(logits[second]))
    )


def print_calibration(check: CalibrationCheck) -> None:
    """The ECE per expression before and after (with the fitted scale and bias), the mean, and the decision."""
    print(f"expected calibration error ({BINS} bins) on the held-out half ({len(check.held_out)} rows):")
    after = check.after if check.after is not None else np.full_like(check.before, np.nan)
    for column, name in enumerate(EXPRESSIONS):
        fitted = f"  (a {check.scale.scale[column]:.3f}, b {check.scale.bias[column]:+.3f})" if check.scale else ""
        print(f"{name:>18}  as trained {check.before[column]:.4f}, calibrated {after[column]:.4f}{fitted}")
    print(f"{'mean':>18}  as trained {check.before.mean():.4f}, calibrated {after.mean():.4f}")
    if check.scale is None:
        print(f"calibration not kept: {check.reason}")
    else:
        print(f"calibration {'kept: it lowers' if check.kept else 'not kept: it does not lower'} the mean ECE")


def expression_aucs(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Per expression, the ROC AUC over the faces with at least one label (NaN where they all
    have the expression, or none has)."""
    labelled = labels.any(axis=1)
    aucs = {}
    for column, name in enumerate(EXPRESSIONS):
        truth = labels[labelled, column]
        aucs[name] = float(roc_auc_score(truth, scores[labelled, column])) if 0 < truth.sum() < len(truth) else np.nan
    return aucs


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
    parser.add_argument(
        "--reliability", type=Path, default=RELIABILITY_PLOT, metavar="PNG", help=f"default {RELIABILITY_PLOT}"
    )
    parser.add_argument(
        "--no-calibration",
        action="store_true",
        help="measure the calibration, but package the probabilities as trained",
    )
    args = parser.parse_args(argv)

    model = load_model(args.run, thresholds="default")
    config = load_config(args.run / CONFIG_FILE)
    data = load_dataset(args.dataset)
    rows = data.subset(np.flatnonzero(np.asarray(data.split) == args.split))
    evaluation = evaluate_model(model, rows, config.train.image_size, torch.device("cpu"))
    logits = evaluation.logits.double().numpy()
    scores = evaluation.probabilities()
    print(f"{len(rows)} rows of split {args.split!r}")
    check = check_calibration(rows.labels, logits)
    print_calibration(check)
    held_out = check.held_out
    curves = {"as trained": expit(logits[held_out])}
    if check.scale is not None:
        curves["calibrated (fitted on the other half)"] = check.scale.probabilities(logits[held_out])
    plot_reliability(rows.labels[held_out], curves, args.reliability)
    print(f"wrote {args.reliability}")
    if args.no_calibration:
        print("--no-calibration: the probabilities are packaged as trained")
    elif check.kept and check.scale is not None:
        model.logit_scaling.set(torch.from_numpy(check.scale.scale), torch.from_numpy(check.scale.bias))
        scores = check.scale.probabilities(logits)
    aucs = expression_aucs(rows.labels, scores)
    print(
        "AUC per expression, faces with a label (a calibration keeps it):",
        ", ".join(f"{name} {value:.4f}" for name, value in aucs.items()),
        f"(mean {np.nanmean(list(aucs.values())):.4f})",
    )
    thresholds = tune_thresholds(rows.labels, scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        at_half = compute_metrics(rows.labels, scores)
        tuned = compute_metrics(rows.labels, scores, thresholds)
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
