"""Facts about the networks mlfer builds: the backbones, their feature sizes, stems and input channels."""

from __future__ import annotations

#: Backbones by name, and the size D of the feature vector of each torchvision trunk.
BACKBONES: tuple[str, ...] = ("resnet50", "resnet18", "identity")
TRUNK_DIMS: dict[str, int] = {"resnet50": 2048, "resnet18": 512}
#: ``model.stem``: torchvision's 7 x 7 stride-2 convolution and max-pool (for 224 px faces), or a
#: 3 x 3 stride-1 convolution before the same max-pool (for small faces such as FER+'s 48 x 48).
STEMS: tuple[str, ...] = ("standard", "small")
#: ``model.in_channels``: grey or RGB input.
IN_CHANNELS: tuple[int, ...] = (1, 3)
#: The residual blocks of the ResNet trunks, from fine (stride 4) to coarse (stride 32).
RESNET_BLOCKS: tuple[str, ...] = ("layer1", "layer2", "layer3", "layer4")
