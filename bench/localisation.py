"""Does a model's Grad-CAM fall on the action units of the expressions present? The scores
and the reference detector of ``bench/gradcam_localisation.py``.

On synthetic faces (:mod:`mlfer.data.synthetic`) the generator knows where each action unit
was drawn and where the face is. For every face, every present expression whose map is not
zero on the whole face is scored on its Grad-CAM map (:func:`mlfer.inference.explain.grad_cam`) by

* the density ratio: mean heat per pixel on the boxes of the expression's units
  (:meth:`~mlfer.data.synthetic.SyntheticFaces.expression_masks`) over mean heat per pixel
  on the rest of the face (:meth:`~mlfer.data.synthetic.SyntheticFaces.face_mask`); above 1,
  the map puts more of its mass on the expression's regions than on the rest;
* the pointing game (Zhang et al., 2016): whether the hottest face pixel lies on the
  expression's boxes, beside the chance of that (the boxes' share of the face).

The control is the same architecture with its weights drawn afresh (:func:`reinitialise`):
it says how much of a score comes from learning rather than from the drawn marks.
:func:`train_expression_detector` trains the reference model whose maps are expected to
localise: one that tells each expression from a neutral face.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mlfer.core.config import make_config
from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.data.dataset import LabelledData, Partition
from mlfer.data.synthetic import LABEL_STREAM, SPLIT_STREAM, SyntheticFaces, render_faces, sample_label_sets, seeded_rng
from mlfer.inference.explain import grad_cam
from mlfer.models.model import MultiLabelModel
from mlfer.runtime.reproduce import intra_op_threads
from mlfer.train.fitting import train_finetune

#: Faces per Grad-CAM batch.
BATCH = 50
#: Rows of :func:`train_expression_detector`'s faces kept for its test metrics.
DETECTOR_TEST_ROWS = 100
SCORE_COLUMNS = ["expression", "ratio", "hit", "chance", "probability"]
SUMMARY_COLUMNS = ["expression", "scored", "probability", "median ratio", "ratio > 1", "pointing hits", "chance"]
#: What the reference detector's maps at layer3 reach on single-expression faces
#: (:func:`localisation_failures`, docs/predict.md): scored on more than 5/6 of the faces,
#: denser on the expression's regions for at least 65 % of them and at least 15 points more
#: often than untrained, with a median density ratio above 1.05.
MIN_SCORED, MIN_DENSER, MIN_MARGIN, MIN_MEDIAN_RATIO = 5 / 6, 0.65, 0.15, 1.05


def localisation_scores(faces: SyntheticFaces, maps: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    """One row per (face, present expression): density ratio, pointing hit, chance, probability.

    Args:
        faces: the faces the maps were made on.
        maps: (N, 6, size, size) heat maps, RAF order.
        probabilities: (N, 6) the model's probabilities.
    """
    rows = []
    for index in range(len(faces.labels)):
        masks, face = faces.expression_masks(index), faces.face_mask(index)
        for e, name in enumerate(EXPRESSIONS):
            inside, rest = masks[e] & face, face & ~masks[e]
            heat = maps[index, e]
            if not faces.labels[index, e] or not inside.any() or not rest.any() or not heat[face].any():
                continue
            hottest = np.unravel_index(np.argmax(np.where(face, heat, -1.0)), heat.shape)
            rows.append(
                {
                    "expression": name,
                    "ratio": heat[inside].mean() / max(heat[rest].mean(), 1e-12),
                    "hit": bool(masks[e][hottest]),
                    "chance": inside.sum() / face.sum(),
                    "probability": probabilities[index, e],
                }
            )
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def measure(model: MultiLabelModel, faces: SyntheticFaces, images: torch.Tensor, layer: str = "layer4") -> pd.DataFrame:
    """Grad-CAM of ``model`` at block ``layer`` on ``faces`` (``images``: their input batch,
    :func:`~mlfer.data.transforms.eval_batch`) and the scores of every present expression."""
    results = [grad_cam(model, images[start : start + BATCH], layer) for start in range(0, len(images), BATCH)]
    maps = np.concatenate([maps for maps, _ in results])
    probabilities = np.concatenate([probabilities for _, probabilities in results])
    return localisation_scores(faces, maps, probabilities)


def reinitialise(model: MultiLabelModel, seed: int) -> MultiLabelModel:
    """Draw every layer's weights of ``model`` afresh, in place (its architecture and graph
    inputs stay): the untrained control."""
    torch.manual_seed(seed)
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return model.eval()


def summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Per expression and over all: count, mean probability, median ratio, share above 1,
    pointing hits, chance (no row for an expression never scored; no rows at all when nothing was)."""
    groups = [*((name, scores[scores.expression == name]) for name in EXPRESSIONS), ("all", scores)]
    return pd.DataFrame(
        [
            {
                "expression": name,
                "scored": len(group),
                "probability": group.probability.mean(),
                "median ratio": group.ratio.median(),
                "ratio > 1": (group.ratio > 1).mean(),
                "pointing hits": group.hit.mean(),
                "chance": group.chance.mean(),
            }
            for name, group in groups
            if len(group)
        ],
        columns=SUMMARY_COLUMNS,
    )


