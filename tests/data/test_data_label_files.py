"""read_labels from Python: .npy and .csv label files in RAF order (tests/cli/test_cli_graph.py runs
``mlfer graph`` on them, and on the damaged files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlfer.core.errors import MlferError
from mlfer.data import read_labels


def test_csv_header_maps_columns_to_raf_order(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("anger,happiness,surprise,fear,disgust,sadness\n1,0,0,0,0,1\n0,1,1,0,0,0\n")
    labels = read_labels(path)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [[0, 0, 0, 0, 1, 1], [1, 0, 0, 1, 0, 0]])


def test_scores_need_binarize(tmp_path: Path) -> None:
    path = tmp_path / "scores.npy"
    np.save(path, np.array([[0.5, 0.1, 0.0, 0.4, 0.0, 0.0]]))
    np.testing.assert_array_equal(read_labels(path, binarize=0.4), [[1, 0, 0, 1, 0, 0]])
    with pytest.raises(MlferError, match=r"scores\.npy.*row 0: value 0\.5 is not 0 or 1") as caught:
        read_labels(path)
    assert caught.value.field == "surprise"


def test_a_bad_csv_value_names_its_line_and_expression(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("1,0,0,0,0,0\n\n0,1,x,0,0,0\n")
    with pytest.raises(MlferError, match=r"labels\.csv, line 3.*'x' is not a finite number") as caught:
        read_labels(path)
    assert caught.value.field == "disgust"
