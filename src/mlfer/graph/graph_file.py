"""``graph.json``: a :class:`~mlfer.graph.label_graph.LabelGraph` written as JSON and read back.

The file holds the counts ``M`` and ``N``, the thresholds and the names, and, for readers, ``P``
and the edges of each relation; reading rebuilds the graph from ``M`` (``P`` and the edges are
recomputed, so a hand-edited ``P`` cannot disagree with the counts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlfer.core.errors import MlferError
from mlfer.core.fileio import write_text_atomic
from mlfer.graph.label_graph import RELATIONS, LabelGraph


def graph_to_dict(graph: LabelGraph) -> dict[str, Any]:
    """JSON-ready dict: counts, thresholds, names, and (for readers) ``P`` and the edges."""
    return {
        "names": list(graph.names),
        "t1": graph.t1,
        "t2": graph.t2,
        "label_counts": graph.label_counts.tolist(),
        "cooccurrence": graph.cooccurrence.tolist(),
        "probabilities": graph.probabilities.tolist(),
        "edge_direction": "edge [i, j]: node i aggregates from node j; P_ij = P(label j | label i)",
        "edges": {
            relation: [[graph.names[i], graph.names[j]] for i, j in graph.edges(relation)] for relation in RELATIONS
        },
    }


def graph_from_dict(data: dict[str, Any], *, path: str | Path | None = None) -> LabelGraph:
    """Rebuild a graph from :func:`graph_to_dict` output (``P`` and edges are recomputed).

    Args:
        data: the dict.
        path: the file it came from, named in errors.
    """
    for key in ("names", "t1", "t2", "cooccurrence"):
        if key not in data:
            raise MlferError(f"missing key {key!r}", path=path, field=key)
    try:
        return LabelGraph.from_cooccurrence(data["cooccurrence"], data["t1"], data["t2"], data["names"])
    except (MlferError, TypeError, ValueError) as error:
        raise MlferError(f"not a label graph: {error}", path=path) from error


def save_graph(graph: LabelGraph, path: str | Path) -> None:
    """Write the graph as JSON (see :func:`graph_to_dict`), atomically."""
    write_text_atomic(path, json.dumps(graph_to_dict(graph), indent=2) + "\n")


def load_graph(path: str | Path) -> LabelGraph:
    """Read a graph written by :func:`save_graph`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise MlferError(f"cannot read: {error}", path=path) from error
    except json.JSONDecodeError as error:
        raise MlferError(f"not JSON: {error.msg}", path=path, line=error.lineno) from error
    if not isinstance(data, dict):
        raise MlferError("must hold a JSON object", path=path)
    return graph_from_dict(data, path=path)
