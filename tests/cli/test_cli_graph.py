"""``mlfer graph`` on small CSV files, on RAF-ML's distributions, and on bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlfer.cli import main
from mlfer.graph import LabelGraph, load_graph

# Rows in RAF order (surprise, fear, disgust, happiness, sadness, anger).
ROWS = np.array(
    [
        [1, 0, 0, 1, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 1],
        [0, 0, 1, 0, 1, 0],
        [1, 0, 0, 1, 0, 0],
        [0, 0, 1, 0, 0, 1],
    ]
)


def write_csv(path: Path, rows: np.ndarray, header: list[str] | None = None, order: list[int] | None = None) -> Path:
    order = order if order is not None else list(range(6))
    lines = [",".join(header)] if header else []
    lines += [",".join(str(value) for value in row[order]) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_graph(labels: Path, out: Path, *extra: str) -> int:
    return main(["graph", "--labels", str(labels), "--t1", "0.15", "--t2", "0.4", "--out", str(out), *extra])


def test_csv_without_header(tmp_path, capsys):
    labels = write_csv(tmp_path / "labels.csv", ROWS)
    assert run_graph(labels, tmp_path / "out") == 0
    printed = capsys.readouterr().out
    assert "6 images" in printed and "happiness <- surprise  P = 1.000" in printed
    assert "ML-GCN adjacency" in printed
    graph = load_graph(tmp_path / "out" / "graph.json")
    expected = LabelGraph.from_labels(ROWS, 0.15, 0.4)
    np.testing.assert_array_equal(graph.cooccurrence, expected.cooccurrence)
    assert (tmp_path / "out" / "graph.png").stat().st_size > 5000


def test_csv_header_in_other_order_is_mapped_to_raf_order(tmp_path, capsys):
    # Columns written as JAFFE's HAP SAD SUR ANG DIS FEA, i.e. RAF positions 3 4 0 5 2 1.
    order = [3, 4, 0, 5, 2, 1]
    labels = write_csv(tmp_path / "jaffe_order.csv", ROWS, ["HAP", "SAD", "SUR", "ANG", "DIS", "FEA"], order)
    assert run_graph(labels, tmp_path / "out", "--p", "0.3") == 0
    assert "p = 0.3" in capsys.readouterr().out
    graph = load_graph(tmp_path / "out" / "graph.json")
    np.testing.assert_array_equal(graph.label_counts, ROWS.sum(axis=0))
    np.testing.assert_array_equal(graph.cooccurrence, ROWS.T @ ROWS)


def test_raf_ml_distributions_binarised(shared_data, tmp_path, capsys):
    source = shared_data / "raf-ml" / "label_distribution.npy"
    assert run_graph(source, tmp_path / "out", "--binarize", "1/6") == 0
    printed = capsys.readouterr().out
    print(printed)
    assert "4908 images" in printed
    graph = load_graph(tmp_path / "out" / "graph.json")
    expected = (np.load(source) >= 1 / 6).sum(axis=0)
    np.testing.assert_array_equal(graph.label_counts, expected)
    assert len(graph.edges("positive")) == 7 and len(graph.edges("negative")) == 11


def test_raf_ml_distributions_without_binarize_fail(shared_data, tmp_path, capsys):
    source = shared_data / "raf-ml" / "label_distribution.npy"
    assert run_graph(source, tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert str(source) in error and "row 0" in error and "--binarize" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("cells.csv", "1,0,0,0,0,0\n0,1,x,0,0,0\n", "cells.csv, line 2, field 'disgust': 'x' is not a finite number"),
        ("nan.csv", "surprise,fear,disgust,happiness,sadness,anger\n1,0,0,0,0,nan\n", "nan.csv, line 2, field 'anger'"),
        (
            "values.csv",
            "1,0,0,0,0,0\n\n0,1,0,0,0.5,0\n",
            "values.csv, line 3, field 'sadness': value 0.5 is not 0 or 1",
        ),
        ("width.csv", "1,0,0,0,0,0\n1,0,0,0,0\n", "width.csv, line 2: has 5 values, expected 6"),
        (
            "header.csv",
            "surprise,fear,disgust,joy,sadness,neutral\n1,0,0,0,0,0\n",
            "header.csv, line 1, field 'column 6': header cell 'neutral'",
        ),
        ("twice.csv", "surprise,fear,disgust,happy,sadness,happiness\n1,0,0,0,0,0\n", "twice.csv, line 1: header must"),
        ("empty.csv", "surprise,fear,disgust,happiness,sadness,anger\n", "empty.csv: holds no rows"),
        ("labels.txt", "1,0,0,0,0,0\n", "labels.txt: unsupported file type '.txt'"),
    ],
)
def test_bad_text_files(tmp_path, capsys, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    assert run_graph(path, tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert error.startswith("mlfer graph: error: ") and expected in error


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.ones((3, 5)), "expected an N x 6 matrix, got shape (3, 5)"),
        (np.ones(6), "got shape (6,)"),
        (np.array([["1"] * 6]), "expected numbers"),
        (np.array([[0, 1, 0, 0, 0, 0], [0, 0, 0, 2, 0, 0]]), "row 1: value 2 is not 0 or 1"),
    ],
)
def test_bad_npy_files(tmp_path, capsys, array, expected):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    assert run_graph(path, tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert str(path) in error and expected in error


def test_missing_file_and_bad_options(tmp_path, capsys):
    missing = tmp_path / "missing.csv"
    assert run_graph(missing, tmp_path / "out") == 2
    assert f"{missing}: no such file" in capsys.readouterr().err
    labels = write_csv(tmp_path / "labels.csv", ROWS)
    assert run_graph(labels, tmp_path / "out", "--p", "1.5") == 2
    assert "p: must lie in [0, 1]" in capsys.readouterr().err
    assert main(["graph", "--labels", str(labels), "--t1", "0.5", "--t2", "0.4", "--out", str(tmp_path)]) == 2
    assert "exceeds t2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        run_graph(labels, tmp_path / "out", "--binarize", "half")
    assert exit_info.value.code == 2 and "'half' is not a number" in capsys.readouterr().err
