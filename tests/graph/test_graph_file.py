"""graph.json: a label graph written and read back; damaged files name the file and the problem."""

from __future__ import annotations

import numpy as np
import pytest
from test_graph import NAMES, graph

from mlfer.core.errors import MlferError
from mlfer.graph.graph_file import graph_to_dict, load_graph, save_graph


def test_json_round_trip(tmp_path):
    built = graph()
    path = tmp_path / "graph.json"
    save_graph(built, path)
    loaded = load_graph(path)
    assert (loaded.names, loaded.t1, loaded.t2) == (NAMES, 0.3, 0.55)
    for field in ("cooccurrence", "label_counts", "probabilities"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(built, field))
    np.testing.assert_array_equal(loaded.relation_adjacency(), built.relation_adjacency())
    assert graph_to_dict(built)["edges"] == {"positive": [["b", "a"]], "negative": [["a", "c"]]}


def test_load_names_the_file_and_problem(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"names": ["a"],\n  "t1": }')
    with pytest.raises(MlferError, match=r"broken\.json, line 2: not JSON"):
        load_graph(broken)
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text('{"names": ["a", "b", "c"], "t1": 0.1, "t2": 0.4}')
    with pytest.raises(MlferError, match=r"incomplete\.json.*'cooccurrence'"):
        load_graph(incomplete)
    inconsistent = tmp_path / "inconsistent.json"
    inconsistent.write_text('{"names": ["a", "b"], "t1": 0.1, "t2": 0.4, "cooccurrence": [[1, 2], [2, 3]]}')
    with pytest.raises(MlferError, match=r"inconsistent\.json.*exceeds"):
        load_graph(inconsistent)
