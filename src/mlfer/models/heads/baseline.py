"""The baseline head: a classifier learnt directly, without the label graph."""

from __future__ import annotations

import torch
from torch import nn

from mlfer.core.config import ModelConfig
from mlfer.core.expressions import NUM_EXPRESSIONS
from mlfer.models.heads.base import Head, HeadInputs
from mlfer.models.heads.registry import register_head


@register_head("baseline")
class LinearHead(Head):
    """The baseline: an automatically learnt classifier ``W_C`` (with bias) on f, ``logits = W_C f + b``."""

    has_bias = True

    def __init__(self, feature_dim: int, num_classes: int = NUM_EXPRESSIONS) -> None:
        super().__init__()
        self.linear = nn.Linear(feature_dim, num_classes)

    @classmethod
    def build(cls, config: ModelConfig, inputs: HeadInputs) -> LinearHead:
        """A linear classifier on the backbone's D features (it uses none of the ``inputs``)."""
        return cls(config.out_features)

    def classifier(self) -> torch.Tensor:
        """W_C (C x D)."""
        return self.linear.weight

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)
