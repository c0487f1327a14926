"""Calibration: ECE against a direct computation, the Platt scaling against known truth and a plain BCE
minimisation, and the reliability plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.optimize import minimize
from scipy.special import expit

from mlfer.core.errors import MlferError
from mlfer.evaluation.calibration import (
    LogitScale,
    bin_statistics,
    expected_calibration_error,
    fit_logit_scale,
    plot_reliability,
)


def _direct_ece(labels: np.ndarray, probabilities: np.ndarray, bins: int) -> float:
    """ECE of one column by an explicit loop over the bins [k/B, (k+1)/B), the last one closed."""
    total = 0.0
    for k in range(bins):
        upper = probabilities <= 1 if k == bins - 1 else probabilities < (k + 1) / bins
        members = (probabilities >= k / bins) & upper
        if members.any():
            total += members.sum() / len(labels) * abs(labels[members].mean() - probabilities[members].mean())
    return total


def test_ece_of_a_hand_example() -> None:
    labels = np.array([[1, 0], [0, 0], [1, 1], [1, 1], [0, 1], [1, 0]])
    probabilities = np.array([[1.0, 0.0], [0.96, 0.1], [0.5, 0.52], [0.55, 0.6], [0.1, 0.99], [0.02, 0.03]])
    # Column 0, 15 bins: {1.0, 0.96} in the last bin (mean label 0.5, mean p 0.98), {0.5} in bin 7, {0.55} in
    # bin 8, {0.1} in bin 1, {0.02} in bin 0: (2 * 0.48 + 0.5 + 0.45 + 0.1 + 0.98) / 6.
    expected = (2 * 0.48 + 0.5 + 0.45 + 0.1 + 0.98) / 6
    ece = expected_calibration_error(labels, probabilities)
    assert ece.shape == (2,)
    assert ece[0] == pytest.approx(expected)
    for column in range(2):
        assert ece[column] == pytest.approx(_direct_ece(labels[:, column], probabilities[:, column], 15))


@pytest.mark.parametrize("bins", [1, 10, 15])
def test_ece_matches_a_direct_computation_on_random_rows(bins: int) -> None:
    generator = np.random.default_rng(bins)
    probabilities = generator.random((300, 6))
    probabilities[:5] = 1.0  # exactly 1: the last bin
    probabilities[5:10] = 0.0
    labels = (generator.random((300, 6)) < probabilities**2).astype(np.uint8)
    ece = expected_calibration_error(labels, probabilities, bins)
    for column in range(6):
        assert ece[column] == pytest.approx(_direct_ece(labels[:, column], probabilities[:, column], bins))


def test_a_probability_of_one_falls_in_the_last_bin() -> None:
    stats = bin_statistics(np.array([[1], [0], [1]]), np.array([[1.0], [0.0], [0.95]]))
    assert stats.counts[0, -1] == 2 and stats.counts[0, 0] == 1 and stats.counts.sum() == 3
    assert np.isnan(stats.observed[0, 5]) and stats.observed[0, -1] == 1.0


def test_ece_is_zero_where_every_bin_holds_its_rate() -> None:
    labels = np.array([[1], [0], [1], [1]])
    assert expected_calibration_error(labels, np.array([[0.5], [0.5], [1.0], [1.0]]))[0] == pytest.approx(0.0)


def test_ece_refuses_what_is_not_a_probability() -> None:
    with pytest.raises(MlferError, match="not a probability"):
        expected_calibration_error(np.array([[1]]), np.array([[1.5]]))
    with pytest.raises(MlferError, match="at least one bin"):
        expected_calibration_error(np.array([[1]]), np.array([[0.5]]), bins=0)


def _overconfident(rows: int, seed: int, bias: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Logits 2 z of labels drawn with probability sigmoid(z + bias): the calibrated scale is 0.5,
    the bias ``bias``."""
    generator = np.random.default_rng(seed)
    z = generator.normal(0.0, 2.0, (rows, 6))
    labels = (generator.random((rows, 6)) < expit(z + bias)).astype(np.uint8)
    return labels, 2 * z


def test_platt_scaling_finds_the_known_calibration() -> None:
    labels, logits = _overconfident(20_000, seed=0, bias=0.5)
    scale = fit_logit_scale(labels, logits)
    np.testing.assert_allclose(scale.scale, 0.5, atol=0.03)
    np.testing.assert_allclose(scale.bias, 0.5, atol=0.06)


def test_platt_scaling_is_the_bce_minimum() -> None:
    labels, logits = _overconfident(500, seed=1)
    scale = fit_logit_scale(labels, logits)
    for column in range(6):
        y, z = labels[:, column], logits[:, column]

        def bce(ab: np.ndarray, y: np.ndarray = y, z: np.ndarray = z) -> float:
            s = ab[0] * z + ab[1]
            return float(np.mean(np.logaddexp(0, s) - y * s))

        best = minimize(bce, np.array([1.0, 0.0]), method="BFGS", options={"gtol": 1e-10}).x
        np.testing.assert_allclose([scale.scale[column], scale.bias[column]], best, atol=1e-3)


def test_platt_scaling_lowers_the_ece_of_held_out_rows_and_keeps_the_order() -> None:
    labels, logits = _overconfident(4000, seed=2)
    scale = fit_logit_scale(labels[:2000], logits[:2000])
    before = expected_calibration_error(labels[2000:], expit(logits[2000:]))
    calibrated = scale.probabilities(logits[2000:])
    assert expected_calibration_error(labels[2000:], calibrated).mean() < 0.5 * before.mean()
    for column in range(6):
        order = np.argsort(logits[2000:, column], kind="stable")
        assert np.all(np.diff(calibrated[order, column]) >= 0)


def test_logit_scale_probabilities() -> None:
    scale = LogitScale(np.array([0.5, 2.0]), np.array([1.0, -1.0]))
    logits = np.array([[0.0, 0.0], [2.0, 1.0], [-1e4, 1e4]])
    expected = 1 / (1 + np.exp(-np.clip(logits * [0.5, 2.0] + [1.0, -1.0], -700, 700)))
    with np.errstate(over="raise"):  # no overflow on huge logits
        probabilities = scale.probabilities(logits)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-12, atol=1e-15)


def test_platt_scaling_refuses_a_reversed_or_constant_label() -> None:
    labels, logits = _overconfident(500, seed=3)
    with pytest.raises(MlferError, match="surprise: fitted scale .* is not positive"):
        fit_logit_scale(labels, -logits)
    labels[:, 2] = 0
    with pytest.raises(MlferError, match="disgust is on every face or on none"):
        fit_logit_scale(labels, logits)


def test_reliability_plot_is_written_whole(tmp_path: Path) -> None:
    labels, logits = _overconfident(600, seed=4)
    scale = fit_logit_scale(labels, logits)
    path = tmp_path / "plots" / "reliability.png"
    plot_reliability(labels, {"as trained": expit(logits), "calibrated": scale.probabilities(logits)}, path)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 500
    assert [entry.name for entry in path.parent.iterdir()] == ["reliability.png"]  # no temporary left


def test_reliability_plot_refuses_nothing_to_plot_or_other_columns(tmp_path: Path) -> None:
    with pytest.raises(MlferError, match="no probabilities"):
        plot_reliability(np.zeros((2, 6)), {}, tmp_path / "r.png")
    with pytest.raises(MlferError, match="one column per expression"):
        plot_reliability(np.zeros((2, 2)), {"as trained": np.zeros((2, 2))}, tmp_path / "r.png")
    assert not list(tmp_path.iterdir())
