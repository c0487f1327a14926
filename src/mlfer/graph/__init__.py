"""The label graph (eq. 3-4, 13-14): statistics, its JSON file and its picture.

``draw_graph`` imports matplotlib, so it is loaded on first use (PEP 562).
"""

from typing import TYPE_CHECKING

from mlfer.core.lazy import lazy_names
from mlfer.graph.graph_file import load_graph, save_graph
from mlfer.graph.label_graph import RELATIONS, LabelGraph

if TYPE_CHECKING:
    from mlfer.graph.drawing import draw_graph

__all__ = ["RELATIONS", "LabelGraph", "draw_graph", "load_graph", "save_graph"]

__getattr__, __dir__ = lazy_names(__name__, {"draw_graph": "mlfer.graph.drawing"})
