"""The output table: one row per face (:data:`COLUMNS`), as a DataFrame or streamed to CSV, JSON or Parquet.

An image without a face gives one row with ``face_detected = False``, and an input that cannot be
read one row with ``error`` set. :func:`write_rows` writes the format named by the file's suffix
(:data:`FORMATS`) through a temporary file, so a killed run leaves no partial table.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS, compound_name
from mlfer.core.fileio import atomic_path, printable
from mlfer.faces.detect import Face
from mlfer.inference.inputs import Frame

#: Output columns, in order.
COLUMNS: tuple[str, ...] = (
    "input",
    "frame",
    "face_id",
    "face_detected",
    "x",
    "y",
    "w",
    "h",
    "score",
    *EXPRESSIONS,
    "predicted",
    "compound",
    "error",
)
#: pandas dtypes of :data:`COLUMNS` (nullable integers: ``face_id`` is missing on rows without a face).
DTYPES: dict[str, str] = {
    "input": "string",
    "frame": "int64",
    "face_id": "Int64",
    "face_detected": "bool",
    **{name: "float64" for name in ("x", "y", "w", "h", "score", *EXPRESSIONS)},
    "predicted": "string",
    "compound": "string",
    "error": "string",
}
#: Separator of the names in the ``predicted`` column (``compound`` names the set when it is one
#: of RAF-DB's eleven compound classes, e.g. ``happily surprised``; empty otherwise).
SEPARATOR = "|"
#: Output formats by file suffix.
FORMATS: dict[str, str] = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "Int64": pa.int64(),
    "bool": pa.bool_(),
    "float64": pa.float64(),
}
#: The Parquet schema of the output rows (the dtypes of :data:`DTYPES`).
SCHEMA = pa.schema([(name, _ARROW_TYPES[DTYPES[name]]) for name in COLUMNS])
#: Rows per Parquet row group.
PARQUET_CHUNK = 4096


@dataclass
class Result:
    """The faces found in one :class:`Frame` and their probabilities (F x 6, RAF order)."""

    frame: Frame
    faces: list[Face]
    probabilities: np.ndarray
    thresholds: np.ndarray
    error: str = ""
    aligned: list[np.ndarray] = field(default_factory=list, repr=False)

    def rows(self) -> list[dict[str, Any]]:
        """The output rows of this frame: one per face, or one without a face."""
        base = {"input": self.frame.input, "frame": self.frame.frame}
        if not self.faces:
            return [
                {
                    **dict.fromkeys(COLUMNS),
                    **base,
                    "face_detected": False,
                    "predicted": "",
                    "compound": "",
                    "error": self.error,
                }
            ]
        rows = []
        for face_id, (face, probabilities) in enumerate(zip(self.faces, self.probabilities)):
            x, y, w, h = (round(float(value), 2) for value in face.box)
            predicted = predicted_names(probabilities, self.thresholds)
            rows.append(
                {
                    **base,
                    "face_id": face_id,
                    "face_detected": True,
                    "x": x,
                    "y": y,
                    "w": w,
                    "h": h,
                    "score": round(face.score, 4),
                    **{name: round(float(p), 6) for name, p in zip(EXPRESSIONS, probabilities)},
                    "predicted": predicted,
                    "compound": compound_name(predicted.split(SEPARATOR)) if predicted else "",
                    "error": "",
                }
            )
        return rows


def predicted_names(probabilities: np.ndarray, thresholds: np.ndarray) -> str:
    """Names of the expressions at or above their thresholds, joined with ``|``."""
    return SEPARATOR.join(name for name, p, t in zip(EXPRESSIONS, probabilities, thresholds) if p >= t)


def rows_to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A DataFrame of output rows with the columns and dtypes of :data:`COLUMNS`."""
    frame = pd.DataFrame(list(rows), columns=list(COLUMNS))
    return frame.astype(DTYPES)


def output_format(path: Path) -> str:
    """The output format named by the file's suffix."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise MlferError(f"unknown output format; use one of {', '.join(FORMATS)}", path=path, field="--out")
    return kind


def write_rows(chunks: Iterable[list[dict[str, Any]]], path: Path, kind: str) -> dict[str, int]:
    """Stream chunks of rows into ``path`` (through a temporary file renamed at the end); text
    goes through :func:`~mlfer.core.fileio.printable` (file names that do not decode, escaped).

    Returns:
        Counts of ``rows``, ``faces`` (rows with a face) and ``errors`` (rows with an error).
    """
    counts = {"rows": 0, "faces": 0, "errors": 0}
    chunks = ([{key: _printable(value) for key, value in row.items()} for row in rows] for rows in chunks)
    with atomic_path(path) as temporary:
        if kind == "parquet":
            _write_parquet(_counted(chunks, counts), temporary)
        else:
            with temporary.open("w", newline="", encoding="utf-8") as handle:
                {"csv": _write_csv, "json": _write_json, "jsonl": _write_jsonl}[kind](_counted(chunks, counts), handle)
    return counts


def _printable(value: Any) -> Any:
    return printable(value) if isinstance(value, str) else value


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
