"""The calibration step of scripts/package_model.py: the two halves, the check and its decision, the AUCs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def package_model(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import package_model

    yield package_model
    sys.modules.pop("package_model", None)


def _rows(count: int, seed: int, sharpness: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn with probability sigmoid(z) (some faces get none), and logits ``sharpness * z``."""
    generator = np.random.default_rng(seed)
    z = generator.normal(-1.0, 2.0, (count, 6))
    labels = (generator.random((count, 6)) < expit(z)).astype(np.uint8)
    return labels, sharpness * z


def test_the_halves_are_fixed_disjoint_and_stratified_on_having_a_label(package_model) -> None:
    labels, _ = _rows(1001, seed=0, sharpness=1.0)
    first, second = package_model.split_halves(labels)
    assert np.array_equal(np.sort(np.concatenate([first, second])), np.arange(1001))
    assert abs(len(first) - len(second)) <= 1
    unlabelled = ~labels.any(axis=1)
    assert unlabelled.sum() > 20
    assert abs(unlabelled[first].sum() - unlabelled[second].sum()) <= 1
    again = package_model.split_halves(labels)
    assert np.array_equal(again[0], first) and np.array_equal(again[1], second)


def test_an_overconfident_model_is_calibrated_and_the_scaling_kept(package_model, capsys) -> None:
    labels, logits = _rows(4000, seed=1, sharpness=3.0)
    check = package_model.check_calibration(labels, logits)
    assert check.kept and check.after is not None
    assert check.after.mean() < 0.5 * check.before.mean()
    np.testing.assert_allclose(check.scale.scale, 1 / 3, atol=0.05)
    _, second = package_model.split_halves(labels)
    assert np.array_equal(check.held_out, second)
    package_model.print_calibration(check)
    printed = capsys.readouterr().out
    assert "calibration kept: it lowers the mean ECE" in printed and printed.count("as trained") == 7


def test_a_label_no_face_has_leaves_the_model_as_trained(package_model, capsys) -> None:
    labels, logits = _rows(400, seed=2, sharpness=3.0)
    labels[:, 4] = 0
    check = package_model.check_calibration(labels, logits)
    assert check.scale is None and check.after is None and not check.kept
    package_model.print_calibration(check)
    assert "calibration not kept: sadness is on every face or on none" in capsys.readouterr().out


def test_a_scaling_that_does_not_lower_the_mean_ece_is_not_kept(package_model) -> None:
    check = package_model.CalibrationCheck(None, np.arange(3), np.full(6, 0.02), np.full(6, 0.03))
    assert not check.kept


def test_the_aucs_leave_out_the_faces_without_a_label(package_model) -> None:
    labels = np.zeros((5, 6), dtype=np.uint8)
    labels[0, [0, 1]] = 1
    labels[1, [1, 2]] = 1
    labels[2, 2] = 1
    scores = np.zeros((5, 6))
    scores[:, 0] = [0.9, 0.2, 0.1, 0.95, 0.99]  # the last two faces have no label: left out, AUC 1
    aucs = package_model.expression_aucs(labels, scores)
    assert aucs["surprise"] == 1.0
    assert np.isnan(aucs["happiness"])  # no labelled face has it
    assert aucs["fear"] == 0.5  # tied scores
