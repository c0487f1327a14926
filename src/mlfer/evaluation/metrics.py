"""The nine multi-label metrics of the paper (section 4.1, eq. 8-12).

:func:`compute_metrics` takes 0/1 targets and predicted probabilities, both (N samples, C
labels), and predicts a label where its probability is ``>= threshold``. Conventions:

- **Ties** count against the prediction, as in eq. 9 and 12 (``>=``): a label tied with a
  relevant one is ranked above it, so constant scores get the worst ranking values. Hence
  ranking loss counts a tied (relevant, irrelevant) pair as misordered (as scikit-learn and
  the MLL toolbox do; the strict ``<`` printed in eq. 11 would give constant scores a
  perfect 0), and one-error counts a sample as wrong when an irrelevant label ties for the
  top score (the MLL toolbox counts it right when a relevant one also ties there).
- **Coverage** is scikit-learn's ``coverage_error - 1``: eq. 9 counts the searched labels
  from 1, but the paper's 1.606 on RAF-Compound, where every face has exactly two labels,
  is below the minimum of 2 of that count, so its numbers subtract 1 (as the MLL toolbox
  does).
- **Ranking metrics** (coverage, one-error, ranking loss, average precision) leave out the
  samples with no label or with every label, whose ranking cannot be wrong (as the MLL
  toolbox does for the last three; coverage follows, so all four use the same samples);
  they are NaN when no sample remains.
- **F1**: a label (macro) or a whole set (micro) with no positive target and no positive
  prediction scores 0 (scikit-learn's ``zero_division=0``).
- **AUC**: macro-AUC averages over the labels that have both positive and negative targets
  (the others are left out; NaN if none remains); micro-AUC pools every (sample, label)
  pair and is NaN if the targets are all 0 or all 1. Tied scores count one half.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata

from mlfer.core.errors import MlferError

METRIC_NAMES: tuple[str, ...] = (
    "hamming_loss",
    "coverage",
    "one_error",
    "ranking_loss",
    "average_precision",
    "micro_f1",
    "macro_f1",
    "micro_auc",
    "macro_auc",
)
#: The metrics where smaller is better (the paper's ↓); the others are better larger (↑).
LOWER_IS_BETTER: frozenset[str] = frozenset(METRIC_NAMES[:4])


def compute_metrics(targets: ArrayLike, scores: ArrayLike, threshold: float | ArrayLike = 0.5) -> dict[str, float]:
    """The nine metrics of section 4.1, keyed by :data:`METRIC_NAMES` in that order.

    Args:
        targets: (N, C) ground truth, 0 or 1 (or booleans).
        scores: (N, C) predicted probabilities in [0, 1].
        threshold: probability at or above which a label is predicted; a scalar or one per
            label, shape (C,).
    """
    truth = _label_matrix(targets)
    probabilities = _score_matrix(scores, truth.shape)
    predicted = probabilities >= _thresholds(threshold, truth.shape[1])
    count = truth.sum(axis=1)
    ranked = (count > 0) & (count < truth.shape[1])
    ranked_truth, ranked_scores = truth[ranked], probabilities[ranked]
    hits = truth & predicted
    values = {
        "hamming_loss": _hamming_loss(truth, predicted),
        "coverage": _coverage(ranked_truth, ranked_scores),
        "one_error": _one_error(ranked_truth, ranked_scores),
        "ranking_loss": _ranking_loss(ranked_truth, ranked_scores),
        "average_precision": _average_precision(ranked_truth, ranked_scores),
        "micro_f1": _f1(truth.sum(), predicted.sum(), hits.sum()),
        "macro_f1": np.mean(_f1(truth.sum(axis=0), predicted.sum(axis=0), hits.sum(axis=0))),
        "micro_auc": _auc(truth.reshape(-1, 1), probabilities.reshape(-1, 1))[0],
        "macro_auc": _mean_of_defined(_auc(truth, probabilities)),
    }
    return {name: float(values[name]) for name in METRIC_NAMES}


def _hamming_loss(targets: np.ndarray, predicted: np.ndarray) -> float:
    r"""Hamming loss (eq. 8), the fraction of wrong (sample, label) decisions.

    .. math::
        \mathrm{HL} = \frac{1}{NC} \sum_{n=1}^{N} \sum_{c=1}^{C} \mathbb{I}(y_{c,n} \neq \hat{y}_{c,n})

    Args:
        targets: (N, C) boolean ground truth.
        predicted: (N, C) boolean predictions.
    """
    return float(np.mean(targets != predicted))


def _coverage(targets: np.ndarray, scores: np.ndarray) -> float:
    r"""Coverage (eq. 9) minus 1: how far down the ranking the last relevant label lies.

    .. math::
        \mathrm{Cov} = \frac{1}{N} \sum_{n=1}^{N} \max_{c: y_{c,n}=1}
        |\{k : \hat{y}_{k,n} \geq \hat{y}_{c,n}\}| - 1

    Args:
        targets: (N, C) boolean ground truth; every row has a relevant label.
        scores: (N, C) scores; NaN is returned for N = 0.
    """
    if len(targets) == 0:
        return np.nan
    lowest_relevant = np.where(targets, scores, np.inf).min(axis=1, keepdims=True)
    return float(np.mean((scores >= lowest_relevant).sum(axis=1)) - 1)


def _one_error(targets: np.ndarray, scores: np.ndarray) -> float:
    r"""One-error (eq. 10), the fraction of samples whose top-ranked label is irrelevant.

    .. math::
        \mathrm{OE} = \frac{1}{N} \sum_{n=1}^{N} \mathbb{I}(\hat{y}_{0,n} \notin \{c : y_{c,n} = 1\})

    An irrelevant label tied for the top score counts as top-ranked.

    Args:
        targets: (N, C) boolean ground truth.
        scores: (N, C) scores; NaN is returned for N = 0.
    """
    if len(targets) == 0:
        return np.nan
    top_irrelevant = np.where(targets, -np.inf, scores).max(axis=1)
    return float(np.mean(top_irrelevant >= scores.max(axis=1)))


def _ranking_loss(targets: np.ndarray, scores: np.ndarray) -> float:
    r"""Ranking loss (eq. 11), the fraction of (relevant, irrelevant) pairs misordered.

    .. math::
        \mathrm{RL} = \frac{1}{N} \sum_{n=1}^{N}
        \frac{|\{(c, k) : \hat{y}_{c,n} \leq \hat{y}_{k,n}, y_{c,n} = 1, y_{k,n} = 0\}|}
        {|Y_n| (C - |Y_n|)}

    A tied pair counts as misordered (``<=``, where eq. 11 prints ``<``).

    Args:
        targets: (N, C) boolean ground truth; every row has a relevant and an irrelevant label.
        scores: (N, C) scores; NaN is returned for N = 0.
    """
    if len(targets) == 0:
        return np.nan
    irrelevant_above = _count_at_least(scores) - _count_at_least(scores, among=targets)
    misordered = np.where(targets, irrelevant_above, 0).sum(axis=1)
    relevant = targets.sum(axis=1)
    return float(np.mean(misordered / (relevant * (targets.shape[1] - relevant))))


def _average_precision(targets: np.ndarray, scores: np.ndarray) -> float:
    r"""Average precision (eq. 12), the mean fraction of relevant labels ranked above a relevant one.

    .. math::
        \mathrm{AP} = \frac{1}{N} \sum_{n=1}^{N} \frac{1}{|Y_n|} \sum_{c: y_{c,n}=1}
        \frac{|\{k : y_{k,n} = 1, \hat{y}_{k,n} \geq \hat{y}_{c,n}\}|}
        {|\{k : \hat{y}_{k,n} \geq \hat{y}_{c,n}\}|}

    Args:
        targets: (N, C) boolean ground truth; every row has a relevant label.
        scores: (N, C) scores; NaN is returned for N = 0.
    """
    if len(targets) == 0:
        return np.nan
    precision = _count_at_least(scores, among=targets) / _count_at_least(scores)
    per_sample = np.where(targets, precision, 0.0).sum(axis=1) / targets.sum(axis=1)
    return float(np.mean(per_sample))


def _count_at_least(scores: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
    """For each (n, c), how many labels k (of ``among`` only, if given) have score_k >= score_c.

    Entries outside ``among`` are meaningless.
    """
    negated = -scores if among is None else np.where(among, -scores, np.inf)
    return rankdata(negated, method="max", axis=1)


def _f1(positive: ArrayLike, predicted: ArrayLike, true_positive: ArrayLike) -> np.ndarray:
    """F1 = 2 TP / (2 TP + FP + FN) from the counts of positives, predictions and hits; 0 when 0/0."""
    denominator = np.asarray(positive, dtype=np.float64) + np.asarray(predicted, dtype=np.float64)
    return np.divide(
        2.0 * np.asarray(true_positive), denominator, out=np.zeros_like(denominator), where=denominator > 0
    )


def _auc(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Area under the ROC curve of each column (Mann-Whitney U, ties count 1/2); NaN if one-class."""
    positive = targets.sum(axis=0).astype(np.float64)
    negative = len(targets) - positive
    rank_sum = np.where(targets, rankdata(scores, axis=0), 0.0).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (rank_sum - positive * (positive + 1) / 2) / (positive * negative)
    return np.where((positive > 0) & (negative > 0), auc, np.nan)


