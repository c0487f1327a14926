"""``mlfer explain``: Grad-CAM heat maps of the six expressions on a face, laid out like the paper's Fig. 7."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlfer.cli import add_trust_argument
from mlfer.core.architectures import RESNET_BLOCKS
from mlfer.core.errors import MlferError

if TYPE_CHECKING:
    from mlfer.faces.detect import Face


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``explain`` parser."""
    parser = subparsers.add_parser(
        "explain",
        help="Grad-CAM heat maps of the six expressions on a face (like the paper's Fig. 7)",
        description=(
            "Detect and align a face, then draw the aligned face and one Grad-CAM heat map per "
            "expression (gradients of its logit at a convolutional block of the backbone, by "
            "default the last), "
            "with the probability under each. Give --checkpoint twice (for example the "
            "baseline and SVML-RGCN) for two rows labelled with the model folders' names (and the head where the "
            "name does not say it); the title says what the models were trained on (config.yaml's dataset)."
        ),
    )
    parser.add_argument(
        "--checkpoint",
        action="append",
        type=Path,
        metavar="DIR",
        help="model folder with a ResNet backbone; repeat for one row per model "
        "(default: the FER+ model that ships with mlfer)",
    )
    parser.add_argument("image", type=Path, metavar="IMAGE", help="the photo")
    parser.add_argument(
        "--out", required=True, type=Path, metavar="FILE.png", help="the figure (.png, .jpg, .pdf, .svg, .eps, ...)"
    )
    parser.add_argument(
        "--face",
        type=int,
        metavar="N",
        help="which face, numbered left to right from 0 as in mlfer predict (default: the largest)",
    )
    parser.add_argument(
        "--thresholds",
        choices=("auto", "default", "tuned"),
        default="auto",
        help="probabilities at or above the threshold are printed in bold",
    )
    parser.add_argument(
        "--layer",
        choices=RESNET_BLOCKS,
        default="layer4",
        help="the ResNet block the maps are taken at: layer4 (default, stride 32) is the "
        "most class-specific, layer3 (stride 16) twice as fine, for small inputs",
    )
    parser.add_argument("--min-score", type=float, default=0.5, metavar="S", help="face detection score (default 0.5)")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="let MediaPipe's own log lines (TFLite, absl) through to stderr; the same as MLFER_VERBOSE=1",
    )
    add_trust_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Explain one face with every checkpoint and save the figure (its name checked first)."""
    from mlfer.core.fileio import check_destination
    from mlfer.data.images import read_image
    from mlfer.faces.align import align_face
    from mlfer.faces.boundary import guarded
    from mlfer.faces.detect import FaceDetector
    from mlfer.faces.quiet import set_verbose
    from mlfer.inference.explain import (
        draw_explanations,
        explain_face,
        figure_format,
        model_training_data,
        row_label,
    )
    from mlfer.models.checkpoint import load_model
    from mlfer.models.shipped import shipped_model_dir

    set_verbose(args.verbose)  # before MediaPipe starts

    figure_format(args.out)
    check_destination(args.out)
    image = np.asarray(read_image(args.image))
    with FaceDetector(args.min_score) as detector:
        face = choose_face(guarded(str(args.image), detector.detect, image), args.face, args.image)
    explanations = []
    for given in args.checkpoint or [None]:
        directory = shipped_model_dir() if given is None else given
        model = load_model(directory, thresholds=args.thresholds, trust_unverified=args.trust_unverified_weights)
        preprocessing = model.preprocessing
        label = row_label(directory.resolve().name, model.config.head)
        aligned = guarded(str(args.image), align_face, image, face, preprocessing.image_size, preprocessing.template)
        thresholds = preprocessing.threshold_array()
        trained_on = model_training_data(directory)
        explanations.append(explain_face(model, aligned, thresholds, label, args.layer, trained_on))
    draw_explanations(explanations, args.out)
    print(f"wrote {args.out}")
    return 0


def choose_face(faces: list[Face], number: int | None, path: Path) -> Face:
    """The face numbered ``number`` (left to right), or the largest when ``None``."""
    if not faces:
        raise MlferError("no face found in the image", path=path)
    if number is None:
        return max(faces, key=lambda face: face.area)
    if not 0 <= number < len(faces):
        raise MlferError(
            f"the image has {len(faces)} faces (0-{len(faces) - 1}), not face {number}", path=path, field="--face"
        )
    return faces[number]
