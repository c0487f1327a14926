"""Graph layers: R-GCN against PyTorch Geometric's RGCNConv, ML-GCN's layer by hand."""

from __future__ import annotations

import pytest
import torch

from mlfer.models.layers import GraphConv, RelationalGraphConv

torch_geometric = pytest.importorskip("torch_geometric", reason="torch-geometric (test extra) is not installed")
from torch_geometric.nn import RGCNConv  # noqa: E402


@pytest.fixture(autouse=True)
def _no_segment_matmul(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyg-lib's segment_matmul path may average over all relations together."""
    monkeypatch.setattr(torch_geometric.backend, "use_segment_matmul", False)


def random_adjacency(generator: torch.Generator, relations: int, nodes: int) -> torch.Tensor:
    """Random 0/1 relation adjacency in which every other node lacks neighbours in one relation."""
    adjacency = (torch.rand(relations, nodes, nodes, generator=generator) < 0.4).float()
    for node in range(0, nodes, 2):
        adjacency[node % relations, node] = 0
    return adjacency


def to_edges(adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PyG edges: adjacency[r, i, j] != 0 is an edge j -> i of type r."""
    relation, target, source = torch.nonzero(adjacency, as_tuple=True)
    return torch.stack([source, target]), relation


@pytest.mark.parametrize(
    ("seed", "in_features", "out_features", "relations", "bias"),
    [(0, 5, 3, 2, False), (1, 8, 16, 2, True), (2, 16, 7, 3, False), (3, 4, 4, 1, True), (4, 12, 9, 2, False)],
)
def test_rgcn_matches_pyg(seed: int, in_features: int, out_features: int, relations: int, bias: bool) -> None:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    ours = RelationalGraphConv(in_features, out_features, relations, bias=bias)
    if bias:
        torch.nn.init.normal_(ours.bias)
    reference = RGCNConv(in_features, out_features, relations, aggr="mean", root_weight=True, bias=bias)
    with torch.no_grad():
        reference.weight.copy_(ours.weight)
        reference.root.copy_(ours.root)
        if bias:
            reference.bias.copy_(ours.bias)
    for _ in range(3):
        adjacency = random_adjacency(generator, relations, 6)
        x = torch.randn(6, in_features, generator=generator)
        edge_index, edge_type = to_edges(adjacency)
        expected = reference(x, edge_index, edge_type)
        assert (ours(x, adjacency) - expected).abs().max().item() < 1e-5


def test_rgcn_mean_per_relation_by_hand() -> None:
    layer = RelationalGraphConv(2, 2, num_relations=2)
    with torch.no_grad():
        layer.root.copy_(torch.eye(2))
        layer.weight.copy_(torch.stack([torch.eye(2), 10 * torch.eye(2)]))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    adjacency = torch.zeros(2, 3, 3)
    adjacency[0, 0, [1, 2]] = 1.0  # node 0 averages nodes 1 and 2 under relation 0
    adjacency[1, 0, 1] = 0.3  # a non-zero value marks an edge; its size does not weight it
    out = layer(x, adjacency)
    expected_node0 = x[0] + (x[1] + x[2]) / 2 + 10 * x[1]
    torch.testing.assert_close(out[0], expected_node0)
    torch.testing.assert_close(out[1:], x[1:])  # no neighbours: only the root term


def test_rgcn_gradients_flow() -> None:
    layer = RelationalGraphConv(4, 3, num_relations=2, bias=True)
    x = torch.randn(6, 4, requires_grad=True)
    adjacency = torch.ones(2, 6, 6)
    layer(x, adjacency).square().sum().backward()
    for tensor in (x.grad, layer.weight.grad, layer.root.grad, layer.bias.grad):
        assert tensor is not None and torch.isfinite(tensor).all() and tensor.abs().sum() > 0


def test_rgcn_glorot_init_range() -> None:
    layer = RelationalGraphConv(30, 20, num_relations=2)
    bound = (6 / 50) ** 0.5
    assert layer.weight.abs().max() <= bound and layer.root.abs().max() <= bound
    assert layer.weight.std() > bound / 3  # uniform on [-a, a] has std a / sqrt(3)
    assert layer.bias is None


def test_graph_conv_by_hand() -> None:
    layer = GraphConv(3, 2, bias=True)
    weight = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(torch.tensor([0.5, -0.5]))
    x = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])
    adjacency = torch.tensor([[0.8, 0.2], [0.5, 0.5]])
    # x W = [[4, 7], [0, 2]]; row 0: 0.8*[4,7] + 0.2*[0,2]; row 1: 0.5*[4,7] + 0.5*[0,2]
    expected = torch.tensor([[3.2 + 0.5, 6.0 - 0.5], [2.0 + 0.5, 4.5 - 0.5]])
    torch.testing.assert_close(layer(x, adjacency), expected)


def test_graph_conv_gradients_flow() -> None:
    layer = GraphConv(5, 4)
    x = torch.randn(6, 5, requires_grad=True)
    adjacency = torch.full((6, 6), 0.2 / 5) + torch.eye(6) * (0.8 - 0.2 / 5)
    layer(x, adjacency).square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert torch.isfinite(layer.weight.grad).all() and layer.weight.grad.abs().sum() > 0
