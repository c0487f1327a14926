"""Benchmark: the five models of ``mlfer ablate`` on JAFFE's real LBP features beside a
one-vs-rest logistic regression on the same folds.

First run the ablation (identity backbone on the 243-d LBP features, the JAFFE preset,
5-fold cross-validation, 3 seeds)::

    mlfer ablate --dataset "ldl:../shared/data/jaffe/jaffe.mat?preset=jaffe" --preset jaffe \\
        --seeds 0,1,2 --out OUT

then ``python bench/jaffe.py --ablate OUT --write``. The baseline here is scikit-learn's
``LogisticRegression(C=0.1)`` per label on features standardised with each training fold's
mean and standard deviation; it is deterministic, so one pass over the folds stands for
every seed. ``--smoke`` runs it on a few synthetic feature rows in seconds.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from benchdoc import write_section
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlfer.data import LabelledData, load_dataset
from mlfer.metrics import METRIC_NAMES, compute_metrics
from mlfer.report import comparison_frame, comparison_markdown, comparison_text

SPEC = "ldl:../shared/data/jaffe/jaffe.mat?preset=jaffe"
BASELINE = "logistic regression (C = 0.1)"


def logistic_regression_runs(data: LabelledData, folds: int = 5, c: float = 0.1) -> pd.DataFrame:
    """The nine metrics of a standardised one-vs-rest logistic regression on each partition
    (the same partitions ``mlfer train`` and ``mlfer ablate`` use), one row per partition."""
    features = np.asarray(data.features, dtype=np.float64)
    rows = {}
    for partition in data.partitions(folds, seed=0):
        model = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(C=c, max_iter=5000)))
        model.fit(features[partition.train], data.labels[partition.train])
        scores = model.predict_proba(features[partition.test])
        rows[partition.name] = compute_metrics(data.labels[partition.test], scores)
    return pd.DataFrame.from_dict(rows, orient="index")[list(METRIC_NAMES)]


def summary(runs: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation of each metric over the runs (as ``mlfer train``)."""
    return {"mean": runs.mean().to_dict(), "std": runs.std(ddof=1).to_dict()}


def smoke_data(rows: int = 60, dim: int = 12, seed: int = 0) -> LabelledData:
    """Random features whose labels depend on them, with 5 folds, for ``--smoke``."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((rows, dim))
    labels = (features[:, :6] + 0.5 * rng.standard_normal((rows, 6)) > 0).astype(np.uint8)
    return LabelledData(spec="smoke", labels=labels, ids=[str(row) for row in range(rows)], features=features,
                        folds=np.arange(rows) % 5)


def main(argv: list[str] | None = None) -> int:
    """Print the comparison table and, with ``--write``, put it in docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ablate", type=Path, metavar="OUT", help="the --out folder of mlfer ablate (its table.csv)")
    parser.add_argument("--dataset", default=SPEC, metavar="SPEC", help=f"the dataset spec (default {SPEC})")
    parser.add_argument("--smoke", action="store_true", help="synthetic features, no ablation table, no writing")
    parser.add_argument("--write", action="store_true", help="write the table to docs/benchmarks.md")
    args = parser.parse_args(argv)
    data = smoke_data() if args.smoke else load_dataset(args.dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # metrics warn about folds without a positive of a label
        runs = logistic_regression_runs(data)
    frame = comparison_frame({BASELINE: summary(runs)})
    if args.ablate is not None:
        frame = pd.concat([pd.read_csv(args.ablate / "table.csv", index_col=0), frame])
    print(comparison_text(frame))
    if args.write and not args.smoke:
        write_section("JAFFE", comparison_markdown(frame, digits=3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
