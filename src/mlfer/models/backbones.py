"""Backbones φ: image (or precomputed feature vector) -> f in R^D, and loading their weights."""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import torch
import torchvision
from safetensors.torch import load_file
from torch import nn

from mlfer.core.architectures import TRUNK_DIMS
from mlfer.core.config import ModelConfig
from mlfer.core.errors import MlferError


class ResNetTrunk(nn.Module):
    """A torchvision ResNet's convolutional layers and global average pooling: image -> f in R^D.

    Args:
        name: ``resnet18`` or ``resnet50``.
        stem: ``standard`` (7 x 7 stride-2 first convolution) or ``small`` (3 x 3 stride 1, for
            48-64 px faces; the max-pool stays, which keeps a training step four times cheaper
            than without it; docs/benchmarks.md "FER+").
        in_channels: 3 (RGB) or 1 (grey) input channels of the first convolution.
    """

    def __init__(self, name: str, stem: str = "standard", in_channels: int = 3) -> None:
        super().__init__()
        resnet = getattr(torchvision.models, name)(weights=None)
        if stem == "small":
            resnet.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        elif in_channels != 3:
            resnet.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
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
    trunk = ResNetTrunk(config.backbone, config.stem, config.in_channels)
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
