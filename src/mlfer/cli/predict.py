"""``mlfer predict``: per-face expression probabilities of photos, folders and videos, to CSV/JSON/Parquet."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlfer.cli import add_checkpoint_argument, add_trust_argument


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
    add_checkpoint_argument(parser)
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
    under torchrun each process takes a contiguous block of the input files. On the CPU alone
    (no torchrun, no GPU) nothing imports torch once the model's export is in the cache."""
    from mlfer.core.fileio import check_destination
    from mlfer.faces.quiet import set_verbose
    from mlfer.inference.drawing import mark_output_folder
    from mlfer.inference.table import output_format
    from mlfer.runtime.launch import launched

    set_verbose(args.verbose)  # before MediaPipe starts

    kind = output_format(args.out)
    check_destination(args.out)
    if args.annotate is not None:
        check_destination(args.annotate, folder=True)
        mark_output_folder(args.annotate)  # before the inputs are listed: its pictures are never inputs
    if launched() or args.device != "cpu":
        counts = _predict_in_group(args, kind)
    else:
        counts = _predict(args, kind, "cpu", args.annotate)
    if counts is None:
        return 0
    print(f"wrote {counts['rows']} rows ({counts['faces']} faces, {counts['errors']} errors) to {args.out}")
    return 0


def _predict(
    args: argparse.Namespace, kind: str, device: Any, annotate: Path | None, sharded: bool = False
) -> dict[str, int] | None:
    """Classify the inputs (``sharded``: this process's block of them) and write their rows (``sharded``:
    merged with the other processes' in one file, by process 0, which alone returns the counts)."""
    from mlfer.faces import FaceDetector
    from mlfer.inference.drawing import rows_with_pictures
    from mlfer.inference.inputs import iter_sources
    from mlfer.inference.recognizer import Recognizer
    from mlfer.inference.table import write_rows
    from mlfer.runtime.progress import show_progress

    with FaceDetector(args.min_score) as detector:
        recognizer = Recognizer.from_folder(
            args.checkpoint,
            detector,
            device=device,
            thresholds=args.thresholds,
            trust_unverified=args.trust_unverified_weights,
            batch_size=args.batch_size,
            engine=args.engine,
        )
        sources = list(iter_sources(args.inputs))
        if not sharded:
            frames = recognizer.iter_results(sources, args.every)
            return write_rows(
                rows_with_pictures(show_progress(frames, "predict", unit="frame"), annotate), args.out, kind
            )
        from mlfer.inference.shards import write_merged
        from mlfer.runtime.distributed import is_main, rank_block

        frames = recognizer.iter_results(sources[rank_block(len(sources))], args.every)
        rows = rows_with_pictures(show_progress(frames, "predict", unit="frame", disable=not is_main()), annotate)
        return write_merged(rows, args.out, lambda chunks: write_rows(chunks, args.out, kind))


def _predict_in_group(args: argparse.Namespace, kind: str) -> dict[str, int] | None:
    """:func:`_predict` under torchrun (each process its block of the inputs, one table) or on a GPU."""
    from mlfer.runtime.distributed import process_group, rank, world_size

    with process_group(args.device) as device:
        annotate = args.annotate
        if annotate is not None and world_size() > 1:
            annotate = annotate / f"process{rank()}"
        return _predict(args, kind, device, annotate, sharded=True)


def _positive(text: str) -> int:
    """An integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value
