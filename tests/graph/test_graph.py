"""The label graph: eq. 3 counts, eq. 4 relations and their direction, eq. 13-14, the summary."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.graph.label_graph import RELATIONS, LabelGraph

NAMES = ("a", "b", "c")
# N = (4, 3, 2); M_ab = 2, M_ac = 1, M_bc = 1.
# P_ab = 2/4, P_ba = 2/3, P_ac = 1/4, P_ca = 1/2, P_bc = 1/3, P_cb = 1/2.
LABELS = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 0], [0, 1, 1], [1, 0, 1]])


def graph(t1: float = 0.3, t2: float = 0.55) -> LabelGraph:
    return LabelGraph.from_labels(LABELS, t1, t2, names=NAMES)


def test_counts_and_probabilities_by_hand():
    built = graph()
    np.testing.assert_array_equal(built.label_counts, [4, 3, 2])
    np.testing.assert_array_equal(built.cooccurrence, [[4, 2, 1], [2, 3, 1], [1, 1, 2]])
    np.testing.assert_allclose(built.probabilities, [[1, 2 / 4, 1 / 4], [2 / 3, 1, 1 / 3], [1 / 2, 1 / 2, 1]])
    assert built.cooccurrence.dtype == np.int64 and built.probabilities.dtype == np.float64
    assert not built.probabilities.flags.writeable


def test_direction_positive_edge_only_where_p_ij_exceeds_t2():
    # P_ba = 2/3 > 0.55 but P_ab = 1/2 < 0.55: exactly edge [b, a], b aggregates from a.
    built = graph(t1=0.3, t2=0.55)
    expected = np.zeros((3, 3), dtype=bool)
    expected[1, 0] = True
    np.testing.assert_array_equal(built.positive, expected)
    # P_ac = 1/4 < 0.3 but P_ca = 1/2: exactly edge [a, c].
    expected = np.zeros((3, 3), dtype=bool)
    expected[0, 2] = True
    np.testing.assert_array_equal(built.negative, expected)
    assert built.edges("positive") == [(1, 0)] and built.edges("negative") == [(0, 2)]


def test_thresholds_are_strict_and_self_loops_excluded():
    built = graph(t1=0.25, t2=0.5)  # P_ac == t1 and P_ab == P_ca == P_cb == t2
    assert built.edges("negative") == []
    assert built.edges("positive") == [(1, 0)]
    assert not graph(t1=0.0, t2=0.0).positive.diagonal().any()
    assert not graph(t1=1.5, t2=1.5).negative.diagonal().any()


def test_relation_adjacency_stacks_in_relations_order():
    built = graph()
    adjacency = built.relation_adjacency()
    assert RELATIONS == ("positive", "negative")
    assert adjacency.dtype == np.float32 and adjacency.shape == (2, 3, 3)
    np.testing.assert_array_equal(adjacency[0], built.positive)
    np.testing.assert_array_equal(adjacency[1], built.negative)


def test_mlgcn_rows_follow_eq14():
    # t2 = 0.45: A = [[0,1,0],[1,0,0],[1,1,0]] (P_ab, P_ba, P_ca, P_cb > 0.45).
    built = graph(t1=0.1, t2=0.45)
    np.testing.assert_allclose(built.mlgcn_adjacency(), [[0.8, 0.2, 0], [0.2, 0.8, 0], [0.1, 0.1, 0.8]], rtol=1e-6)
    np.testing.assert_allclose(built.mlgcn_adjacency(0.25)[2], [0.125, 0.125, 0.75], rtol=1e-6)
    assert built.mlgcn_adjacency().dtype == np.float32


def test_mlgcn_row_without_neighbour_keeps_only_its_diagonal():
    adjacency = graph(t1=0.3, t2=0.55).mlgcn_adjacency(0.2)  # only edge [b, a]
    np.testing.assert_allclose(adjacency, [[0.8, 0, 0], [0.2, 0.8, 0], [0, 0, 0.8]], rtol=1e-6)


@pytest.mark.parametrize("p", [-0.1, 1.1])
def test_mlgcn_rejects_p_outside_unit_interval(p):
    with pytest.raises(MlferError, match=r"^p: must lie in \[0, 1\]"):
        graph().mlgcn_adjacency(p)


def test_label_that_never_occurs_gets_no_edges_and_a_warning():
    labels = np.column_stack([LABELS, np.zeros(len(LABELS), dtype=int)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no division by zero
        with pytest.warns(UserWarning, match="'d' never occurs"):
            built = LabelGraph.from_labels(labels, 0.3, 0.55, names=(*NAMES, "d"))
    np.testing.assert_array_equal(built.probabilities[3], 0)
    # P_a,d = 0 < t1 would be a negative edge if d occurred: it must not be one.
    for relation in RELATIONS:
        assert not getattr(built, relation)[3].any() and not getattr(built, relation)[:, 3].any()
    assert built.edges("negative") == [(0, 2)]
    np.testing.assert_allclose(built.mlgcn_adjacency()[3], [0, 0, 0, 0.8], rtol=1e-6)


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.array([1, 0, 1]), "N x 3"),
        (np.ones((4, 2)), "N x 3"),
        (np.zeros((0, 3)), "no rows"),
        (np.array([[1, 0, 0], [0, 2, 0]]), "row 1, column 'b' holds 2"),
        (np.array([[1, 0, 0], [0, 0.5, 0]]), "0 or 1"),
        (np.array([["1", "0", "0"]]), "numeric"),
    ],
)
def test_bad_labels_raise(labels, match):
    with pytest.raises(MlferError, match=match):
        LabelGraph.from_labels(labels, 0.1, 0.4, names=NAMES)


@pytest.mark.parametrize("t1, t2, match", [(0.5, 0.4, "t1"), (float("nan"), 0.4, "t1"), (0.1, float("inf"), "t2")])
def test_bad_thresholds_raise(t1, t2, match):
    with pytest.raises(MlferError, match=match):
        LabelGraph.from_labels(LABELS, t1, t2, names=NAMES)


def test_summary_names_labels_and_edges():
    text = graph().summary()
    assert "t1 = 0.3, t2 = 0.55" in text
    assert "b <- a  P = 0.667" in text and "a <- c  P = 0.250" in text
    assert "positive edges" in text and "negative edges" in text


@pytest.fixture(scope="module")
def raf_ml_labels(shared_data) -> np.ndarray:
    distribution = np.load(shared_data / "raf-ml" / "label_distribution.npy")
    return (distribution >= 1 / 6).astype(np.int64)


def test_raf_ml_graph(raf_ml_labels):
    built = LabelGraph.from_labels(raf_ml_labels, 0.15, 0.4)
    print("\nRAF-ML label graph (distributions >= 1/6):\n" + built.summary())
    assert built.names == EXPRESSIONS and len(raf_ml_labels) == 4908
    # P_ij as the share of images with label i that also carry label j, counted directly.
    for i in range(6):
        with_i = raf_ml_labels[raf_ml_labels[:, i] == 1]
        np.testing.assert_allclose(built.probabilities[i], with_i.mean(axis=0))
    index = {name: position for position, name in enumerate(EXPRESSIONS)}
    fear, happiness, disgust, anger = (index[name] for name in ("fear", "happiness", "disgust", "anger"))
    # The paper's examples (Fig. 1): disgust and anger positive, fear and happiness negative.
    assert built.positive[disgust, anger] and built.positive[anger, disgust]
    assert built.negative[fear, happiness] and built.negative[happiness, fear]
    assert len(built.edges("positive")) == 7 and len(built.edges("negative")) == 11


def test_raf_ml_has_no_zero_cooccurrence_so_tiny_t1_gives_no_negative_edge(raf_ml_labels):
    for i in range(6):
        for j in range(i + 1, 6):
            assert np.any(raf_ml_labels[:, i] & raf_ml_labels[:, j]), (EXPRESSIONS[i], EXPRESSIONS[j])
    assert LabelGraph.from_labels(raf_ml_labels, 1e-6, 0.4).edges("negative") == []
