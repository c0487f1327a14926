"""The model: a backbone φ, a classifier head, and the preprocessing its input needs.

``logits = W_C f`` (eq. 1): the backbone (:mod:`mlfer.models.backbones`) gives ``f`` in
R^D; a head (:mod:`mlfer.models.heads`) gives the classifier ``W_C`` (C x D). Between the two,
a :class:`FeatureScaler` holds the training features' scale (frozen mode sets it; identity
otherwise), so a head trained on scaled features reads every input the same way. The baseline
learns ``W_C`` directly; the graph heads generate it from the label graph with R-GCN (or
GCN) layers over node features, so they take no image. After the head, a :class:`LogitScaling`
holds the model's calibration (identity unless one was fitted), so every path that reads the
logits reads calibrated ones.
"""

from __future__ import annotations

import torch
from torch import nn

from mlfer.core.config import ModelConfig
from mlfer.core.errors import MlferError
from mlfer.core.expressions import NUM_EXPRESSIONS
from mlfer.models.backbones import build_backbone
from mlfer.models.heads import ArrayInput, Head, HeadInputs, head_class
from mlfer.models.preprocessing import Preprocessing

#: Least scale of a feature dimension: a dimension that is always 0 is left as it is.
MIN_FEATURE_SCALE = 1e-6


class FeatureScaler(nn.Module):
    r"""``f' = (f - shift) / scale`` per feature dimension; identity until :meth:`fit` sets them.

    For a head with a bias, the training features' mean and standard deviation (standardising);
    for the graph heads, which have none (``logits = W_C f``, eq. 1) and express how common each
    expression is through the mean of ``f``, no shift and the root mean square
    :math:`\sqrt{\tfrac{1}{N} \sum_n f_{nd}^2}`.

    Args:
        dim: D, the size of the feature vector.
    """

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def fit(self, features: torch.Tensor, centre: bool) -> None:
        """Take the statistics of ``features`` (N x D, the training rows), centred or not."""
        features = features.detach().double()  # float32 squares of large features overflow
        shift = features.mean(dim=0) if centre else torch.zeros(features.shape[1], dtype=torch.float64)
        self.shift.copy_(shift)
        self.scale.copy_((features - shift).pow(2).mean(dim=0).sqrt().clamp_min(MIN_FEATURE_SCALE))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.shift) / self.scale


class LogitScaling(nn.Module):
    r"""``z'_c = scale_c * z_c + bias_c`` per expression: a per-label Platt calibration of the
    logits (:func:`mlfer.evaluation.calibration.fit_logit_scale`); identity until :meth:`set`.

    Buffers, not parameters: training leaves them as they are. ``scale`` is kept positive, so
    the order of the faces per expression (AUC, rankings) is that of the head's logits.

    Args:
        labels: C, the number of expressions.
    """

    scale: torch.Tensor
    bias: torch.Tensor

    def __init__(self, labels: int = NUM_EXPRESSIONS) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(labels))
        self.register_buffer("bias", torch.zeros(labels))

    def set(self, scale: torch.Tensor, bias: torch.Tensor) -> None:
        """Take a fitted calibration: ``scale`` and ``bias`` (C,), every scale positive and finite."""
        scale, bias = torch.as_tensor(scale, dtype=self.scale.dtype), torch.as_tensor(bias, dtype=self.bias.dtype)
        if scale.shape != self.scale.shape or bias.shape != self.bias.shape:
            raise MlferError(f"expected a scale and a bias of shape {tuple(self.scale.shape)}", field="scale")
        if not bool(torch.isfinite(bias).all()) or not bool((torch.isfinite(scale) & (scale > 0)).all()):
            raise MlferError("a calibration needs finite biases and finite positive scales", field="scale")
        self.scale.copy_(scale)
        self.bias.copy_(bias)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits * self.scale + self.bias


class MultiLabelModel(nn.Module):
    """Backbone φ plus a classifier head: image (or feature vector) -> six logits.

    Args:
        config: the model config it was built from.
        backbone: φ, input -> f (N x D).
        head: f -> logits (N x 6), calibrated by ``logit_scaling`` (:class:`LogitScaling`).
        preprocessing: how faces become its input and the thresholds of its predictions
            (default: 224 x 224 faces, ImageNet normalisation, 0.5 each).
    """

    def __init__(
        self, config: ModelConfig, backbone: nn.Module, head: Head, preprocessing: Preprocessing | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.feature_scaler = FeatureScaler(config.out_features)
        self.head = head
        self.logit_scaling = LogitScaling()
        self.preprocessing = preprocessing or Preprocessing()

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of backbone features f (N x D): the head on the scaled features, calibrated."""
        return self.logit_scaling(self.head(self.feature_scaler(features)))

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
