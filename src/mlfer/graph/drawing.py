"""The picture of a label graph: nodes on a circle, an arrow per edge, labelled with ``P_ij``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch

from mlfer.core.fileio import atomic_path
from mlfer.graph.label_graph import RELATIONS, LabelGraph

_COLOURS = {"positive": "tab:green", "negative": "tab:red"}
_NODE_RADIUS = 0.2
_CURVATURE = 0.15
_LABEL_POSITION = 0.65


def draw_graph(graph: LabelGraph, path: str | Path) -> None:
    """Save a PNG: nodes on a circle, an arrow j -> i for edge [i, j] labelled with P_ij,
    positive and negative relations in two colours, and a legend."""
    angles = np.pi / 2 - 2 * np.pi * np.arange(len(graph.names)) / len(graph.names)
    centres = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    figure = Figure(figsize=(6.4, 6.4))
    axes = figure.add_subplot()
    for relation in RELATIONS:
        for i, j in graph.edges(relation):
            _draw_edge(axes, centres[j], centres[i], _COLOURS[relation], f"{graph.probabilities[i, j]:.2f}")
    for centre, name, count in zip(centres, graph.names, graph.label_counts):
        axes.add_patch(Circle(centre, _NODE_RADIUS, facecolor="#dde6f3", edgecolor="#333333", zorder=3))
        axes.text(centre[0], centre[1], f"{name}\nN={count}", ha="center", va="center", fontsize=8, zorder=4)
    handles = [
        Line2D([], [], color=_COLOURS["positive"], marker=">", label=f"positive: P_ij > {graph.t2:g}"),
        Line2D([], [], color=_COLOURS["negative"], marker=">", label=f"negative: P_ij < {graph.t1:g}"),
    ]
    axes.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
    axes.set_title("arrow j -> i: node i aggregates from j; number: P(j | i)", fontsize=10)
    axes.set_xlim(-1.3, 1.3)
    axes.set_ylim(-1.3, 1.3)
    axes.set_aspect("equal")
    axes.axis("off")
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=90, bbox_inches="tight")


def _draw_edge(axes: Any, source: np.ndarray, target: np.ndarray, colour: str, label: str) -> None:
    """A curved arrow from one node's rim to another's, with ``label`` at the middle of the arc.

    The curvature keeps the two directions of a pair apart. The label sits on the arc
    (matplotlib's ``arc3`` is a quadratic Bezier curve) nearer the arrow head, so that it
    reads as belonging to this direction.
    """
    unit = (target - source) / np.linalg.norm(target - source)
    start, end = source + _NODE_RADIUS * unit, target - _NODE_RADIUS * unit
    axes.add_patch(
        FancyArrowPatch(
            start,
            end,
            connectionstyle=f"arc3,rad={_CURVATURE}",
            arrowstyle="-|>",
            mutation_scale=14,
            color=colour,
            linewidth=1.3,
            shrinkA=0,
            shrinkB=0,
            zorder=2,
        )
    )
    dx, dy = end - start
    control = (start + end) / 2 + _CURVATURE * np.array([dy, -dx])
    t = _LABEL_POSITION
    position = (1 - t) ** 2 * start + 2 * t * (1 - t) * control + t**2 * end
    axes.text(
        *position,
        label,
        color=colour,
        fontsize=7,
        ha="center",
        va="center",
        zorder=5,
        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
    )
