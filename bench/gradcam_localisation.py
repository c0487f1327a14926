"""Measurement: does a model's Grad-CAM fall on the action units of the expressions present?

On synthetic faces (:mod:`mlfer.data.synthetic`) the generator knows where each action unit
was drawn. For every face, every present expression whose map is not zero on the whole face
is scored on its Grad-CAM map (:func:`mlfer.explain.grad_cam`) by

* the density ratio: mean heat per pixel on the boxes of the expression's units
  (:meth:`~mlfer.data.synthetic.SyntheticFaces.expression_masks`) over mean heat per pixel
  on the rest of the face (the box spanning every unit drawn on that face); above 1, the
  map puts more of its mass on the expression's regions than on the rest;
* the pointing game (Zhang et al., 2016): whether the hottest face pixel lies on the
  expression's boxes, beside the chance of that (the boxes' share of the face).

Each checkpoint is measured twice: as trained and with its weights drawn afresh (the same
architecture untrained), the control that says how much of the score comes from learning.
The faces are drawn with ``--seed`` (by default one the demo does not train on) at the
checkpoint's input size, with label sets in RAF-ML's proportions (``--single-label``: one
expression per face).

Run ``python bench/gradcam_localisation.py --checkpoint mlfer-demo/svml-rgcn --write`` for
docs/benchmarks.md (section "Grad-CAM localisation"); ``--smoke`` runs a tiny version.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from benchdoc import write_section
from PIL import Image

from mlfer.checkpoint import load_model, save_model
from mlfer.data.synthetic import SyntheticFaces, generate_faces
from mlfer.data.transforms import eval_transform
from mlfer.explain import grad_cam
from mlfer.expressions import EXPRESSIONS
from mlfer.model import ModelConfig, MultiLabelModel, build_model
from mlfer.train.config import RunConfig, TrainConfig, load_config

#: Faces per Grad-CAM batch.
BATCH = 50
#: Seed of the measured faces: the demo draws its faces with seeds 0 to 5.
DEFAULT_SEED = 1000


def localisation_scores(faces: SyntheticFaces, maps: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    """One row per (face, present expression): density ratio, pointing hit, chance, probability."""
    rows = []
    for index in range(len(faces.labels)):
        masks, face = faces.expression_masks(index), faces.face_mask(index)
        for e, name in enumerate(EXPRESSIONS):
            inside, rest = masks[e] & face, face & ~masks[e]
            heat = maps[index, e]
            if not faces.labels[index, e] or not inside.any() or not rest.any() or not heat[face].any():
                continue
            hottest = np.unravel_index(np.argmax(np.where(face, heat, -1.0)), heat.shape)
            rows.append({
                "expression": name,
                "ratio": heat[inside].mean() / max(heat[rest].mean(), 1e-12),
                "hit": bool(masks[e][hottest]),
                "chance": inside.sum() / face.sum(),
                "probability": probabilities[index, e],
            })
    return pd.DataFrame(rows, columns=["expression", "ratio", "hit", "chance", "probability"])


def normalised_images(faces: SyntheticFaces) -> torch.Tensor:
    """The faces as the model's input batch (:func:`~mlfer.data.transforms.eval_transform`)."""
    transform = eval_transform(faces.images.shape[1])
    return torch.stack([transform(Image.fromarray(image)) for image in faces.images])


