"""The graph heads (sections 3.2-3.4): a classifier generated from the label graph.

Four variants, the paper's model and its ablations (Tables 2-3), differ in their node
features and their graph:

========== =========================== =====================================================
head       node features h^(0)         graph layers
========== =========================== =====================================================
svml-rgcn  MFB(prototypes, words)      R-GCN (eq. 7) over the positive and negative relations
svml-gcn   MFB(prototypes, words)      GCN over ML-GCN's re-weighted adjacency Ã (eq. 13-14)
sml-rgcn   word vectors                R-GCN over the positive and negative relations
vml-rgcn   visual prototypes (eq. 5)   R-GCN over the positive and negative relations
========== =========================== =====================================================
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from mlfer.core.config import ModelConfig
from mlfer.core.expressions import NUM_EXPRESSIONS
from mlfer.graph.label_graph import RELATIONS, LabelGraph
from mlfer.models.heads.base import Head, HeadInputs, head_input
from mlfer.models.heads.registry import register_head
from mlfer.models.layers import GraphConv, RelationalGraphConv
from mlfer.models.nodes import MFB


class GraphHead(Head):
    """A classifier generated from the label graph; the variants below set its class attributes.

    Node features ``h^(0)`` are MFB(prototypes, word vectors) (eq. 6) when the head uses
    both, otherwise the one it uses. Graph layers (R-GCN, eq. 7, when :attr:`relational`;
    GCN on the eq. 14 adjacency otherwise) with LeakyReLU between them turn the nodes into
    ``W_C`` (C x D), and ``logits = f W_C^T`` (eq. 1). The classifier takes no image.

    Args:
        config: the model config (MFB sizes, layer widths).
        adjacency: (2, C, C) positive/negative relations for R-GCN heads, or the (C, C)
            re-weighted matrix Ã otherwise; ``[.., i, j]`` means node i aggregates from j.
        word_vectors: (C, word_dim) label word vectors.
        prototypes: (C, D) visual prototypes (eq. 5).
    """

    #: R-GCN layers over :meth:`LabelGraph.relation_adjacency` (True), or GCN layers over
    #: :meth:`LabelGraph.mlgcn_adjacency` (False).
    relational: ClassVar[bool]
    adjacency: torch.Tensor
    word_vectors: torch.Tensor
    prototypes: torch.Tensor

    def __init__(
        self, config: ModelConfig, adjacency: torch.Tensor, word_vectors: torch.Tensor, prototypes: torch.Tensor
    ) -> None:
        super().__init__()
        self.register_buffer("adjacency", adjacency.float())
        self.register_buffer("word_vectors", word_vectors.float())
        self.register_buffer("prototypes", prototypes.float())
        self.fusion: MFB | None
        if self.uses_prototypes and self.uses_word_vectors:
            self.fusion = MFB(
                prototypes.shape[1], word_vectors.shape[1], config.mfb_k, config.mfb_o, config.mfb_dropout
            )
            width = config.mfb_o
        else:
            self.fusion = None
            width = (prototypes if self.uses_prototypes else word_vectors).shape[1]
        self.layers = nn.ModuleList()
        for out_width in config.layer_widths():
            if self.relational:
                self.layers.append(RelationalGraphConv(width, out_width, num_relations=adjacency.shape[0]))
            else:
                self.layers.append(GraphConv(width, out_width))
            width = out_width
        self.activation = nn.LeakyReLU(config.negative_slope)

    @classmethod
    def graph_adjacency(cls, graph: LabelGraph, config: ModelConfig) -> np.ndarray:
        """The relations (2, C, C) for R-GCN layers, or Ã (C, C) with ``p = config.p`` for GCN layers."""
        return graph.relation_adjacency() if cls.relational else graph.mlgcn_adjacency(config.p)

    @classmethod
    def build(cls, config: ModelConfig, inputs: HeadInputs) -> GraphHead:
        """The head with its three inputs as buffers (zeros where ``None``)."""
        nodes = NUM_EXPRESSIONS
        adjacency_shape = (len(RELATIONS), nodes, nodes) if cls.relational else (nodes, nodes)
        return cls(
            config,
            head_input(inputs.adjacency, adjacency_shape),
            head_input(inputs.word_vectors, (nodes, config.word_dim)),
            head_input(inputs.prototypes, (nodes, config.out_features)),
        )

    def node_features(self) -> torch.Tensor:
        """h^(0): the fused, semantic or visual node features (C x d0)."""
        if self.fusion is not None:
            return self.fusion(self.prototypes, self.word_vectors)
        return self.prototypes if self.uses_prototypes else self.word_vectors

    def classifier(self) -> torch.Tensor:
        """W_C (C x D): the graph layers applied to the node features."""
        hidden = self.node_features()
        for number, layer in enumerate(self.layers):
            if number:
                hidden = self.activation(hidden)
            hidden = layer(hidden, self.adjacency)
        return hidden

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.classifier().T


@register_head("svml-rgcn")
class SvmlRgcnHead(GraphHead):
    """SVML-RGCN, the paper's model: MFB-fused visual and semantic nodes, R-GCN over both relations."""

    uses_prototypes = True
    uses_word_vectors = True
    relational = True


@register_head("svml-gcn")
class SvmlGcnHead(GraphHead):
    """SVML-GCN (ablation): the same nodes, GCN layers over ML-GCN's re-weighted adjacency (eq. 13-14)."""

    uses_prototypes = True
    uses_word_vectors = True
    relational = False


@register_head("sml-rgcn")
class SmlRgcnHead(GraphHead):
    """SML-RGCN (ablation): word-vector (semantic) nodes only, R-GCN over both relations."""

    uses_prototypes = False
    uses_word_vectors = True
    relational = True


@register_head("vml-rgcn")
class VmlRgcnHead(GraphHead):
    """VML-RGCN (ablation): visual-prototype nodes only, R-GCN over both relations."""

    uses_prototypes = True
    uses_word_vectors = False
    relational = True
