"""Backbones and classifier heads: the baseline and the four graph heads of the paper.

``logits = W_C f`` (eq. 1): the backbone gives ``f`` in R^D; a head gives the classifier
``W_C`` (C x D). The baseline learns ``W_C`` directly; the graph heads generate it from
the label graph with R-GCN (or GCN) layers over node features, so they take no image.
"""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch
import torchvision
from safetensors.torch import load_file
from torch import nn

from mlfer.core.config import TRUNK_DIMS, ModelConfig
from mlfer.core.errors import MlferError
from mlfer.core.expressions import NUM_EXPRESSIONS
from mlfer.models.layers import GraphConv, RelationalGraphConv
from mlfer.models.nodes import MFB

HEADS: tuple[str, ...] = ("baseline", "svml-rgcn", "svml-gcn", "sml-rgcn", "vml-rgcn")
#: The graph heads' node features: which of (visual prototypes, word vectors) they use.
_NODE_INPUTS: dict[str, tuple[bool, bool]] = {
    "svml-rgcn": (True, True),
    "svml-gcn": (True, True),
    "sml-rgcn": (False, True),
    "vml-rgcn": (True, False),
}


class ResNetTrunk(nn.Module):
    """A torchvision ResNet's convolutional layers and global average pooling: image -> f in R^D."""

    def __init__(self, name: str) -> None:
        super().__init__()
        resnet = getattr(torchvision.models, name)(weights=None)
        resnet.fc = nn.Identity()
        self.body = resnet
        self.out_features = TRUNK_DIMS[name]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)


class IdentityBackbone(nn.Module):
    """Passes precomputed feature vectors through unchanged (D = ``feature_dim``)."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.out_features = feature_dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def build_backbone(config: ModelConfig) -> nn.Module:
    """The feature extractor φ named by the config, with its weights loaded."""
    if config.backbone == "identity":
        return IdentityBackbone(config.out_features)
    trunk = ResNetTrunk(config.backbone)
    if config.backbone_weights:
        state = _backbone_state(config.backbone, config.backbone_weights)
        state = {key.removeprefix("body."): value for key, value in state.items()}
        state = {key: value for key, value in state.items() if not key.startswith("fc.")}
        load_state_checked(trunk.body, state, config.backbone_weights, f"backbone weights do not fit {config.backbone}")
    return trunk


def load_state_checked(module: nn.Module, state: dict[str, torch.Tensor], path: str | Path, problem: str) -> None:
    """Load ``state`` into ``module``, or raise naming the missing, unexpected and mis-shaped keys."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(key for key in set(expected) & set(state) if expected[key].shape != state[key].shape)
    if missing or unexpected or wrong_shape:
        raise MlferError(
            f"{problem}: missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shape {wrong_shape[:5]}", path=path
        )
    module.load_state_dict(state)


def _backbone_state(name: str, weights: str) -> dict[str, torch.Tensor]:
    """State dict of a trunk from ``"imagenet"`` (torchvision's file) or a local file."""
    if weights == "imagenet":
        enum = {"resnet50": torchvision.models.ResNet50_Weights, "resnet18": torchvision.models.ResNet18_Weights}[name]
        url = enum.DEFAULT.url
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
        try:
            return enum.DEFAULT.get_state_dict(progress=False)
        except (URLError, OSError) as error:
            raise MlferError(
                f"ImageNet weights for {name} are not cached and cannot be downloaded ({error}). "
                f"Download {url} on a machine with internet and put it at {cached}, "
                "or pass a local file with backbone_weights=PATH",
                path=cached,
            ) from error
    path = Path(weights)
    if not path.is_file():
        raise MlferError("backbone weights file not found", path=path)
    if path.suffix == ".safetensors":
        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


class LinearHead(nn.Module):
    """The baseline: an automatically learnt classifier ``W_C`` (with bias) on f."""

    def __init__(self, feature_dim: int, num_classes: int = NUM_EXPRESSIONS) -> None:
        super().__init__()
        self.linear = nn.Linear(feature_dim, num_classes)

    def classifier(self) -> torch.Tensor:
        """W_C (C x D)."""
        return self.linear.weight

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)


