"""Graph layers over the six label nodes: R-GCN (eq. 7) and ML-GCN's graph convolution.

Both are dense (the label graph has six nodes) and apply no activation: the model puts
its nonlinearity between layers. Weights use Glorot (Xavier) uniform initialisation, as
PyTorch Geometric's ``RGCNConv`` does; biases start at zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def glorot_(weight: torch.Tensor) -> None:
    """Fill ``weight`` (..., in, out) from U(-a, a), a = sqrt(6 / (in + out)), per matrix."""
    bound = math.sqrt(6.0 / (weight.shape[-2] + weight.shape[-1]))
    nn.init.uniform_(weight, -bound, bound)


class RelationalGraphConv(nn.Module):
    r"""Relational graph convolution of Schlichtkrull et al. with mean aggregation (eq. 7).

    .. math::
        \mathbf{h}_i' = \mathbf{W}_0 \mathbf{h}_i + \sum_{r \in \mathcal{R}}
        \sum_{j \in \mathcal{N}_i^r} \frac{1}{|\mathcal{N}_i^r|} \mathbf{W}_r \mathbf{h}_j

    where :math:`j \in \mathcal{N}_i^r` when ``adjacency[r, i, j] != 0`` (node :math:`i`
    aggregates from node :math:`j`). A node without neighbours under :math:`r` receives
    nothing from :math:`r`. Matches PyTorch Geometric's
    ``RGCNConv(aggr="mean", root_weight=True)``; :math:`\sigma` is left to the caller.

    Args:
        in_features: size of each input node feature.
        out_features: size of each output node feature.
        num_relations: number of relations :math:`|\mathcal{R}|` (positive, negative).
        bias: if True, add a learnable bias.

    Shapes:
        - input: node features (C, in_features), adjacency (num_relations, C, C)
        - output: node features (C, out_features)
    """

    def __init__(self, in_features: int, out_features: int, num_relations: int = 2, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_relations, in_features, out_features))
        self.root = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        glorot_(self.weight)
        glorot_(self.root)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """Propagate node features ``x`` (C, in) over ``adjacency`` (R, C, C)."""
        neighbours = (adjacency != 0).to(x.dtype)
        mean = neighbours / neighbours.sum(dim=-1, keepdim=True).clamp(min=1)
        out = x @ self.root + torch.bmm(mean @ x, self.weight).sum(dim=0)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        relations, in_features, out_features = self.weight.shape
        return f"{in_features}, {out_features}, num_relations={relations}, bias={self.bias is not None}"


class GraphConv(nn.Module):
    r"""ML-GCN's graph convolution (Chen et al., 2019), used by the SVML-GCN ablation.

    .. math::
        \mathbf{H}' = \tilde{\mathbf{A}} \mathbf{H} \mathbf{W}

    with :math:`\tilde{\mathbf{A}}` the re-weighted correlation matrix of eq. 14, used as
    given; :math:`\sigma` is left to the caller.

    Args:
        in_features: size of each input node feature.
        out_features: size of each output node feature.
        bias: if True, add a learnable bias.

    Shapes:
        - input: node features (C, in_features), adjacency (C, C)
        - output: node features (C, out_features)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        glorot_(self.weight)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """Propagate node features ``x`` (C, in) over the weighted ``adjacency`` (C, C)."""
        out = adjacency @ (x @ self.weight)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        in_features, out_features = self.weight.shape
        return f"{in_features}, {out_features}, bias={self.bias is not None}"
