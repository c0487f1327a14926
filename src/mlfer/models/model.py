"""The model: a backbone φ, a classifier head, and the preprocessing its input needs.

``logits = W_C f`` (eq. 1): the backbone (:mod:`mlfer.models.backbones`) gives ``f`` in
R^D; a head (:mod:`mlfer.models.heads`) gives the classifier ``W_C`` (C x D). Between the two,
a :class:`FeatureStandardiser` holds the training features' mean and spread (frozen mode
sets them; identity otherwise), so a head trained on standardised features reads every
input the same way. The baseline
learns ``W_C`` directly; the graph heads generate it from the label graph with R-GCN (or
GCN) layers over node features, so they take no image.
"""

from __future__ import annotations

import torch
from torch import nn

from mlfer.core.config import ModelConfig
from mlfer.models.backbones import build_backbone
from mlfer.models.heads import ArrayInput, Head, HeadInputs, head_class
from mlfer.models.preprocessing import Preprocessing

#: Least spread of a feature dimension: a constant dimension is centred, not divided by ~0.
MIN_FEATURE_STD = 1e-6


class FeatureStandardiser(nn.Module):
    r"""``f' = (f - mean) / std`` per feature dimension; identity until :meth:`fit` sets the statistics.

    Args:
        dim: D, the size of the feature vector.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, features: torch.Tensor) -> None:
        """Take the mean and (population) standard deviation of ``features`` (N x D), the training rows."""
        features = features.detach().float()
        self.mean.copy_(features.mean(dim=0))
        self.std.copy_(features.std(dim=0, correction=0).clamp_min(MIN_FEATURE_STD))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std


class MultiLabelModel(nn.Module):
    """Backbone φ plus a classifier head: image (or feature vector) -> six logits.

    Args:
        config: the model config it was built from.
        backbone: φ, input -> f (N x D).
        head: f -> logits (N x 6).
        preprocessing: how faces become its input and the thresholds of its predictions
            (default: 224 x 224 faces, ImageNet normalisation, 0.5 each).
    """

    def __init__(
        self, config: ModelConfig, backbone: nn.Module, head: Head, preprocessing: Preprocessing | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.standardise = FeatureStandardiser(config.out_features)
        self.head = head
        self.preprocessing = preprocessing or Preprocessing()

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of backbone features f (N x D): the head on the standardised features."""
        return self.head(self.standardise(features))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.classify(self.backbone(inputs))


def build_model(
    config: ModelConfig,
    adjacency: ArrayInput = None,
    word_vectors: ArrayInput = None,
    prototypes: ArrayInput = None,
    load_backbone_weights: bool = True,
    preprocessing: Preprocessing | None = None,
) -> MultiLabelModel:
    """Build a model from its config and the graph inputs its head uses.

    Graph inputs left as ``None`` are zero-filled with the right shapes: use that to build
    a model whose buffers are then loaded from a checkpoint.

    Args:
        config: the model config; ``config.head`` names a registered head.
        adjacency: what the head's ``graph_adjacency`` takes from the label graph.
        word_vectors: (C, word_dim) label word vectors.
        prototypes: (C, D) visual prototypes (eq. 5).
        load_backbone_weights: load ``config.backbone_weights`` into the backbone.
        preprocessing: the model's :class:`Preprocessing` (default: ``Preprocessing()``).
    """
    head_type = head_class(config.head)
    backbone = build_backbone(config if load_backbone_weights else _without_weights(config))
    head = head_type.build(config, HeadInputs(adjacency, word_vectors, prototypes))
    return MultiLabelModel(config, backbone, head, preprocessing)


def _without_weights(config: ModelConfig) -> ModelConfig:
    return ModelConfig(**{**config.__dict__, "backbone_weights": None})


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(parameter.numel() for parameter in module.parameters() if parameter.requires_grad)