def localisation_failures(trained: pd.DataFrame, untrained: pd.DataFrame, faces: int) -> list[str]:
    """What the scores of a model that should localise (the reference detector at layer3 on
    ``faces`` single-expression faces) miss of the expected result, beside the same model
    untrained; empty when it localises.

    Args:
        trained, untrained: :func:`measure`'s scores of the model and of its re-initialised copy.
        faces: how many faces were measured.
    """
    denser, control = (trained.ratio > 1).mean(), (untrained.ratio > 1).mean()
    median = trained.ratio.median()
    probability, untrained_probability = trained.probability.mean(), untrained.probability.mean()
    checks = [
        (len(trained) > MIN_SCORED * faces, f"{len(trained)} of {faces} faces scored"),
        (
            probability > untrained_probability,
            f"mean probability {probability:.2f}, not above untrained {untrained_probability:.2f}",
        ),
        (denser >= MIN_DENSER, f"{denser:.0%} of the maps denser on the expression's regions"),
        (denser >= control + MIN_MARGIN, f"{denser:.0%} denser against {control:.0%} untrained"),
        (median > MIN_MEDIAN_RATIO, f"median ratio {median:.2f}"),
    ]
    return [message for passed, message in checks if not passed]


def train_expression_detector(
    faces: int = 3000,
    size: int = 64,
    epochs: int = 3,
    seed: int = 0,
    threads: int = 2,
    test_rows: int = DETECTOR_TEST_ROWS,
) -> MultiLabelModel:
    """The baseline (ResNet18) fine-tuned end to end on synthetic faces, half of them neutral
    and half showing one expression each, so that each logit learns what tells its expression
    from a neutral face: its action units (about 100 s on 2 cores at the defaults).

    Adam at 1e-3 for trunk and classifier, a tenth of it in the last epoch; the last
    ``test_rows`` faces are the test rows of the per-epoch metrics.

    Args:
        faces: faces drawn (seeded by ``seed``), at ``size`` pixels.
        epochs: passes over the training faces.
        seed: seed of the faces and of the training.
        threads: torch intra-op threads while training.
        test_rows: faces held out for the per-epoch metrics.
    """
    if faces <= test_rows:
        raise MlferError(f"needs more than {test_rows} faces, got {faces}", field="faces")
    labels = sample_label_sets(faces, seeded_rng(seed, LABEL_STREAM), single_label=True)
    labels[seeded_rng(seed, SPLIT_STREAM).random(faces) < 0.5] = 0
    drawn = render_faces(labels, seed=seed, size=size)
    data = LabelledData(
        spec="synthetic-neutral", labels=drawn.labels, images=drawn.images, ids=[f"face_{i}" for i in range(faces)]
    )
    rows = np.arange(faces)
    partition = Partition("split", train=rows[:-test_rows], test=rows[-test_rows:])
    config = make_config(
        None,
        {
            "model.backbone": "resnet18",
            "model.head": "baseline",
            "train.mode": "finetune",
            "train.image_size": size,
            "train.epochs": epochs,
            "train.lr_step": max(1, epochs - 1),
            "train.lr_head": 1e-3,
            "train.lr_backbone": 1e-3,
            "train.seed": seed,
        },
        dataset=data.spec,
    )
    with intra_op_threads(threads):
        result = train_finetune(config, data, partition, _no_prototypes, seed=seed)
    return result.model.eval()


def _no_prototypes() -> tuple[torch.Tensor, np.ndarray]:
    raise MlferError("the baseline uses no visual prototypes")