def _mean_of_defined(values: np.ndarray) -> float:
    """Mean of the non-NaN entries; NaN if there are none."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else np.nan


def _matrix(values: ArrayLike, field: str) -> np.ndarray:
    """``values`` as a finite float (N, C) array with N, C >= 1."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise MlferError(f"expected a numeric (samples, labels) array ({error})", field=field) from None
    if array.ndim != 2 or array.size == 0:
        raise MlferError(f"expected a non-empty 2-D (samples, labels) array, got shape {array.shape}", field=field)
    _reject(~np.isfinite(array), array, field, "is not finite")
    return array


def _reject(bad: np.ndarray, array: np.ndarray, field: str, problem: str) -> None:
    """Raise an MlferError naming the first flagged entry of ``array``, if any."""
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        entry = f"entry [{', '.join(map(str, index))}] = " if index else ""
        raise MlferError(f"{entry}{array[index]} {problem}", field=field)


def _label_matrix(targets: ArrayLike) -> np.ndarray:
    """The targets as a boolean (N, C) array; every entry must be 0 or 1."""
    array = _matrix(targets, "targets")
    _reject((array != 0) & (array != 1), array, "targets", "is not 0 or 1")
    return array.astype(bool)


def _score_matrix(scores: ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
    """The scores as a float (N, C) array of probabilities, shaped like the targets."""
    array = _matrix(scores, "scores")
    if array.shape != shape:
        raise MlferError(f"shape {array.shape} differs from the targets' {shape}", field="scores")
    _reject((array < 0) | (array > 1), array, "scores", "is not a probability in [0, 1]")
    return array


def _thresholds(threshold: float | ArrayLike, num_labels: int) -> np.ndarray:
    """The threshold as a scalar or (C,) array of probabilities."""
    try:
        array = np.asarray(threshold, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise MlferError(f"expected a number or one per label ({error})", field="threshold") from None
    if array.shape not in ((), (num_labels,)):
        raise MlferError(
            f"expected a number or one per label, shape ({num_labels},); got shape {array.shape}", field="threshold"
        )
    _reject(~((array >= 0) & (array <= 1)), array, "threshold", "is not a probability in [0, 1]")
    return array
