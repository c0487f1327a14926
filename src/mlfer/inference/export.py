"""ONNX export of a whole classifier: backbone plus the head's classifier folded into a fixed matrix.

The graph heads generate ``W_C`` from the label graph without looking at the image, so at
inference time ``W_C`` is a constant: the exported graph holds the backbone, one matrix
product with ``W_C`` (plus the bias of the baseline's linear layer) and a sigmoid. The
R-GCN/GCN layers, MFB and the graph buffers are not in the ONNX file.

Input ``images``: float32 ``N x C x S x S``, RGB (C = 3) or grey (C = 1, a model with
``model.in_channels: 1``) (``S`` = the model's
``preprocessing.image_size``, a checkpoint's ``train.image_size``), scaled to [0, 1] then
normalised per channel with ``preprocessing.mean`` and ``std`` (ImageNet's: mean
(0.485, 0.456, 0.406), standard deviation (0.229, 0.224, 0.225)), as
:meth:`mlfer.models.preprocessing.Preprocessing.batch` does; for an identity backbone, ``features``
float32 ``N x D``. Output ``probabilities``: float32 ``N x 6`` in RAF order. ``N`` is dynamic.

The file's metadata (``metadata_props``) records what a user needs to feed it: the expressions,
input name, channels, size, mean and std, the thresholds, and the alignment template (the three
points, right eye, left eye and mouth centre, on a 224 x 224 face) the model's faces were framed by.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import torch
import torch.nn.functional as F
from torch import nn

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.core.fileio import atomic_path
from mlfer.faces.template import TEMPLATE
from mlfer.models.heads.baseline import LinearHead
from mlfer.models.model import MultiLabelModel

OUTPUT_NAME = "probabilities"


class FoldedClassifier(nn.Module):
    r"""The model with its classifier computed once: :math:`p = \sigma(W\, \varphi(x) + b)`.

    :math:`W_C` (C x D) is the head's :meth:`classifier` evaluated in eval mode (eq. 1), and
    :math:`b_C` the baseline's bias (0 for the graph heads). The model's feature scaling
    :math:`(f - t) / s` and its logit scaling :math:`a z + c` (the calibration) are folded in:
    :math:`W = \operatorname{diag}(a)\, W_C \operatorname{diag}(1/s)`,
    :math:`b = a \odot (b_C - W_C \operatorname{diag}(1/s)\, t) + c`.
    """

    weight: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, model: MultiLabelModel) -> None:
        super().__init__()
        model.eval()
        self.backbone = model.backbone
        with torch.no_grad():
            weight = model.head.classifier().detach() / model.feature_scaler.scale
            bias = model.head.linear.bias.detach().clone() if isinstance(model.head, LinearHead) else None
            shift = weight @ model.feature_scaler.shift
            if bool(shift.any()):
                bias = -shift if bias is None else bias - shift
            scaling = model.logit_scaling
            weight = scaling.scale[:, None] * weight
            bias = None if bias is None else scaling.scale * bias
            if bool(scaling.bias.any()):
                bias = scaling.bias.clone() if bias is None else bias + scaling.bias
        self.register_buffer("weight", weight.clone())
        self.register_buffer("bias", bias)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.linear(self.backbone(inputs), self.weight, self.bias))


def input_name(model: MultiLabelModel) -> str:
    """``images`` for ResNet backbones, ``features`` for the identity backbone."""
    return "features" if model.config.backbone == "identity" else "images"


def input_shape(model: MultiLabelModel, image_size: int | None = None) -> str:
    """The exported input's shape in words: ``N x C x S x S`` (C the model's channels), or ``N x D``."""
    if input_name(model) == "features":
        return f"N x {model.config.out_features}"
    size = image_size or model.preprocessing.image_size
    return f"N x {model.preprocessing.channels} x {size} x {size}"


def metadata(model: MultiLabelModel, image_size: int) -> dict[str, str]:
    """The ONNX file's metadata: expressions, head, backbone, input, channels, size, mean, std,
    thresholds and the alignment template (mlfer's own where the model has none), JSON-encoded."""
    preprocessing = model.preprocessing
    template = preprocessing.template if preprocessing.template is not None else TEMPLATE.tolist()
    return {
        "expressions": json.dumps(list(EXPRESSIONS)),
        "head": model.config.head,
        "backbone": model.config.backbone,
        "input": input_name(model),
        "channels": str(preprocessing.channels),
        "image_size": str(image_size),
        "mean": json.dumps(preprocessing.mean),
        "std": json.dumps(preprocessing.std),
        "thresholds": json.dumps(preprocessing.thresholds),
        "template": json.dumps([list(point) for point in template]),
    }


def export_onnx(model: MultiLabelModel, path: str | Path, image_size: int | None = None) -> Path:
    """Write the folded classifier as an ONNX file with a dynamic batch axis.

    The file's metadata is :func:`metadata`'s.

    Args:
        model: the trained model (moved to the CPU for the export).
        path: the ``.onnx`` file to write (through a temporary file).
        image_size: S, the side of the square input images (default: the model's
            ``preprocessing.image_size``).
    """
    image_size = image_size or model.preprocessing.image_size
    folded = FoldedClassifier(model.cpu()).eval()
    name = input_name(model)
    if name == "features":
        example = torch.zeros(2, model.config.out_features)
    else:
        example = torch.zeros(2, model.preprocessing.channels, image_size, image_size)
    program = torch.onnx.export(
        folded,
        (example,),
        input_names=[name],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        dynamo=True,
        verbose=False,
    )
    if program is None:
        raise MlferError("torch.onnx.export returned no program", path=path)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, metadata(model, image_size))
    path = Path(path)
    with atomic_path(path) as temporary:
        onnx.save_model(proto, str(temporary))
    return path
