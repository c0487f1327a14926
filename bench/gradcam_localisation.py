"""Measurement: does a model's Grad-CAM fall on the action units of the expressions present?

Scores each checkpoint with ``bench/localisation.py`` (density ratio of Grad-CAM heat on
the expression's action-unit boxes over the rest of the face, and the pointing game), as
trained and with its weights drawn afresh (the untrained control), at each ``--layer``.
The faces are drawn with ``--seed`` (by default one the demo does not train on) at the
checkpoint's input size, with label sets in RAF-ML's proportions (``--single-label``: one
expression per face).

``--detector`` also trains and measures the reference model whose maps should localise
(:func:`localisation.train_expression_detector`: each expression told from a neutral face;
about 100 s); with ``--check`` the script fails unless its maps at layer3 localise as
docs/predict.md states (:func:`localisation.localisation_failures`): run
``python bench/gradcam_localisation.py --detector --single-label --layer layer3 --check``.

Run ``python bench/gradcam_localisation.py --checkpoint mlfer-demo/baseline --checkpoint
mlfer-demo/svml-rgcn --detector --single-label --layer layer3 --layer layer4 --write`` for
docs/benchmarks.md (section "Grad-CAM localisation"); ``--smoke`` runs a tiny version.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from benchdoc import write_section
from localisation import (
    localisation_failures,
    measure,
    reinitialise,
    summary,
    train_expression_detector,
)
from mlfer.core.architectures import RESNET_BLOCKS
from mlfer.core.config import ModelConfig, RunConfig, TrainConfig, load_config
from mlfer.core.expressions import EXPRESSIONS
from mlfer.data.synthetic import SyntheticFaces, generate_faces
from mlfer.data.transforms import eval_batch
from mlfer.models.checkpoint import load_model, save_model
from mlfer.models.model import MultiLabelModel, build_model
from mlfer.train.loop import enable_huge_pages

#: Seed of the measured faces: the demo draws its faces with seeds 0 to 5.
DEFAULT_SEED = 1000
#: Input size of the reference detector (``--detector``).
DETECTOR_SIZE = 64
#: Title of the reference detector's tables.
DETECTOR_TITLE = "reference detector (`train_expression_detector()`)"


def markdown(title: str, trained: pd.DataFrame, untrained: pd.DataFrame) -> str:
    """Trained and untrained side by side, one row per expression."""
    both = trained.merge(untrained, on="expression", how="outer", suffixes=(" trained", " untrained"), sort=False)
    both = both.set_index("expression").reindex([*EXPRESSIONS, "all"]).dropna(how="all").reset_index()
    both["chance"] = both["chance trained"].fillna(both["chance untrained"])
    columns = ["scored", "probability", "median ratio", "ratio > 1", "pointing hits"]
    head = "| expression | " + " | ".join(f"{c} (trained / untrained)" for c in columns) + " | pointing chance |"
    lines = [f"{title}:", "", head, "|---" * (len(columns) + 2) + "|"]
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


def trained_and_untrained(
    model: MultiLabelModel, faces: SyntheticFaces, images: torch.Tensor, layer: str, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scores of ``model`` as given and re-initialised with ``seed`` (in place)."""
    trained = measure(model, faces, images, layer)
    return trained, measure(reinitialise(model, seed), faces, images, layer)


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
    parser.add_argument(
        "--layer",
        action="append",
        choices=RESNET_BLOCKS,
        help="the block Grad-CAM is taken at (repeatable; default layer4)",
    )
    parser.add_argument("--detector", action="store_true", help="also train and measure the reference detector")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 unless the detector's maps at layer3 localise (with --detector --single-label)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="an untrained ResNet18 (and a tiny detector) on a few faces, for the tests"
    )
    parser.add_argument("--write", action="store_true", help="write the tables to docs/benchmarks.md")
    args = parser.parse_args(argv)
    layers = args.layer or ["layer4"]
    if args.check and not (args.detector and args.single_label and "layer3" in layers):
        parser.error("--check needs --detector, --single-label and --layer layer3")
    enable_huge_pages()
    with tempfile.TemporaryDirectory() as scratch:
        checkpoints = [str(smoke_checkpoint(Path(scratch) / "smoke"))] if args.smoke else args.checkpoint
        if not checkpoints and not args.detector:
            parser.error("give at least one --checkpoint or --detector")
        models = [
            (
                f"`{checkpoint}`",
                lambda c=checkpoint: load_model(c).eval(),
                load_config(Path(checkpoint) / "config.yaml").train.image_size,
            )
            for checkpoint in checkpoints
        ]
        if args.detector:
            if args.smoke:  # 16 training faces, 8 test faces, one epoch
                detector = train_expression_detector(24, DETECTOR_SIZE, epochs=1, threads=1, test_rows=8)
            else:
                detector = train_expression_detector(size=DETECTOR_SIZE)
            models.append((DETECTOR_TITLE, lambda: copy.deepcopy(detector), DETECTOR_SIZE))
        tables, inputs, failures = [], {}, []
        for title, load, size in models:
            if size not in inputs:
                faces = generate_faces(
                    8 if args.smoke else args.faces, seed=args.seed, size=size, single_label=args.single_label
                )
                inputs[size] = faces, eval_batch(faces.images, size)
            for layer in layers:
                trained, untrained = trained_and_untrained(load(), *inputs[size], layer, args.seed)
                tables.append(markdown(f"{title}, Grad-CAM at {layer}", summary(trained), summary(untrained)))
                print(tables[-1], flush=True)
                if args.check and title == DETECTOR_TITLE and layer == "layer3":
                    failures = localisation_failures(trained, untrained, len(inputs[size][0].labels))
    if args.write:
        kind = "one expression each" if args.single_label else "label sets in RAF-ML's proportions"
        intro = (
            f"{args.faces} synthetic faces ({kind}, seed {args.seed}) at each model's input size. "
            "Scored: each present expression whose map is not zero on the whole face, with the "
            "model's mean probability for it. Median ratio: "
            "Grad-CAM heat per pixel on the expression's action-unit boxes over heat per pixel on "
            "the rest of the face, hairline to chin (above 1: more mass on the expression's regions); "
            "ratio > 1: the share of maps for which that holds. Pointing hits: "
            "share of maps whose hottest face pixel lies on those boxes; chance: the boxes' mean "
            "share of the face. Untrained: the same model with its weights drawn afresh."
        )
        write_section("Grad-CAM localisation", intro + "\n\n" + "\n\n".join(tables))
    if failures:
        print("the reference detector's maps at layer3 do not localise: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
