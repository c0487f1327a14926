"""Grad-CAM heat maps per expression, and the paper's Fig. 7 layout (face, then one map per expression)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from mlfer.core.architectures import RESNET_BLOCKS
from mlfer.core.config import load_config
from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.core.fileio import atomic_path
from mlfer.core.messages import clipped
from mlfer.data.specs import parse_spec
from mlfer.data.transforms import eval_batch
from mlfer.models.backbones import ResNetTrunk
from mlfer.models.model import MultiLabelModel
from mlfer.models.package import CONFIG_FILE

#: Figure files matplotlib writes without LaTeX (``pgf`` needs it) or a Pillow plugin (``avif``), by suffix.
FIGURE_FORMATS = ("png", "jpg", "jpeg", "pdf", "svg", "svgz", "eps", "ps", "tif", "tiff", "webp", "gif")


def figure_format(path: str | Path) -> str:
    """The format of the figure file ``path``, from its suffix (:data:`FIGURE_FORMATS`).

    Raises:
        MlferError: naming the file, for any other suffix (or none); checked before the work.
    """
    suffix = Path(path).suffix.lower().removeprefix(".")
    if suffix not in FIGURE_FORMATS:
        given = f"a {suffix!r} file" if suffix else "a file without a suffix"
        raise MlferError(f"cannot draw the figure as {given}; use .{', .'.join(FIGURE_FORMATS)}", path=path)
    return suffix


def block_features(trunk: ResNetTrunk, images: torch.Tensor, layer: str) -> torch.Tensor:
    """Activations of the residual block ``layer`` of a ResNet trunk, N x K x h x w."""
    body = trunk.body
    x = body.maxpool(body.relu(body.bn1(body.conv1(images))))
    for name in RESNET_BLOCKS[: RESNET_BLOCKS.index(layer) + 1]:
        x = getattr(body, name)(x)
    return x


def features_after(trunk: ResNetTrunk, activations: torch.Tensor, layer: str) -> torch.Tensor:
    """The trunk's pooled feature f (N x D) from the activations of block ``layer``."""
    body = trunk.body
    x = activations
    for name in RESNET_BLOCKS[RESNET_BLOCKS.index(layer) + 1 :]:
        x = getattr(body, name)(x)
    return torch.flatten(body.avgpool(x), 1)


def grad_cam(model: MultiLabelModel, images: torch.Tensor, layer: str = "layer4") -> tuple[np.ndarray, np.ndarray]:
    r"""Grad-CAM (Selvaraju et al., 2017) of every expression on a batch of images.

    With :math:`A^k` the k-th channel of the convolutional block ``layer`` (by default the
    last) and :math:`y^c` the logit of expression :math:`c`,

    .. math::
        \alpha_k^c = \frac{1}{Z} \sum_{u, v} \frac{\partial y^c}{\partial A^k_{uv}}, \qquad
        L^c = \mathrm{ReLU}\Big(\sum_k \alpha_k^c A^k\Big),

    upsampled bilinearly to the input size and divided by its maximum (an all-zero map
    stays zero). Samples are independent (the model is in eval mode), so the gradient of
    the summed logits gives each sample's own gradient.

    Args:
        model: a model with a ResNet backbone.
        images: N x 3 x H x W normalised input (as :func:`~mlfer.data.transforms.eval_batch` makes it).
        layer: the block of :data:`RESNET_BLOCKS` whose activations are weighted; an earlier
            block gives a finer map (``layer3``: stride 16 against ``layer4``'s 32).

    Returns:
        ``(maps, probabilities)``: maps N x 6 x H x W in [0, 1] and probabilities N x 6,
        both in RAF order.
    """
    if not isinstance(model.backbone, ResNetTrunk):
        raise MlferError(
            f"Grad-CAM needs a convolutional backbone (resnet18 or resnet50), not {model.config.backbone}",
            field="model.backbone",
        )
    if layer not in RESNET_BLOCKS:
        raise MlferError(f"Grad-CAM layer must be one of {', '.join(RESNET_BLOCKS)}, not {layer!r}", field="layer")
    model.eval()
    with torch.no_grad():
        activations = block_features(model.backbone, images, layer)
    activations.requires_grad_(True)
    with torch.enable_grad():
        logits = model.classify(features_after(model.backbone, activations, layer))
        maps = []
        for index in range(len(EXPRESSIONS)):
            (gradients,) = torch.autograd.grad(logits[:, index].sum(), activations, retain_graph=True)
            weights = gradients.mean(dim=(2, 3), keepdim=True)
            maps.append(F.relu((weights * activations).sum(dim=1)))
    cams = F.interpolate(
        torch.stack(maps, dim=1).detach(), size=images.shape[-2:], mode="bilinear", align_corners=False
    )
    peak = cams.amax(dim=(2, 3), keepdim=True)
    cams = torch.where(peak > 0, cams / peak.clamp_min(1e-12), torch.zeros_like(cams))
    return cams.cpu().numpy(), torch.sigmoid(logits.detach()).cpu().numpy()


