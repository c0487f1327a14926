r"""Calibration of per-expression probabilities: expected calibration error, a per-label Platt
scaling of the logits, and reliability plots.

Bins are equal-width on [0, 1]: with B bins, bin k (0-based) holds the probabilities p with
``k / B <= p < (k + 1) / B``, computed as ``floor(p * B)``; a probability of exactly 1 falls
in the last bin. The expected calibration error of an expression is

.. math::
    \mathrm{ECE}_c = \sum_{k} \frac{n_k}{N} \left| \bar{y}_k - \bar{p}_k \right|

over its non-empty bins, with :math:`n_k` the faces in bin k, :math:`\bar{y}_k` the share of
them labelled with the expression and :math:`\bar{p}_k` their mean probability.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.core.fileio import atomic_path
from mlfer.evaluation.metrics import _label_matrix, _matrix, _score_matrix

#: Bins of the expected calibration error and the reliability plot.
BINS = 15
#: Inverse strength of the L2 penalty of the Platt fit: weak enough to leave the fit the plain
#: BCE minimum, strong enough to keep it finite on separable rows.
PLATT_C = 1e6


@dataclass(frozen=True)
class BinStatistics:
    """Per expression (rows) and bin (columns), C x B each: faces, mean label, mean probability
    (NaN in an empty bin)."""

    counts: np.ndarray
    observed: np.ndarray
    predicted: np.ndarray


def bin_statistics(labels: ArrayLike, probabilities: ArrayLike, bins: int = BINS) -> BinStatistics:
    """The reliability diagram's numbers: each column of ``probabilities`` (N x C) cut into
    ``bins`` equal-width bins (the module's convention), with ``labels`` (N x C, 0/1)."""
    if bins < 1:
        raise MlferError(f"expected at least one bin, got {bins}", field="bins")
    truth = _label_matrix(labels).astype(np.float64)
    scores = _score_matrix(probabilities, truth.shape)
    index = np.minimum(np.floor(scores * bins).astype(np.int64), bins - 1)
    columns = range(truth.shape[1])
    counts = np.stack([np.bincount(index[:, c], minlength=bins) for c in columns]).astype(np.float64)
    label_sums = np.stack([np.bincount(index[:, c], truth[:, c], minlength=bins) for c in columns])
    score_sums = np.stack([np.bincount(index[:, c], scores[:, c], minlength=bins) for c in columns])
    with np.errstate(invalid="ignore", divide="ignore"):
        return BinStatistics(counts, label_sums / counts, score_sums / counts)


def expected_calibration_error(labels: ArrayLike, probabilities: ArrayLike, bins: int = BINS) -> np.ndarray:
    """ECE per expression column (shape (C,)), as the module defines it."""
    stats = bin_statistics(labels, probabilities, bins)
    gaps = np.nan_to_num(np.abs(stats.observed - stats.predicted))
    return (stats.counts * gaps).sum(axis=1) / stats.counts.sum(axis=1)


@dataclass(frozen=True)
class LogitScale:
    r"""Per-label affine (Platt) scaling of logits, :math:`p'_c = \sigma(a_c z_c + b_c)`, with :math:`a_c > 0`
    so that the order of the faces per label is kept (AUC and rankings do not change).

    Args:
        scale: :math:`a` (C,), every entry positive.
        bias: :math:`b` (C,).
    """

    scale: np.ndarray
    bias: np.ndarray

    def probabilities(self, logits: ArrayLike) -> np.ndarray:
        r""":math:`\sigma(a z + b)` of logits z (N x C)."""
        return expit(np.asarray(logits, dtype=np.float64) * self.scale + self.bias)


def fit_logit_scale(labels: ArrayLike, logits: ArrayLike) -> LogitScale:
    """Fit :class:`LogitScale` by minimising the BCE of each label on these rows, one logistic
    regression on the single logit feature per label (scikit-learn, L2 penalty ``1 / PLATT_C``).

    Raises:
        MlferError: for a label that is always or never present on these rows, or whose fitted
            scale is not positive (its logits do not rise with it here): no order-keeping
            scaling fits it.
    """
    from sklearn.linear_model import LogisticRegression  # imported here: scikit-learn takes seconds to import

    truth = _label_matrix(labels)
    z = _matrix(logits, "logits")
    if z.shape != truth.shape:
        raise MlferError(f"shape {z.shape} differs from the labels' {truth.shape}", field="logits")
    scale, bias = np.empty(truth.shape[1]), np.empty(truth.shape[1])
    for column in range(truth.shape[1]):
        name = EXPRESSIONS[column] if truth.shape[1] == len(EXPRESSIONS) else f"label {column}"
        if truth[:, column].all() or not truth[:, column].any():
            raise MlferError(f"{name} is on every face or on none of these rows: no scaling can be fitted")
        regression = LogisticRegression(C=PLATT_C, tol=1e-10, max_iter=1000)
        regression.fit(z[:, [column]], truth[:, column])
        scale[column], bias[column] = regression.coef_[0, 0], regression.intercept_[0]
        if scale[column] <= 0:
            raise MlferError(
                f"{name}: fitted scale {scale[column]:.3g} is not positive; its logits do not rise with it"
            )
    return LogitScale(scale, bias)


def plot_reliability(
    labels: ArrayLike, probabilities_by_name: Mapping[str, ArrayLike], path: str | Path, bins: int = BINS
) -> None:
    """Write a PNG reliability diagram: one panel per expression, the observed frequency
    against the mean predicted probability of each non-empty bin, one line per named set of
    probabilities (e.g. "as trained", "calibrated"), the diagonal, the faces per bin (right
    axis, log scale) and each set's ECE in the panel's title."""
    from matplotlib.figure import Figure  # imported here: matplotlib takes a second to import

    if not probabilities_by_name:
        raise MlferError("no probabilities to plot", field="probabilities_by_name")
    stats = {name: bin_statistics(labels, scores, bins) for name, scores in probabilities_by_name.items()}
    if next(iter(stats.values())).counts.shape[0] != len(EXPRESSIONS):
        raise MlferError(f"expected one column per expression ({len(EXPRESSIONS)})", field="labels")
    eces = {name: expected_calibration_error(labels, scores, bins) for name, scores in probabilities_by_name.items()}
    edges = np.linspace(0.0, 1.0, bins + 1)
    figure = Figure(figsize=(11, 7.5 + 0.3 * len(stats)))
    panels = figure.subplots(2, 3).ravel()
    for column, (axis, expression) in enumerate(zip(panels, EXPRESSIONS)):
        counts_axis = axis.twinx()
        axis.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
        for index, (name, stat) in enumerate(stats.items()):
            colour = f"C{index}"
            filled = stat.counts[column] > 0
            axis.plot(
                stat.predicted[column, filled], stat.observed[column, filled], marker="o", color=colour, label=name
            )
            counts_axis.stairs(stat.counts[column], edges, color=colour, alpha=0.35)
        counts_axis.set_yscale("symlog", linthresh=1)
        counts_axis.set_ylabel("faces per bin", fontsize=8)
        counts_axis.tick_params(labelsize=7)
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.set_xlabel("mean predicted probability", fontsize=8)
        axis.set_ylabel("observed frequency", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.set_zorder(counts_axis.get_zorder() + 1)  # the curves above the counts
        axis.patch.set_visible(False)
        lines = [f"ECE {eces[name][column]:.3f} {name}" for name in stats]
        axis.set_title("\n".join([expression, *lines]), fontsize=9)
    panels[0].legend(fontsize=8, loc="upper left")
    figure.suptitle(f"Reliability ({bins} equal-width bins)", fontsize=11)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
