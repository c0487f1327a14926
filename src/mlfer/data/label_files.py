"""Label files: an N x 6 matrix of 0/1 labels (or scores to binarise) in a ``.npy`` or ``.csv`` file.

A CSV may start with a header of expression names in any order, which maps its columns to RAF
order; errors name the file, the line and the expression.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS, canonical_name, first_non_binary
from mlfer.data.values import ARRAY_FILE_ERRORS, is_number


def read_labels(path: Path, binarize: float | None = None) -> np.ndarray:
    """An N x 6 0/1 int64 matrix in RAF order from a ``.npy`` or ``.csv`` file.

    Args:
        path: the file; a CSV may start with a header of expression names in any order.
        binarize: if given, values >= it become 1 and the rest 0; otherwise every value
            must already be 0 or 1.
    """
    if not path.is_file():
        raise MlferError("no such file", path=path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        values, lines = _read_npy(path), None
    elif suffix == ".csv":
        values, lines = _read_csv(path)
    else:
        raise MlferError(f"unsupported file type {suffix!r}; expected .npy or .csv", path=path)
    if len(values) == 0:
        raise MlferError("holds no rows", path=path)
    if binarize is not None:
        return (values >= binarize).astype(np.int64)
    bad = first_non_binary(values)
    if bad is not None:
        row, column = bad
        where = {"line": lines[row]} if lines else {}
        row_text = "" if lines else f"row {row}: "
        raise MlferError(
            f"{row_text}value {values[row, column]:g} is not 0 or 1 (for label distributions or "
            "scores pass --binarize THRESHOLD)",
            path=path,
            field=EXPRESSIONS[column],
            **where,
        )
    return values.astype(np.int64)


def _read_npy(path: Path) -> np.ndarray:
    """A numeric N x 6 array from a .npy file."""
    try:
        values = np.load(path, allow_pickle=False)
    except ARRAY_FILE_ERRORS as error:
        raise MlferError(f"not a readable .npy array ({error})", path=path) from error
    if values.ndim != 2 or values.shape[1] != len(EXPRESSIONS):
        raise MlferError(f"expected an N x {len(EXPRESSIONS)} matrix, got shape {values.shape}", path=path)
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_):
        raise MlferError(f"expected numbers, got dtype {values.dtype}", path=path)
    if not np.all(np.isfinite(values)):
        raise MlferError(
            f"row {int(np.argwhere(~np.isfinite(values))[0][0])} holds a value that is not finite", path=path
        )
    return values.astype(np.float64)


def _read_csv(path: Path) -> tuple[np.ndarray, list[int]]:
    """The rows of a CSV as an N x 6 float array in RAF order, and each row's line number."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            records = [(number, row) for number, row in enumerate(csv.reader(handle), start=1) if any(row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise MlferError(f"not a readable CSV file ({error})", path=path) from error
    order = list(range(len(EXPRESSIONS)))
    columns = list(EXPRESSIONS)
    if records and not any(is_number(cell) for cell in records[0][1]):
        order, columns = _header_order(path, records[0][0], records[0][1])
        records = records[1:]
    rows = []
    for number, row in records:
        if len(row) != len(columns):
            raise MlferError(f"has {len(row)} values, expected {len(columns)}", path=path, line=number)
        for cell, column in zip(row, columns):
            if not is_number(cell) or not math.isfinite(float(cell)):
                raise MlferError(f"{cell!r} is not a finite number", path=path, line=number, field=column)
        rows.append([float(row[index]) for index in order])
    values = np.array(rows, dtype=np.float64).reshape(len(rows), len(EXPRESSIONS))
    return values, [number for number, _ in records]


def _header_order(path: Path, number: int, header: list[str]) -> tuple[list[int], list[str]]:
    """For a header of expression names: the file column of each expression, and the names."""
    columns = []
    for position, cell in enumerate(header, start=1):
        try:
            columns.append(canonical_name(cell))
        except MlferError:
            raise MlferError(
                f"header cell {cell!r} is not an expression name ({', '.join(EXPRESSIONS)})",
                path=path,
                line=number,
                field=f"column {position}",
            ) from None
    if sorted(columns) != sorted(EXPRESSIONS):
        raise MlferError(
            f"header must name each of the six expressions once, got {', '.join(header)}", path=path, line=number
        )
    return [columns.index(name) for name in EXPRESSIONS], columns
