"""The label graph of SVML-RGCN (paper section 3.2): co-occurrence, eq. 3-4, and eq. 13-14.

Edge direction, used by every adjacency here: entry ``[i, j]`` means *node i aggregates
from node j*, and it is set when the relation holds on ``P_ij = P(label j | label i)``.
This is ML-GCN's convention (``H' = A H`` with ``A_ij = P(L_j | L_i)``), so a layer
computes ``A @ H`` without transposing.

The graph is written to and read from JSON by :mod:`mlfer.graph.graph_file` and drawn by
:mod:`mlfer.graph.drawing`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS, first_non_binary

#: The relation types of the R-GCN, in the order :meth:`LabelGraph.relation_adjacency` stacks them.
RELATIONS: tuple[str, ...] = ("positive", "negative")


def format_table(matrix: np.ndarray, names: Sequence[str], digits: int = 3) -> str:
    """A square matrix as a text table with ``names`` heading its rows and columns."""
    width = max(max(len(name) for name in names), digits + 3)
    header = " " * width + "".join(f"  {name:>{width}}" for name in names)
    rows = [
        f"{name:<{width}}" + "".join(f"  {value:>{width}.{digits}f}" for value in row)
        for name, row in zip(names, matrix)
    ]
    return "\n".join([header, *rows])


def _checked_threshold(value: float, field: str) -> float:
    """``value`` as a float, which must be finite."""
    value = float(value)
    if not math.isfinite(value):
        raise MlferError(f"must be a finite number, got {value}", field=field)
    return value


@dataclass(frozen=True, eq=False)
class LabelGraph:
    r"""Co-occurrence statistics of the labels and the relations SVML-RGCN derives from them.

    .. math::
        P_{ij} = \frac{M_{ij}}{N_i} \quad (3) \qquad
        \mathcal{R}_{ij} = \begin{cases} negative, & P_{ij} < t_1 \\
        positive, & P_{ij} > t_2 \end{cases} \quad (4)

    ``M_ij`` counts the images holding both labels i and j (``M_ii = N_i``), so ``P`` is
    asymmetric: ``P_ij = P(label j | label i)``. Entry ``[i, j]`` of :attr:`positive`,
    :attr:`negative` and every adjacency means node i aggregates from node j. Self loops
    are never relations (the R-GCN self term ``W_0 h_i`` covers them). A label that never
    occurs (``N_i = 0``) gets a zero row of ``P`` and no edge to or from it.

    Args:
        cooccurrence: ``M``, (C, C) int64.
        label_counts: ``N``, (C,) int64, the diagonal of ``M``.
        probabilities: ``P``, (C, C) float64.
        t1: negative threshold of eq. 4.
        t2: positive threshold of eq. 4 (and ``t`` of eq. 13).
        names: the label of each node, in matrix order.
    """

    cooccurrence: np.ndarray
    label_counts: np.ndarray
    probabilities: np.ndarray
    t1: float
    t2: float
    names: tuple[str, ...] = EXPRESSIONS

    @classmethod
    def from_labels(cls, labels: ArrayLike, t1: float, t2: float, names: Sequence[str] = EXPRESSIONS) -> LabelGraph:
        """Build the graph (eq. 3-4) from 0/1 labels, counting ``M = Y^T Y``.

        Args:
            labels: (N, C) 0/1 labels of the *training* images, columns ordered as ``names``.
            t1: negative threshold: an edge where ``P_ij < t1``.
            t2: positive threshold: an edge where ``P_ij > t2``; ``t1 <= t2``.
            names: the label of each column.
        """
        values = np.asarray(labels)
        if values.ndim != 2 or values.shape[1] != len(names):
            raise MlferError(f"must be an N x {len(names)} matrix, got shape {values.shape}", field="labels")
        if len(values) == 0:
            raise MlferError("hold no rows", field="labels")
        if not (np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_):
            raise MlferError(f"must be numeric, got dtype {values.dtype}", field="labels")
        bad = first_non_binary(values)
        if bad is not None:
            row, column = bad
            raise MlferError(
                f"row {row}, column {names[column]!r} holds {values[row, column].item()!r}; labels must be 0 or 1",
                field="labels",
            )
        binary = values.astype(np.int64)
        return cls.from_cooccurrence(binary.T @ binary, t1, t2, names)

    @classmethod
    def from_cooccurrence(
        cls, cooccurrence: ArrayLike, t1: float, t2: float, names: Sequence[str] = EXPRESSIONS
    ) -> LabelGraph:
        """Build the graph from a co-occurrence matrix ``M`` (its diagonal holds the label counts).

        Args:
            cooccurrence: (C, C) symmetric whole counts, ``M_ij <= min(M_ii, M_jj)``.
            t1, t2, names: as in :meth:`from_labels`.
        """
        names = tuple(names)
        counts = np.asarray(cooccurrence)
        size = len(names)
        if len(set(names)) != size:
            raise MlferError(f"names must be distinct, got {names}", field="names")
        if counts.shape != (size, size) or not np.issubdtype(counts.dtype, np.number):
            raise MlferError(
                f"must be a numeric {size} x {size} matrix, got shape {counts.shape}", field="cooccurrence"
            )
        if np.any(counts < 0) or np.any(counts != np.round(counts)) or np.any(counts != counts.T):
            raise MlferError("must hold symmetric non-negative whole counts", field="cooccurrence")
        counts = counts.astype(np.int64)
        label_counts = np.diag(counts).copy()
        if np.any(counts > np.minimum.outer(label_counts, label_counts)):
            raise MlferError("a pair count exceeds the count of one of its labels (the diagonal)", field="cooccurrence")
        t1, t2 = _checked_threshold(t1, "t1"), _checked_threshold(t2, "t2")
        if t1 > t2:
            raise MlferError(f"t1 = {t1} exceeds t2 = {t2}; need t1 <= t2", field="t1")
        for name, count in zip(names, label_counts):
            if count == 0:
                warnings.warn(f"label {name!r} never occurs: its node gets no edges", stacklevel=3)
        probabilities = np.zeros((size, size), dtype=np.float64)
        present = label_counts > 0
        probabilities[present] = counts[present] / label_counts[present, None]
        for array in (counts, label_counts, probabilities):
            array.flags.writeable = False
        return cls(counts, label_counts, probabilities, t1, t2, names)

    @property
    def _candidates(self) -> np.ndarray:
        """Pairs that may carry a relation: i != j, both labels occurring."""
        present = self.label_counts > 0
        return np.outer(present, present) & ~np.eye(len(self.names), dtype=bool)

    @property
    def positive(self) -> np.ndarray:
        """(C, C) bool, eq. 4: ``P_ij > t2`` (i != j); node i aggregates from node j."""
        return (self.probabilities > self.t2) & self._candidates

    @property
    def negative(self) -> np.ndarray:
        """(C, C) bool, eq. 4: ``P_ij < t1`` (i != j); node i aggregates from node j."""
        return (self.probabilities < self.t1) & self._candidates

    def relation_adjacency(self) -> np.ndarray:
        """float32 (len(RELATIONS), C, C): the 0/1 adjacency of each relation, in RELATIONS order."""
        return np.stack([getattr(self, relation) for relation in RELATIONS]).astype(np.float32)

    def mlgcn_adjacency(self, p: float = 0.2) -> np.ndarray:
        r"""float32 (C, C): ML-GCN's re-weighted correlation matrix for the SVML-GCN ablation.

        .. math::
            A_{ij} = \begin{cases} 0, & P_{ij} < t \\ 1, & P_{ij} > t \end{cases} \quad (13)
            \qquad
            \tilde{A}_{ij} = \begin{cases} p \, A_{ij} / \sum_{j \neq i} A_{ij}, & i \neq j \\
            1 - p, & i = j \end{cases} \quad (14)

        with ``t = t2``, so ``A`` is :attr:`positive`. The paper leaves ``P_ij == t`` open;
        ``P_ij > t`` (strict, as in eq. 4) is used. A row with no neighbour keeps only
        ``1 - p`` on its diagonal. This follows the SVML paper's equations, not ML-GCN's
        released code, which hard-codes p = 0.25, binarises at ``P >= t``, divides by
        column sums, adds the identity and transposes the graph in ``gen_adj``.

        Args:
            p: the weight given to the neighbours, in [0, 1] (0.2 as in ML-GCN's paper).
        """
        if not 0.0 <= p <= 1.0:
            raise MlferError(f"must lie in [0, 1], got {p}", field="p")
        binary = self.positive.astype(np.float64)
        degree = binary.sum(axis=1, keepdims=True)
        reweighted = np.divide(p * binary, degree, out=np.zeros_like(binary), where=degree > 0)
        np.fill_diagonal(reweighted, 1.0 - p)
        return reweighted.astype(np.float32)

    def edges(self, relation: str) -> list[tuple[int, int]]:
        """The ``(i, j)`` pairs of one relation (node i aggregates from node j), row by row."""
        if relation not in RELATIONS:
            raise MlferError(f"unknown relation {relation!r}; expected one of {RELATIONS}", field="relation")
        return [(int(i), int(j)) for i, j in np.argwhere(getattr(self, relation))]

    def summary(self) -> str:
        """``P`` as a table with names, then the edges of each relation, for printing."""
        lines = [
            f"P_ij = P(column j | row i) = M_ij / N_i; t1 = {self.t1:g}, t2 = {self.t2:g}",
            format_table(self.probabilities, self.names),
            "N_i: " + ", ".join(f"{name} {count}" for name, count in zip(self.names, self.label_counts)),
        ]
        rules = {"positive": f"P_ij > {self.t2:g}", "negative": f"P_ij < {self.t1:g}"}
        for relation in RELATIONS:
            pairs = self.edges(relation)
            lines.append(f"{relation} edges ({rules[relation]}; i <- j: node i aggregates from j): {len(pairs)}")
            lines += [f"  {self.names[i]} <- {self.names[j]}  P = {self.probabilities[i, j]:.3f}" for i, j in pairs]
        return "\n".join(lines)