@dataclass
class Explanation:
    """Grad-CAM of one model on one aligned face.

    Args:
        label: the row's label in the figure (the model folder's name, or the head's).
        face: the aligned RGB face, size x size x 3 uint8.
        maps: 6 x size x size heat maps in [0, 1], RAF order.
        probabilities: the six probabilities, RAF order.
        thresholds: the six thresholds; probabilities at or above them are printed in bold.
        trained_on: what the model learnt from, in words (:func:`training_data`); the figure's
            title says it. Empty: not known, not said.
    """

    label: str
    face: np.ndarray
    maps: np.ndarray
    probabilities: np.ndarray
    thresholds: np.ndarray
    trained_on: str = ""


def explain_face(
    model: MultiLabelModel,
    face: np.ndarray,
    thresholds: np.ndarray,
    label: str | None = None,
    layer: str = "layer4",
    trained_on: str = "",
) -> Explanation:
    """Grad-CAM (at block ``layer``) of every expression on one aligned RGB face, already at
    the model's input size."""
    preprocessing = model.preprocessing
    image = eval_batch([face], face.shape[0], preprocessing.mean, preprocessing.std, preprocessing.channels)
    image = image.to(next(model.parameters()).device)
    maps, probabilities = grad_cam(model, image, layer)
    return Explanation(label or model.config.head, face, maps[0], probabilities[0], np.asarray(thresholds), trained_on)


#: How the figure names a dataset kind (``config.yaml``'s ``dataset``, ``KIND:TARGET?options``).
DATA_NAMES: dict[str, str] = {
    "synthetic": "synthetic cartoon faces",
    "raf-ml": "RAF-ML",
    "raf-basic": "RAF-DB (basic expressions)",
    "raf-compound": "RAF-DB (compound expressions)",
    "jaffe": "JAFFE",
    "ferplus": "FER+",
    "ldl": "a label-distribution table",
    "features": "face features",
    "csv": "a table of labelled photos",
    "folder": "a folder of labelled photos",
}


def training_data(spec: str) -> str:
    """What a model was trained on, in words, from its dataset spec: ``synthetic:300?size=48``
    is "synthetic cartoon faces", ``ferplus:DIR`` "FER+", ``features:x.npz`` "face features
    (x.npz)"; a spec that cannot be read is given as it is, shortened. (The size of a spec's
    dataset is not what the model saw, which is its training split: it is left out.)"""
    try:
        kind, target, _ = parse_spec(spec)
    except MlferError:
        return clipped(spec)
    name = DATA_NAMES.get(kind, kind)
    if kind in ("ldl", "features", "csv", "folder") and target.strip():
        return f"{name} ({clipped(Path(target.strip()).name)})"
    return name


def model_training_data(directory: str | Path) -> str:
    """:func:`training_data` of the model folder's ``config.yaml``; empty where it cannot be read."""
    try:
        return training_data(load_config(Path(directory) / CONFIG_FILE).dataset)
    except (MlferError, OSError):
        return ""


def row_label(name: str, head: str) -> str:
    """A row's label: the model folder's ``name``, and the ``head`` below it only where the name
    does not already say it (``baseline``, not "baseline (baseline)")."""
    return name if head in name else f"{name}\n({head})"


def figure_title(explanations: list[Explanation]) -> str:
    """What the models were trained on: one line when all rows share it, else one line per row."""
    known = [explanation for explanation in explanations if explanation.trained_on]
    sources = list(dict.fromkeys(explanation.trained_on for explanation in known))
    if not sources:
        return ""
    if len(sources) == 1:
        return f"{'models' if len(known) > 1 else 'model'} trained on {sources[0]}"
    return "\n".join(
        f"{explanation.label.splitlines()[0]}: trained on {explanation.trained_on}" for explanation in known
    )


def draw_explanations(explanations: list[Explanation], path: str | Path) -> None:
    """Save a figure like the paper's Fig. 7: per row, the face then one heat map per expression.

    Each heat map is overlaid on the face, titled with its expression and captioned with
    its probability (bold when at or above the threshold); rows are labelled with their
    labels, and the figure's title says what the models were trained on (:func:`figure_title`).
    The format follows the suffix (:func:`figure_format`).
    """
    kind = figure_format(path)
    columns = 1 + len(EXPRESSIONS)
    title = figure_title(explanations)
    lines = title.count("\n") + 1 if title else 0
    figure = Figure(figsize=(1.6 * columns, 1.9 * len(explanations) + 0.25 * lines))
    if title:
        figure.suptitle(title, fontsize=10)
    axes = figure.subplots(len(explanations), columns, squeeze=False)
    for row, explanation in zip(axes, explanations):
        row[0].imshow(explanation.face)
        row[0].set_ylabel(explanation.label, fontsize=10)
        for axis, name, cam, p, t in zip(
            row[1:], EXPRESSIONS, explanation.maps, explanation.probabilities, explanation.thresholds
        ):
            axis.imshow(explanation.face)
            axis.imshow(cam, cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
            axis.set_title(name, fontsize=9)
            axis.set_xlabel(f"{p:.2f}", fontsize=9, fontweight="bold" if p >= t else "normal")
        for axis in row:
            axis.set_xticks([])
            axis.set_yticks([])
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=kind, dpi=120)
