"""The picture of a label graph."""

from __future__ import annotations

from test_graph import graph

from mlfer.graph.drawing import draw_graph


def test_draw_writes_png(tmp_path):
    path = tmp_path / "graph.png"
    draw_graph(graph(), path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