def measure(model: MultiLabelModel, faces: SyntheticFaces, images: torch.Tensor) -> pd.DataFrame:
    """Grad-CAM of ``model`` on ``faces`` (``images``: their input batch) and the scores of
    every present expression."""
    results = [grad_cam(model, images[start:start + BATCH]) for start in range(0, len(images), BATCH)]
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
    pointing hits, chance."""
    groups = [*((name, scores[scores.expression == name]) for name in EXPRESSIONS), ("all", scores)]
    return pd.DataFrame([{
        "expression": name,
        "scored": len(group),
        "probability": group.probability.mean(),
        "median ratio": group.ratio.median(),
        "ratio > 1": (group.ratio > 1).mean(),
        "pointing hits": group.hit.mean(),
        "chance": group.chance.mean(),
    } for name, group in groups if len(group)])


def markdown(checkpoint: str, trained: pd.DataFrame, untrained: pd.DataFrame) -> str:
    """Trained and untrained side by side, one row per expression."""
    both = trained.merge(untrained, on="expression", how="outer", suffixes=(" trained", " untrained"), sort=False)
    both = both.set_index("expression").reindex([*EXPRESSIONS, "all"]).dropna(how="all").reset_index()
    both["chance"] = both["chance trained"].fillna(both["chance untrained"])
    columns = ["scored", "probability", "median ratio", "ratio > 1", "pointing hits"]
    head = "| expression | " + " | ".join(f"{c} (trained / untrained)" for c in columns) + " | pointing chance |"
    lines = [f"`{checkpoint}`:", "", head, "|---" * (len(columns) + 2) + "|"]
    for _, row in both.iterrows():
        cells = [_pair(row[f"{c} trained"], row[f"{c} untrained"], c == "scored") for c in columns]
        lines.append(f"| {row['expression']} | " + " | ".join(cells) + f" | {row['chance']:.2f} |")
    return "\n".join(lines)


def _pair(first: float, second: float, count: bool) -> str:
    """``trained / untrained`` cells: counts as integers, the rest to two decimals, - where missing."""
    def show(value: float) -> str:
        if pd.isna(value):
            return "-"
        return f"{int(value)}" if count else f"{value:.2f}"
    return f"{show(first)} / {show(second)}"


def smoke_checkpoint(folder: Path) -> Path:
    """An untrained ResNet18 baseline at 64 x 64, saved as a checkpoint (for ``--smoke``)."""
    torch.manual_seed(0)
    config = ModelConfig(backbone="resnet18", head="baseline")
    save_model(build_model(config), RunConfig(model=config, train=TrainConfig(image_size=64)), folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    """Measure each checkpoint; print the tables and, with ``--write``, put them in docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", default=[], help="a model folder (repeatable)")
    parser.add_argument("--faces", type=int, default=300, help="synthetic faces measured (default 300)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of the faces (default {DEFAULT_SEED})")
    parser.add_argument("--single-label", action="store_true", help="one expression per face")
    parser.add_argument("--smoke", action="store_true", help="an untrained ResNet18 on a few faces, for the tests")
    parser.add_argument("--write", action="store_true", help="write the tables to docs/benchmarks.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        checkpoints = [str(smoke_checkpoint(Path(scratch) / "smoke"))] if args.smoke else args.checkpoint
        if not checkpoints:
            parser.error("give at least one --checkpoint")
        tables, inputs = [], {}
        for checkpoint in checkpoints:
            size = load_config(Path(checkpoint) / "config.yaml").train.image_size
            if size not in inputs:
                faces = generate_faces(8 if args.smoke else args.faces, seed=args.seed, size=size,
                                       single_label=args.single_label)
                inputs[size] = faces, normalised_images(faces)
            model = load_model(checkpoint).eval()
            trained = summary(measure(model, *inputs[size]))
            untrained = summary(measure(reinitialise(model, args.seed), *inputs[size]))
            tables.append(markdown(checkpoint, trained, untrained))
            print(tables[-1], flush=True)
    if args.write:
        kind = "one expression each" if args.single_label else "label sets in RAF-ML's proportions"
        intro = (f"{args.faces} synthetic faces ({kind}, seed {args.seed}) at each model's input size. "
                 "Scored: each present expression whose map is not zero on the whole face, with the "
                 "model's mean probability for it. Median ratio: "
                 "Grad-CAM heat per pixel on the expression's action-unit boxes over heat per pixel on "
                 "the rest of the face (above 1: more mass on the expression's regions). Pointing hits: "
                 "share of maps whose hottest face pixel lies on those boxes; chance: the boxes' mean "
                 "share of the face. Untrained: the same model with its weights drawn afresh.")
        write_section("Grad-CAM localisation", intro + "\n\n" + "\n\n".join(tables))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
