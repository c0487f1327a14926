"""``mlfer predict``: per-face expression probabilities of photos, folders and videos, to CSV/JSON/Parquet."""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from mlfer.core.errors import MlferError
from mlfer.core.fileio import atomic_path
from mlfer.faces import FaceDetector
from mlfer.inference.recognizer import COLUMNS, DTYPES, Recognizer, Result, annotate, iter_sources
from mlfer.inference.shards import write_merged
from mlfer.inference.video import is_video
from mlfer.runtime.distributed import is_main, process_group, rank, rank_block, world_size

#: Output formats by file suffix.
FORMATS: dict[str, str] = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "Int64": pa.int64(),
    "bool": pa.bool_(),
    "float64": pa.float64(),
}
#: The Parquet schema of the output rows (the dtypes of :data:`mlfer.inference.recognizer.DTYPES`).
SCHEMA = pa.schema([(name, _ARROW_TYPES[DTYPES[name]]) for name in COLUMNS])
#: Rows per Parquet row group.
PARQUET_CHUNK = 4096


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
    parser.add_argument("--checkpoint", required=True, type=Path, metavar="DIR", help="model folder (mlfer train)")
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
        help="also save each image with face boxes and a bar chart of the probabilities",
    )
    parser.add_argument("--every", type=_positive, default=1, metavar="N", help="keep one video frame in N (default 1)")
    parser.add_argument(
        "--batch-size", type=_positive, default=32, metavar="B", help="faces per forward pass (default 32)"
    )
    parser.add_argument(
        "--thresholds",
        choices=("default", "tuned"),
        default="default",
        help="0.5 for every expression, or the checkpoint's thresholds.json (tuned on validation)",
    )
    parser.add_argument(
        "--min-score", type=float, default=0.5, metavar="S", help="drop face detections scoring below S (default 0.5)"
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="where the model runs: cpu (default), cuda or auto; under torchrun each process its GPU",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Classify the faces of every input and write the table (and the annotated images);
    under torchrun each process takes a contiguous block of the input files."""
    kind = output_format(args.out)
    with process_group(args.device) as device, FaceDetector(args.min_score) as detector:
        recognizer = Recognizer.from_checkpoint(args.checkpoint, args.thresholds, detector, args.batch_size, device)
        sources = list(iter_sources(args.inputs))
        frames = recognizer.iter_results(sources[rank_block(len(sources))], args.every)
        results = tqdm(frames, unit="frame", desc="predict", disable=not is_main())
        annotate_dir = args.annotate
        if annotate_dir is not None and world_size() > 1:
            annotate_dir = annotate_dir / f"process{rank()}"
        rows = _rows_of(results, annotate_dir)
        counts = write_merged(rows, args.out, lambda chunks: write_rows(chunks, args.out, kind))
    if counts is None:
        return 0
    print(f"wrote {counts['rows']} rows ({counts['faces']} faces, {counts['errors']} errors) to {args.out}")
    return 0


def output_format(path: Path) -> str:
    """The output format named by the file's suffix."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise MlferError(f"unknown output format; use one of {', '.join(FORMATS)}", path=path, field="--out")
    return kind


def _rows_of(results: Iterable[Result], annotate_dir: Path | None) -> Iterator[list[dict[str, Any]]]:
    """The rows of each result, saving its annotated image on the way when asked."""
    for number, result in enumerate(results):
        if annotate_dir is not None and result.frame.image is not None:
            save_annotated(result, annotate_dir, number)
        yield result.rows()


def save_annotated(result: Result, directory: Path, number: int) -> Path:
    """Write the annotated frame as ``NNNNNN-STEM[-frameF].jpg`` (numbered to keep names unique)."""
    stem = Path(result.frame.input).stem.strip("<>").replace(" ", "_")
    suffix = f"-frame{result.frame.frame}" if is_video(result.frame.input) else ""
    path = directory / f"{number:06d}-{stem}{suffix}.jpg"
    # Encoded in memory first: Pillow's JPEG writer ignores a short write to a full disk and
    # would leave a truncated file without an error.
    encoded = io.BytesIO()
    annotate(result).save(encoded, format="JPEG", quality=90)
    with atomic_path(path) as temporary:
        temporary.write_bytes(encoded.getvalue())
    return path


def write_rows(chunks: Iterable[list[dict[str, Any]]], path: Path, kind: str) -> dict[str, int]:
    """Stream chunks of rows into ``path`` (through a temporary file renamed at the end).

    Returns:
        Counts of ``rows``, ``faces`` (rows with a face) and ``errors`` (rows with an error).
    """
    counts = {"rows": 0, "faces": 0, "errors": 0}
    with atomic_path(path) as temporary:
        if kind == "parquet":
            _write_parquet(_counted(chunks, counts), temporary)
        else:
            with temporary.open("w", newline="", encoding="utf-8") as handle:
                {"csv": _write_csv, "json": _write_json, "jsonl": _write_jsonl}[kind](_counted(chunks, counts), handle)
    return counts


def _counted(chunks: Iterable[list[dict[str, Any]]], counts: dict[str, int]) -> Iterator[list[dict[str, Any]]]:
    for rows in chunks:
        counts["rows"] += len(rows)
        counts["faces"] += sum(bool(row["face_detected"]) for row in rows)
        counts["errors"] += sum(bool(row["error"]) for row in rows)
        yield rows


def _write_csv(chunks: Iterable[list[dict[str, Any]]], handle: TextIO) -> None:
    writer = csv.DictWriter(handle, fieldnames=COLUMNS)
    writer.writeheader()
    for rows in chunks:
        writer.writerows(rows)


def _write_jsonl(chunks: Iterable[list[dict[str, Any]]], handle: TextIO) -> None:
    for rows in chunks:
        handle.writelines(json.dumps(row) + "\n" for row in rows)


def _write_json(chunks: Iterable[list[dict[str, Any]]], handle: TextIO) -> None:
    separator = "[\n"
    for rows in chunks:
        for row in rows:
            handle.write(separator + json.dumps(row))
            separator = ",\n"
    handle.write("[]\n" if separator == "[\n" else "\n]\n")


def _write_parquet(chunks: Iterable[list[dict[str, Any]]], path: Path) -> None:
    buffer: list[dict[str, Any]] = []
    with pq.ParquetWriter(path, SCHEMA) as writer:
        for rows in chunks:
            buffer.extend(rows)
            if len(buffer) >= PARQUET_CHUNK:
                writer.write_table(pa.Table.from_pylist(buffer, schema=SCHEMA))
                buffer = []
        writer.write_table(pa.Table.from_pylist(buffer, schema=SCHEMA))


def _positive(text: str) -> int:
    """An integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value
