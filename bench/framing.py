"""Benchmark: the framing of FER2013's crops against mlfer's alignment, and the template that matches them.

FER2013's 48 x 48 faces were cropped by the dataset's own face finder; ``mlfer predict`` aligns
photos by the eyes and the mouth onto a template (:mod:`mlfer.faces.template`). A model trained
on FER+ sees other faces in the wild if the two framings differ. This script

1. estimates FER2013's framing: the median eye and mouth centres that :class:`~mlfer.faces.FaceDetector`
   finds on training faces (each upsampled 4 x, as a photo's face is larger than 48 px), made
   left-right symmetric, as a template on a 224 x 224 face, written to ``--template-out`` (a
   model folder's ``framing.json``);
2. measures the gap: the same PublicTest faces given to each model (``--checkpoint DIR ...``) as
   FER2013 frames them, and detected and aligned from their 4 x upsampled copy onto mlfer's
   template and onto the FER+ template; AP and macro-AUC on the faces detected in all.

    python bench/framing.py --template-out framing.json
    python bench/framing.py --checkpoint DIR [DIR ...] --template framing.json --write

``--smoke`` runs both steps on a few faces in seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from benchdoc import ROOT, write_section
from mlfer.data import LabelledData, load_dataset
from mlfer.data.images import read_image
from mlfer.evaluation.metrics import compute_metrics
from mlfer.faces import TEMPLATE, FaceDetector, align_face
from mlfer.faces.detect import Face
from mlfer.faces.template import TEMPLATE_SIZE
from mlfer.inference.recognizer import Recognizer
from mlfer.models.checkpoint import load_model

#: What the section in docs/benchmarks.md says the table is.
SECTION_TEXT = (
    "The same PublicTest faces given to each model as FER2013 cropped them (how the model was trained), and "
    "detected in their upsampled copy and aligned the way `mlfer predict` aligns a photo: onto mlfer's "
    "template and onto the FER+ template (the framing FER2013's crops have, `framing.json`). The difference "
    "between the first row and the others is what a model loses on faces framed by the detector."
)
SPEC = f"ferplus:{ROOT.parent / 'shared' / 'data' / 'ferplus'}?test=valid"
#: Upsampling of the 48 x 48 faces before detection.
UPSAMPLE = 4
FACE_SIDE = 48
#: The three framings of the same faces.
FRAMINGS = ("FER2013's crop (as trained)", "detected, mlfer's template", "detected, FER+ template")


def face_image(data: LabelledData, row: int) -> np.ndarray:
    """Row ``row`` of a FER+ dataset as an RGB uint8 48 x 48 x 3 array."""
    if data.images is not None:
        grey = np.asarray(data.images[row])
        return np.repeat(grey[..., None], 3, axis=2) if grey.ndim == 2 else grey
    assert data.paths is not None
    return np.asarray(read_image(data.paths[row]))


def detected(detector: FaceDetector, face: np.ndarray) -> tuple[np.ndarray, Face | None]:
    """The face upsampled :data:`UPSAMPLE` x, and its largest detection (or None)."""
    side = FACE_SIDE * UPSAMPLE
    large = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    faces = detector.detect(large)
    return large, max(faces, key=lambda found: found.area) if faces else None


def to_template_frame(points: np.ndarray) -> np.ndarray:
    """Points in the upsampled face's pixels -> the same points on a 224 x 224 face (pixel centres kept)."""
    return (points + 0.5) * (TEMPLATE_SIZE / (FACE_SIDE * UPSAMPLE)) - 0.5


def iter_detections(
    data: LabelledData, rows: np.ndarray, detector: FaceDetector
) -> Iterator[tuple[int, np.ndarray, Face]]:
    """``(row, upsampled face, detection)`` for each row whose face is found."""
    for row in rows:
        large, face = detected(detector, face_image(data, int(row)))
        if face is not None:
            yield int(row), large, face


def mirrored(points: np.ndarray) -> np.ndarray:
    """Template points of the horizontally flipped face (the eyes swap sides)."""
    flipped = points[[1, 0, 2]].copy()
    flipped[:, 0] = TEMPLATE_SIZE - 1 - flipped[:, 0]
    return flipped


def estimate_template(data: LabelledData, rows: np.ndarray, detector: FaceDetector) -> dict[str, object]:
    """The median right eye, left eye and mouth of the detections on ``rows``, on a 224 x 224 face,
    made left-right symmetric (averaged with its mirror image: the model trains on flipped faces
    too, so a face and its mirror image are framed alike)."""
    points = np.stack([to_template_frame(face.landmarks()) for _, _, face in iter_detections(data, rows, detector)])
    median = np.median(points, axis=0)
    return {
        "template": np.round((median + mirrored(median)) / 2, 2).tolist(),
        "median": np.round(median, 2).tolist(),
        "faces": len(points),
        "of": len(rows),
        "spread": np.round(np.median(np.abs(points - median), axis=0), 2).tolist(),
        "source": f"median FaceDetector landmarks of FER+ training faces upsampled {UPSAMPLE} x (bench/framing.py)",
    }


