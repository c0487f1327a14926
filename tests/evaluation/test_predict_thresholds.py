"""Per-label thresholds: F1-maximising tuning, thresholds.json, and the default/tuned choice."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.evaluation.thresholds import (
    GRID,
    THRESHOLDS_FILE,
    choose_thresholds,
    default_thresholds,
    load_thresholds,
    save_thresholds,
    tune_thresholds,
)


def _f1(targets: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    return f1_score(targets, scores >= threshold, zero_division=0)


def test_tuning_finds_the_threshold_that_separates_each_label() -> None:
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, (200, 6))
    targets[0] = 1
    # Label c is positive exactly when its score reaches 0.2 + 0.1 c, the only grid value that cuts perfectly.
    cuts = GRID[[3, 5, 7, 9, 11, 13]]
    scores = np.where(
        targets == 1, cuts + rng.uniform(0, 0.04, targets.shape), cuts - rng.uniform(0.001, 0.04, targets.shape)
    )
    thresholds = tune_thresholds(targets, scores)
    np.testing.assert_allclose(thresholds, cuts)
    for c in range(6):
        assert _f1(targets[:, c], scores[:, c], thresholds[c]) == 1.0


def test_tuned_thresholds_match_a_brute_force_search_with_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, (120, 6))
    scores = np.clip(0.35 * targets + rng.uniform(0, 0.65, targets.shape), 0, 1)
    thresholds = tune_thresholds(targets, scores)
    for c in range(6):
        best = max(_f1(targets[:, c], scores[:, c], t) for t in GRID)
        assert _f1(targets[:, c], scores[:, c], thresholds[c]) == pytest.approx(best)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 60))
def test_tuned_f1_is_never_below_the_default_threshold(seed: int, count: int) -> None:
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 2, (count, 6))
    scores = rng.uniform(0, 1, (count, 6))
    thresholds = tune_thresholds(targets, scores)
    assert np.all(np.isin(thresholds, GRID))
    for c in range(6):
        assert _f1(targets[:, c], scores[:, c], thresholds[c]) >= _f1(targets[:, c], scores[:, c], 0.5) - 1e-12


def test_a_label_without_positives_keeps_one_half_and_ties_go_to_one_half() -> None:
    targets = np.zeros((4, 6), dtype=int)
    targets[:, 0] = [1, 1, 0, 0]
    scores = np.array([[0.9] * 6, [0.8] * 6, [0.1] * 6, [0.2] * 6])
    thresholds = tune_thresholds(targets, scores)
    # Every threshold in (0.2, 0.8] separates label 0 perfectly: the one nearest 0.5 wins.
    assert thresholds[0] == 0.5
    np.testing.assert_array_equal(thresholds[1:], 0.5)


def test_tuning_rejects_mismatched_shapes() -> None:
    with pytest.raises(MlferError, match="N x 6"):
        tune_thresholds(np.zeros((3, 6)), np.zeros((3, 5)))


def test_thresholds_round_trip_through_the_checkpoint_folder(tmp_path) -> None:
    values = np.array([0.3, 0.45, 0.5, 0.55, 0.6, 0.25])
    path = save_thresholds(tmp_path, values)
    assert path == tmp_path / THRESHOLDS_FILE
    assert list(json.loads(path.read_text())) == list(EXPRESSIONS)
    np.testing.assert_array_equal(load_thresholds(tmp_path), values)
    np.testing.assert_array_equal(choose_thresholds("tuned", tmp_path), values)
    np.testing.assert_array_equal(choose_thresholds("default", tmp_path), np.full(6, 0.5))


def test_missing_thresholds_file_is_named(tmp_path) -> None:
    with pytest.raises(MlferError, match=f"{THRESHOLDS_FILE}.*no tuned thresholds"):
        choose_thresholds("tuned", tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[0.5, 0.5]", "expected an object"),
        (json.dumps(dict.fromkeys(EXPRESSIONS[:5], 0.5)), r"missing \['anger'\]"),
        (json.dumps({**dict.fromkeys(EXPRESSIONS, 0.5), "anger": 1.5}), r"lie in \[0, 1\]"),
        (json.dumps({**dict.fromkeys(EXPRESSIONS, 0.5), "anger": "high"}), "must be numbers"),
    ],
)
def test_malformed_thresholds_file_names_the_file(tmp_path, text: str, message: str) -> None:
    (tmp_path / THRESHOLDS_FILE).write_text(text)
    with pytest.raises(MlferError, match=message) as error:
        load_thresholds(tmp_path)
    assert str(tmp_path / THRESHOLDS_FILE) in str(error.value)


def test_unknown_threshold_kind_is_refused(tmp_path) -> None:
    with pytest.raises(MlferError, match="choose default, tuned or auto"):
        choose_thresholds("best", tmp_path)


def test_auto_thresholds_are_the_tuned_ones_where_the_folder_has_them(tmp_path) -> None:
    np.testing.assert_array_equal(choose_thresholds("auto", tmp_path), default_thresholds())
    with pytest.raises(MlferError, match="no tuned thresholds"):
        choose_thresholds("tuned", tmp_path)
    save_thresholds(tmp_path, [0.3] * 6)
    np.testing.assert_array_equal(choose_thresholds("auto", tmp_path), [0.3] * 6)
    np.testing.assert_array_equal(choose_thresholds("default", tmp_path), default_thresholds())
