"""The nine metrics: scikit-learn cross-checks, eq. 10 by a loop, hand-worked eq. 8-12, conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from mlfer.core.errors import MlferError
from mlfer.evaluation.metrics import LOWER_IS_BETTER, METRIC_NAMES, compute_metrics

RANKING = ("coverage", "one_error", "ranking_loss", "average_precision")


def _random_case(seed: int, samples: int = 200, labels: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Targets with some empty and full rows, and scores rounded to one decimal (many ties)."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((samples, labels)) < 0.35).astype(int)
    targets[:5] = 0
    targets[5:10] = 1
    scores = np.round(rng.random((samples, labels)), 1)
    return targets, scores


def _ranked_rows(targets: np.ndarray) -> np.ndarray:
    count = targets.sum(axis=1)
    return (count > 0) & (count < targets.shape[1])


def _one_error_loop(targets: np.ndarray, scores: np.ndarray) -> float:
    """Eq. 10 sample by sample; every label tied for the top score is top-ranked."""
    errors = 0
    for truth, score in zip(targets, scores):
        top_labels = [c for c in range(len(score)) if score[c] == max(score)]
        errors += any(truth[c] == 0 for c in top_labels)
    return errors / len(targets)


def test_names_and_directions():
    assert METRIC_NAMES == (
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
    assert {"hamming_loss", "coverage", "one_error", "ranking_loss"} == LOWER_IS_BETTER
    result = compute_metrics(*_random_case(0))
    assert tuple(result) == METRIC_NAMES
    assert all(type(value) is float for value in result.values())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_scikit_learn_with_ties(seed):
    targets, scores = _random_case(seed)
    predicted = scores >= 0.5
    kept = _ranked_rows(targets)
    expected = {
        "hamming_loss": skm.hamming_loss(targets, predicted),
        "coverage": skm.coverage_error(targets[kept], scores[kept]) - 1,
        "ranking_loss": skm.label_ranking_loss(targets[kept], scores[kept]),
        "average_precision": skm.label_ranking_average_precision_score(targets[kept], scores[kept]),
        "micro_f1": skm.f1_score(targets, predicted, average="micro", zero_division=0),
        "macro_f1": skm.f1_score(targets, predicted, average="macro", zero_division=0),
        "micro_auc": skm.roc_auc_score(targets, scores, average="micro"),
        "macro_auc": skm.roc_auc_score(targets, scores, average="macro"),
    }
    result = compute_metrics(targets, scores)
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, abs=1e-10), name


@pytest.mark.parametrize("decimals", [1, 8])
def test_one_error_matches_a_loop_over_eq_10(decimals):
    targets, scores = _random_case(7, samples=300)
    scores = np.round(scores + np.random.default_rng(8).random(scores.shape) / 10, decimals).clip(0, 1)
    kept = _ranked_rows(targets)
    expected = _one_error_loop(targets[kept], scores[kept])
    assert compute_metrics(targets, scores)["one_error"] == pytest.approx(expected, abs=1e-10)


def test_hand_worked_example():
    targets = [[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0]]
    scores = [[0.9, 0.6, 0.4, 0.1], [0.7, 0.2, 0.7, 0.3], [0.5, 0.3, 0.3, 0.8]]
    expected = {
        "hamming_loss": 7 / 12,  # 2 + 3 + 2 wrong of 12
        "coverage": (3 + 4 + 4) / 3 - 1,  # labels down to the lowest relevant
        "one_error": 2 / 3,  # B: top tied irrelevant, C: 0.8 irrelevant
        "ranking_loss": (1 / 4 + 3 / 3 + 3 / 4) / 3,  # C's tie (0.3, 0.3) is misordered
        "average_precision": ((1 + 2 / 3) / 2 + 1 / 4 + (1 / 2 + 2 / 4) / 2) / 3,
        "micro_f1": 2 * 2 / (5 + 6),  # TP 2, positives 5, predicted 6
        "macro_f1": (4 / 5 + 0 + 0 + 0) / 4,
        "micro_auc": 16 / 35,  # 5 x 7 pairs, one tie counts 1/2
        "macro_auc": (1 / 2 + 0 + 1 / 2) / 3,  # the last label has no positive
    }
    result = compute_metrics(targets, scores)
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, abs=1e-12), name


def test_per_label_threshold():
    targets, scores = _random_case(3)
    threshold = np.array([0.2, 0.3, 0.5, 0.5, 0.7, 0.9])
    predicted = scores >= threshold
    result = compute_metrics(targets, scores, threshold=threshold)
    assert result["hamming_loss"] == pytest.approx(skm.hamming_loss(targets, predicted), abs=1e-10)
    assert result["macro_f1"] == pytest.approx(
        skm.f1_score(targets, predicted, average="macro", zero_division=0), abs=1e-10
    )
    assert result["hamming_loss"] != compute_metrics(targets, scores)["hamming_loss"]


def test_threshold_is_inclusive():
    result = compute_metrics([[1, 0]], [[0.5, 0.49]])
    assert result["hamming_loss"] == 0.0
    assert compute_metrics([[1, 0]], [[0.5, 0.49]], threshold=[0.6, 0.5])["hamming_loss"] == 0.5


def test_empty_and_full_rows_leave_the_ranking_metrics_unchanged():
    targets, scores = _random_case(5)
    kept = _ranked_rows(targets)
    with_all = compute_metrics(targets, scores)
    without = compute_metrics(targets[kept], scores[kept])
    for name in RANKING:
        assert with_all[name] == pytest.approx(without[name], abs=1e-12), name
    # Counting them would change the values: a full row needs the whole ranking (coverage C),
    # and an empty or full row cannot be misordered (ranking loss 0).
    assert skm.coverage_error(targets, scores) - 1 != pytest.approx(with_all["coverage"])
    assert skm.label_ranking_loss(targets, scores) != pytest.approx(with_all["ranking_loss"])
    assert with_all["hamming_loss"] != pytest.approx(without["hamming_loss"])


def test_no_ranked_sample_gives_nan_ranking_metrics():
    result = compute_metrics([[0, 0, 0], [1, 1, 1]], [[0.2, 0.9, 0.4], [0.1, 0.95, 0.3]])
    assert all(math.isnan(result[name]) for name in RANKING)
    assert result["hamming_loss"] == pytest.approx(3 / 6)
    assert result["macro_auc"] == pytest.approx((0 + 1 + 0) / 3)


def test_one_class_targets_give_nan_auc_and_zero_f1():
    result = compute_metrics(np.zeros((3, 2)), [[0.1, 0.2], [0.3, 0.4], [0.2, 0.1]])
    assert math.isnan(result["micro_auc"]) and math.isnan(result["macro_auc"])
    assert result["micro_f1"] == 0.0 and result["macro_f1"] == 0.0
    assert result["hamming_loss"] == 0.0


def test_label_order_does_not_matter_even_with_ties():
    targets, scores = _random_case(11)
    result = compute_metrics(targets, scores)
    for permutation in np.random.default_rng(12).permuted(np.tile(np.arange(6), (3, 1)), axis=1):
        permuted = compute_metrics(targets[:, permutation], scores[:, permutation])
        for name in METRIC_NAMES:
            assert permuted[name] == pytest.approx(result[name], abs=1e-12), name


def test_constant_scores_are_the_worst_ranking():
    targets, _ = _random_case(4)
    result = compute_metrics(targets, np.full(targets.shape, 0.3))
    assert result["coverage"] == 5.0
    assert result["one_error"] == 1.0
    assert result["ranking_loss"] == 1.0
    assert result["micro_auc"] == 0.5


GOOD_TARGETS = [[0, 1], [1, 0]]
GOOD_SCORES = [[0.1, 0.2], [0.3, 0.4]]


@pytest.mark.parametrize(
    "targets, scores, threshold, field, message",
    [
        ([[0, 0.5], [1, 0]], GOOD_SCORES, 0.5, "targets", r"targets: entry \[0, 1\] = 0.5 is not 0 or 1"),
        (GOOD_TARGETS, [[0.1, 0.2], [0.3, 1.5]], 0.5, "scores", r"scores: entry \[1, 1\] = 1.5 is not a probab"),
        (GOOD_TARGETS, [[0.1, np.nan], [0.3, 0.4]], 0.5, "scores", r"scores: entry \[0, 1\] = nan is not finite"),
        (GOOD_TARGETS, [[0.1, 0.2, 0.3], [0.3, 0.4, 0.5]], 0.5, "scores", "differs"),
        ([0, 1, 1], [0.1, 0.2, 0.3], 0.5, "targets", "2-D"),
        ([["a", "b"]], [[0.1, 0.2]], 0.5, "targets", "numeric"),
        (GOOD_TARGETS, GOOD_SCORES, [0.5, 0.5, 0.5], "threshold", r"shape \(2,\)"),
        (GOOD_TARGETS, GOOD_SCORES, [0.5, -1.0], "threshold", r"threshold: entry \[1\] = -1.0"),
        (GOOD_TARGETS, GOOD_SCORES, 2.0, "threshold", "threshold: 2.0 is not"),
    ],
)
def test_bad_input_names_the_field(targets, scores, threshold, field, message):
    with pytest.raises(MlferError, match=message) as caught:
        compute_metrics(targets, scores, threshold)
    assert caught.value.field == field