def framed_faces(
    data: LabelledData, rows: np.ndarray, detector: FaceDetector, sizes: Iterable[int], template: np.ndarray
) -> tuple[list[int], dict[int, dict[str, list[np.ndarray]]]]:
    """The rows of ``rows`` whose face is detected, and per side in ``sizes`` their faces in the
    three framings (each face detected once, framed at every side a model asks for)."""
    kept: list[int] = []
    framings: dict[int, dict[str, list[np.ndarray]]] = {size: {name: [] for name in FRAMINGS} for size in sizes}
    for row, large, face in iter_detections(data, rows, detector):
        kept.append(row)
        crop = face_image(data, row)
        for size, by_name in framings.items():
            cropped = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
            faces = (cropped, align_face(large, face, size), align_face(large, face, size, template))
            for name, framed in zip(FRAMINGS, faces, strict=True):
                by_name[name].append(framed)
    return kept, framings


def framing_gap(recognizer: Recognizer, labels: np.ndarray, framings: dict[str, list[np.ndarray]]) -> pd.DataFrame:
    """AP and macro-AUC of one model on the same faces through each framing."""
    table = {}
    for name, faces in framings.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            metrics = compute_metrics(labels, recognizer.classify(faces))
        table[name] = {"AP": metrics["average_precision"], "macro-AUC": metrics["macro_auc"]}
    return pd.DataFrame(table).T


def main(argv: list[str] | None = None) -> int:
    """Estimate the template, or measure the framing gap (and write it to docs/benchmarks.md)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=SPEC, metavar="SPEC", help=f"FER+ (default {SPEC})")
    parser.add_argument("--template-out", type=Path, metavar="JSON", help="estimate the FER+ template, write it here")
    parser.add_argument("--faces", type=int, default=3000, metavar="N", help="training faces for the estimate")
    parser.add_argument(
        "--checkpoint", dest="checkpoints", type=Path, nargs="+", metavar="DIR", help="measure the gap of these models"
    )
    parser.add_argument("--template", type=Path, metavar="JSON", help="the FER+ template (framing.json)")
    parser.add_argument("--smoke", action="store_true", help="a few faces, nothing written")
    parser.add_argument("--write", action="store_true", help="write the gap to docs/benchmarks.md")
    args = parser.parse_args(argv)
    data = load_dataset(args.dataset)
    split = np.asarray(data.split)
    rng = np.random.default_rng(0)
    train_rows = rng.permutation(np.flatnonzero(split == "train"))[: 40 if args.smoke else args.faces]
    test_rows = np.flatnonzero(split == "test")[: 40 if args.smoke else None]
    with FaceDetector() as detector:
        if args.template_out is not None:
            estimate = estimate_template(data, train_rows, detector)
            print(json.dumps(estimate, indent=2))
            if not args.smoke:
                args.template_out.write_text(json.dumps(estimate, indent=2) + "\n")
        if not args.checkpoints:
            return 0
        template = np.asarray(json.loads(args.template.read_text())["template"]) if args.template else TEMPLATE
        models = [load_model(checkpoint) for checkpoint in args.checkpoints]
        sizes = {model.preprocessing.image_size for model in models}
        kept, framings = framed_faces(data, test_rows, detector, sizes, template)
        tables = [
            framing_gap(Recognizer(model, detector), data.labels[kept], framings[model.preprocessing.image_size])
            for model in models
        ]
    lines = ["| Model | Faces given to the model | AP | Macro-AUC |", "|---|---|---:|---:|"]
    for checkpoint, table in zip(args.checkpoints, tables, strict=True):
        for name, row in table.iterrows():
            lines.append(f"| `{checkpoint}` | {name} | {row['AP']:.4f} | {row['macro-AUC']:.4f} |")
    text = "\n".join(lines)
    print(text)
    print(f"{len(kept)} of {len(test_rows)} faces detected")
    if args.write and not args.smoke:
        write_section(
            "FER+ framing",
            f"{SECTION_TEXT}\n\nTemplate: `{json.dumps(np.round(template, 1).tolist())}` against mlfer's "
            f"`{json.dumps(TEMPLATE.tolist())}`; PublicTest faces detected in their {UPSAMPLE} x upsampled copy: "
            f"{len(kept)} of {len(test_rows)}.\n\n{text}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
