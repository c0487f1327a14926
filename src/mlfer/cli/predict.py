"""``mlfer predict``: per-face expression probabilities of photos, folders and videos, to CSV/JSON/Parquet."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlfer.cli import add_trust_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` parser."""
    parser = subparsers.add_parser(
        "predict",
        help="per-face expression probabilities of photos, folders, globs and videos",
        description=(
            "Detect and align every face, classify it, and write one row per face (an image "
            "without a face gives one row with face_detected=False; an unreadable input one row "
            "with the error column set). The format follows --out's suffix: .csv, .json (one "
            "array of records), .jsonl/.ndjson (a record per line) or .parquet."
        ),
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="DIR",
        help="model folder (mlfer train); default: the FER+ model that ships with mlfer (mlfer info)",
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image or video files (.mp4 .avi .mov .mkv), folders (searched recursively) or glob patterns",
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="output table (.csv .json .jsonl .parquet)"
    )
    parser.add_argument(
        "--annotate",
        type=Path,
        metavar="DIR",
        help="also save each image with face boxes and a bar chart of the probabilities (DIR is marked as "
        "mlfer's output: a later run on a folder around it leaves it out)",
    )
    parser.add_argument("--every", type=_positive, default=1, metavar="N", help="keep one video frame in N (default 1)")
    parser.add_argument(
        "--batch-size",
        type=_positive,
        default=32,
        metavar="B",
        help="faces per forward pass (default 32); lowered for faces larger than 224 px, and fewer photos wait "
        "for a batch than B when they hold 20 Mpx (docs/reliability.md: memory)",
    )
    parser.add_argument(
        "--thresholds",
        choices=("auto", "default", "tuned"),
        default="auto",
        help="auto (default): the checkpoint's thresholds.json (tuned on validation data) where it has one, "
        "else 0.5; default: 0.5 for every expression; tuned: thresholds.json, which must exist",
    )
    parser.add_argument(
        "--min-score", type=float, default=0.5, metavar="S", help="drop face detections scoring below S (default 0.5)"
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="where the model runs: cpu (default), cuda or auto; under torchrun each process its GPU",
    )
    parser.add_argument(
        "--engine",
        choices=("auto", "onnx", "torch"),
        help="what runs the model: auto (default, or $MLFER_ENGINE): onnxruntime on the CPU (its ONNX export is "
        "kept in ~/.cache/mlfer/onnx), PyTorch on a GPU; onnx; torch",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="let MediaPipe's own log lines (TFLite, absl) through to stderr; the same as MLFER_VERBOSE=1",
    )
    add_trust_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Classify the faces of every input and write the table (and the annotated images);
    under torchrun each process takes a contiguous block of the input files."""
    from mlfer.core.fileio import check_destination
    from mlfer.faces import FaceDetector
    from mlfer.faces.quiet import set_verbose
    from mlfer.inference.drawing import mark_output_folder, rows_with_pictures
    from mlfer.inference.inputs import iter_sources
    from mlfer.inference.recognizer import Recognizer
    from mlfer.inference.shards import write_merged
    from mlfer.inference.table import output_format, write_rows
    from mlfer.models.checkpoint import load_model
    from mlfer.runtime.distributed import is_main, process_group, rank, rank_block, world_size
    from mlfer.runtime.progress import show_progress

    set_verbose(args.verbose)  # before MediaPipe starts

    kind = output_format(args.out)
    check_destination(args.out)
    if args.annotate is not None:
        check_destination(args.annotate, folder=True)
        mark_output_folder(args.annotate)  # before the inputs are listed: its pictures are never inputs
    with process_group(args.device) as device, FaceDetector(args.min_score) as detector:
        model = load_model(args.checkpoint, device, args.thresholds, trust_unverified=args.trust_unverified_weights)
        recognizer = Recognizer(model, detector, batch_size=args.batch_size, engine=args.engine)
        sources = list(iter_sources(args.inputs))
        frames = recognizer.iter_results(sources[rank_block(len(sources))], args.every)
        results = show_progress(frames, "predict", unit="frame", disable=not is_main())
        annotate_dir = args.annotate
        if annotate_dir is not None and world_size() > 1:
            annotate_dir = annotate_dir / f"process{rank()}"
        rows = rows_with_pictures(results, annotate_dir)
        counts = write_merged(rows, args.out, lambda chunks: write_rows(chunks, args.out, kind))
    if counts is None:
        return 0
    print(f"wrote {counts['rows']} rows ({counts['faces']} faces, {counts['errors']} errors) to {args.out}")
    return 0


def _positive(text: str) -> int:
    """An integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value
