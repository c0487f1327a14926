"""``mlfer graph``: build the label graph from a label file, print it, save JSON and PNG."""

from __future__ import annotations

import argparse
import csv
import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS, canonical_name
from mlfer.data.tables import ARRAY_FILE_ERRORS
from mlfer.graph.label_graph import LabelGraph, first_non_binary, format_table


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``graph`` parser."""
    parser = subparsers.add_parser(
        "graph",
        help="build the label graph (co-occurrence, positive/negative relations) from labels",
        description=(
            "Build SVML-RGCN's label graph from training labels: P_ij = M_ij / N_i, positive "
            "edges where P_ij > t2, negative where P_ij < t1 (edge [i, j]: node i aggregates "
            "from node j). Prints P and the edges, writes DIR/graph.json and DIR/graph.png."
        ),
    )
    parser.add_argument(
        "--labels",
        required=True,
        type=Path,
        metavar="FILE",
        help=".npy or .csv N x 6 matrix in RAF order (a CSV header of expression "
        "names may give another order): 0/1 labels, or scores with --binarize",
    )
    parser.add_argument("--t1", required=True, type=_number, help="negative threshold (RAF-ML: 0.15)")
    parser.add_argument("--t2", required=True, type=_number, help="positive threshold (RAF-ML: 0.4)")
    parser.add_argument(
        "--binarize",
        type=_number,
        metavar="THRESHOLD",
        help="label = 1 where value >= THRESHOLD (a number or a fraction such as 1/6)",
    )
    parser.add_argument(
        "--p", type=_number, default=0.2, help="neighbour weight of the printed ML-GCN matrix (eq. 14; default 0.2)"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read the labels, build and print the graph, write graph.json and graph.png."""
    labels = read_labels(args.labels, args.binarize)
    graph = LabelGraph.from_labels(labels, args.t1, args.t2)
    mlgcn = graph.mlgcn_adjacency(args.p)
    print(f"{len(labels)} images from {args.labels}")
    print(graph.summary())
    print(f"ML-GCN adjacency (eq. 13-14, t = t2, p = {args.p:g}):")
    print(format_table(mlgcn, graph.names))
    args.out.mkdir(parents=True, exist_ok=True)
    graph.save(args.out / "graph.json")
    graph.draw(args.out / "graph.png")
    print(f"wrote {args.out / 'graph.json'} and {args.out / 'graph.png'}")
    return 0


def _number(text: str) -> float:
    """A finite number, written as a decimal or a fraction (``1/6``)."""
    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


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
    if records and not any(_is_number(cell) for cell in records[0][1]):
        order, columns = _header_order(path, records[0][0], records[0][1])
        records = records[1:]
    rows = []
    for number, row in records:
        if len(row) != len(columns):
            raise MlferError(f"has {len(row)} values, expected {len(columns)}", path=path, line=number)
        for cell, column in zip(row, columns):
            if not _is_number(cell) or not math.isfinite(float(cell)):
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


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
