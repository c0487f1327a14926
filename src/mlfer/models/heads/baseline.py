"""The baseline head: a classifier learnt directly, without the label graph."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mlfer.core.config import ModelConfig
from mlfer.core.expressions import NUM_EXPRESSIONS
from mlfer.models.heads.base import Head, HeadInputs
from mlfer.models.heads.registry import register_head

#: Label rates are clipped to [MIN_RATE, 1 - MIN_RATE] before their log-odds are taken.
MIN_RATE = 1e-3


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

    def start_at_label_rates(self, rates: np.ndarray) -> None:
        r"""Start the bias at the log-odds :math:`\log \frac{p_c}{1 - p_c}` of each label's training
        rate, so that the first steps learn the features' evidence, not how common each label is
        (which takes thousands of steps at the paper's learning rates for a rare label)."""
        clipped = np.clip(np.asarray(rates, dtype=np.float64), MIN_RATE, 1 - MIN_RATE)
        with torch.no_grad():
            self.linear.bias.copy_(torch.as_tensor(np.log(clipped / (1 - clipped)), dtype=self.linear.bias.dtype))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)