class GraphHead(nn.Module):
    """A classifier generated from the label graph (sections 3.2-3.4).

    Node features ``h^(0)`` are MFB(prototypes, word vectors) (eq. 6) for ``svml-*``, the
    word vectors alone for ``sml-rgcn`` and the prototypes alone for ``vml-rgcn``. Graph
    layers (R-GCN, eq. 7; GCN on the eq. 14 adjacency for ``svml-gcn``) with LeakyReLU
    between them turn the nodes into ``W_C`` (C x D), and ``logits = f W_C^T`` (eq. 1).

    Args:
        config: the model config (head, MFB sizes, layer widths).
        adjacency: (2, C, C) positive/negative relations for R-GCN heads, or the (C, C)
            re-weighted matrix Ã for ``svml-gcn``; ``[.., i, j]`` means node i aggregates from j.
        word_vectors: (C, word_dim) label word vectors.
        prototypes: (C, D) visual prototypes (eq. 5).
    """

    def __init__(
        self, config: ModelConfig, adjacency: torch.Tensor, word_vectors: torch.Tensor, prototypes: torch.Tensor
    ) -> None:
        super().__init__()
        self.uses_visual, self.uses_semantic = _NODE_INPUTS[config.head]
        self.relational = config.head != "svml-gcn"
        self.register_buffer("adjacency", adjacency.float())
        self.register_buffer("word_vectors", word_vectors.float())
        self.register_buffer("prototypes", prototypes.float())
        if self.uses_visual and self.uses_semantic:
            self.fusion = MFB(
                prototypes.shape[1], word_vectors.shape[1], config.mfb_k, config.mfb_o, config.mfb_dropout
            )
            width = config.mfb_o
        else:
            self.fusion = None
            width = (prototypes if self.uses_visual else word_vectors).shape[1]
        self.layers = nn.ModuleList()
        for out_width in config.layer_widths():
            if self.relational:
                self.layers.append(RelationalGraphConv(width, out_width, num_relations=adjacency.shape[0]))
            else:
                self.layers.append(GraphConv(width, out_width))
            width = out_width
        self.activation = nn.LeakyReLU(config.negative_slope)

    def node_features(self) -> torch.Tensor:
        """h^(0): the fused, semantic or visual node features (C x d0)."""
        if self.fusion is not None:
            return self.fusion(self.prototypes, self.word_vectors)
        return self.prototypes if self.uses_visual else self.word_vectors

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


class MultiLabelModel(nn.Module):
    """Backbone φ plus a classifier head: image (or feature vector) -> six logits."""

    def __init__(self, config: ModelConfig, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.head = head

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(inputs))


def build_model(
    config: ModelConfig,
    adjacency: np.ndarray | torch.Tensor | None = None,
    word_vectors: np.ndarray | torch.Tensor | None = None,
    prototypes: np.ndarray | torch.Tensor | None = None,
    load_backbone_weights: bool = True,
) -> MultiLabelModel:
    """Build a model from its config and the graph inputs of its head.

    Graph inputs left as ``None`` are zero-filled with the right shapes: use that to build
    a model whose buffers are then loaded from a checkpoint.
    """
    check_head(config.head)
    backbone_config = config if load_backbone_weights else _without_weights(config)
    backbone = build_backbone(backbone_config)
    if config.head == "baseline":
        return MultiLabelModel(config, backbone, LinearHead(config.out_features))
    relations = (
        (NUM_EXPRESSIONS, NUM_EXPRESSIONS) if config.head == "svml-gcn" else (2, NUM_EXPRESSIONS, NUM_EXPRESSIONS)
    )
    head = GraphHead(
        config,
        _tensor(adjacency, relations),
        _tensor(word_vectors, (NUM_EXPRESSIONS, config.word_dim)),
        _tensor(prototypes, (NUM_EXPRESSIONS, config.out_features)),
    )
    return MultiLabelModel(config, backbone, head)


def check_head(name: str) -> None:
    """Refuse a head name that is not one of :data:`HEADS`."""
    if name not in HEADS:
        raise MlferError(f"unknown head {name!r}; choose from {', '.join(HEADS)}", field="model.head")


def _without_weights(config: ModelConfig) -> ModelConfig:
    return ModelConfig(**{**config.__dict__, "backbone_weights": None})


def _tensor(value: np.ndarray | torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor:
    if value is None:
        return torch.zeros(shape)
    tensor = torch.as_tensor(value, dtype=torch.float32)
    if tuple(tensor.shape) != shape:
        raise MlferError(f"expected a tensor of shape {shape}, got {tuple(tensor.shape)}", field="model inputs")
    return tensor


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(parameter.numel() for parameter in module.parameters() if parameter.requires_grad)


def uses_prototypes(head: str) -> bool:
    """Whether a head's node features include the visual prototypes (eq. 5)."""
    return _NODE_INPUTS.get(head, (False, False))[0]
